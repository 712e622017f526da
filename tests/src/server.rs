//! Starting a real Cầu server inside a test, on free ports of 127.0.0.1.

use cau_config::Config;
pub use cau_signaling::RunningServer;

/// Options every test server shares: free ports on loopback, so tests run side by side.
/// Bandwidth estimation is off unless a test turns it on: with the feedback webrtc-rs
/// clients send, str0m's estimator reads 170-180 kbit/s on an idle loopback, and the
/// server would pause their video for a line they do not have. The scenarios about
/// lines that cannot carry video (Chromium's feedback) turn it on.
const TEST_OVERRIDES: &str = r#"
[http]
listen = "127.0.0.1:0"
[media]
udp_listen = "127.0.0.1:0"
advertised_ip = "127.0.0.1"
bandwidth_estimation = false
"#;

/// Starts a server with the default configuration on free loopback ports.
pub async fn start_test_server() -> anyhow::Result<RunningServer> {
    start_test_server_with("").await
}

/// Starts a server on free loopback ports with `extra` TOML laid over the defaults
/// (for example `"[limits]\nmax_participants_per_room = 2"`).
pub async fn start_test_server_with(extra: &str) -> anyhow::Result<RunningServer> {
    init_tracing();
    // A database of its own for every test server, unless the test names one (to
    // restart a server on the same data).
    let data_dir = fresh_data_dir()?;
    let base = format!(
        "{TEST_OVERRIDES}\n[storage]\ndata_dir = {:?}\n",
        data_dir.display().to_string()
    );
    let text = merge_sections(&base, extra);
    let config = Config::from_layers(Some(("test configuration", &text)), std::iter::empty())?;
    cau_signaling::start(config).await
}

/// Joins two TOML snippets, letting `extra` override `base` key by key.
fn merge_sections(base: &str, extra: &str) -> String {
    let mut base: toml::Table = base.parse().expect("the test overrides are valid TOML");
    let extra: toml::Table = extra.parse().expect("a test's overrides are valid TOML");
    for (section, values) in extra {
        match (base.get_mut(&section), values) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(values)) => {
                existing.extend(values);
            }
            (_, values) => {
                base.insert(section, values);
            }
        }
    }
    toml::to_string(&base).expect("a TOML table serializes")
}

/// Logs go to the test's captured output; `RUST_LOG` picks the level.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A new empty folder under the system's temporary folder.
pub fn fresh_data_dir() -> anyhow::Result<std::path::PathBuf> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .subsec_nanos();
    let dir = std::env::temp_dir().join(format!(
        "cau-test-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
