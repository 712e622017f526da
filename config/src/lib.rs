//! Cầu's configuration.
//!
//! The documented default file, `config/cau.toml`, is compiled into the binary and is
//! the single source of defaults: a user's file is laid over it key by key, and
//! `CAU_<SECTION>_<OPTION>` environment variables are laid over both. Keeping the
//! defaults in the documented file means the documentation cannot drift from the code.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use serde::Deserialize;

/// The documented default configuration, as shipped.
pub const DEFAULT_TOML: &str = include_str!("../cau.toml");

/// The default site directory, as shipped: seeded into the database on the first start.
/// Its format is documented in the file; signaling parses it.
pub const DEFAULT_SITES_TOML: &str = include_str!("../sites.toml");

/// The whole configuration of one Cầu server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub tls: TlsConfig,
    pub media: MediaConfig,
    pub limits: LimitsConfig,
    pub storage: StorageConfig,
    pub meetings: MeetingsConfig,
    pub auth: AuthConfig,
    pub admin: AdminConfig,
    pub monitoring: MonitoringConfig,
    pub line_test: LineTestConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub mode: TlsMode,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub self_signed_names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    Off,
    Files,
    SelfSigned,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    pub udp_listen: SocketAddr,
    pub advertised_ip: IpAddr,
    peer_timeout_ms: u64,
    keyframe_request_interval_ms: u64,
    /// Offer a passive TCP candidate beside the UDP one.
    pub ice_tcp: bool,
    /// The TCP candidate's port; 0: udp_listen's port number.
    ice_tcp_port: u16,
    bandwidth_estimation: bool,
    initial_estimate_kbps: u64,
    loudest_audio: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_participants_per_room: usize,
    pub max_peers: usize,
    pub max_message_bytes: usize,
    pub joins_per_minute: u32,
    pub join_burst: u32,
    pub api_requests_per_minute: u32,
    pub api_burst: u32,
    pub messages_per_second: u32,
    pub message_burst: u32,
    /// Origins, as `scheme://host[:port]`, whose pages may open the WebSocket besides
    /// the server's own.
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeetingsConfig {
    join_before_start_minutes: u32,
    reconnect_grace_s: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The base of join links, without a trailing slash; empty when it is to be derived.
    pub public_url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringConfig {
    pub enabled: bool,
    stats_interval_ms: u64,
    sample_interval_s: u64,
    raw_retention_hours: u64,
    rollup_retention_days: u64,
    alert_after_s: u64,
    pub webhook_url: String,
    pub webhook_attempts: u32,
    pub expected_video_kbps: u64,
}

/// The line test's plan and the thresholds of its verdict (see `cau.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineTestConfig {
    probe_phase_s: u64,
    download_s: u64,
    upload_s: u64,
    probe_interval_ms: u64,
    pub upload_kbps: u64,
    pub download_kbps: u64,
    pub minimum_kbps: u64,
    pub rtt_ready_ms: u64,
    pub rtt_marginal_ms: u64,
    pub loss_ready_percent: f64,
    pub loss_marginal_percent: f64,
    pub jitter_ready_ms: u64,
    pub jitter_marginal_ms: u64,
}

/// The admin API's token. Its `Debug` hides the token, so that logging the
/// configuration never leaks it.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    token: String,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The user's file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file is not valid TOML.
    #[error("{origin} is not valid TOML: {message}")]
    Syntax { origin: String, message: String },
    /// An option is unknown, has the wrong type, or an invalid value.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// An environment variable names a known option but its value does not fit it.
    #[error("environment variable {name}: {message}")]
    Environment { name: String, message: String },
}

impl Config {
    /// The built-in defaults, exactly as documented in `config/cau.toml`.
    pub fn defaults() -> Config {
        // The shipped file is checked by the `defaults_parse` test; failing here is a
        // build defect, not a user error.
        Config::from_layers(None, std::iter::empty())
            .expect("the shipped default configuration is valid")
    }

    /// Loads the defaults, then the file at `path` if given, then `CAU_*` variables
    /// from `env` (pass `std::env::vars()`).
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let user = match path {
            Some(path) => Some((
                path.display().to_string(),
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?,
            )),
            None => None,
        };
        Config::from_layers(user.as_ref().map(|(o, t)| (o.as_str(), t.as_str())), env)
    }

    /// Loads the defaults overlaid with the TOML text `user` (named `origin` in errors)
    /// and the `CAU_*` variables in `env`.
    pub fn from_layers(
        user: Option<(&str, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut merged = default_table()?;
        if let Some((origin, text)) = user {
            let overlay = parse_table(origin, text)?;
            overlay_table(&mut merged, overlay, "")?;
        }
        for (name, value) in env {
            apply_env(&mut merged, &name, &value)?;
        }
        let config: Config = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_owned()))?;
        config.check()?;
        Ok(config.normalize())
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.tls.mode == TlsMode::Files
            && (self.tls.cert.as_os_str().is_empty() || self.tls.key.as_os_str().is_empty())
        {
            return Err(ConfigError::Invalid(
                "tls.mode = \"files\" needs tls.cert and tls.key".into(),
            ));
        }
        if self.media.advertised_ip.is_unspecified() {
            return Err(ConfigError::Invalid(
                "media.advertised_ip must be an address browsers can reach, not 0.0.0.0 or ::"
                    .into(),
            ));
        }
        if self.limits.max_participants_per_room == 0 || self.limits.max_peers == 0 {
            return Err(ConfigError::Invalid("limits must be at least 1".into()));
        }
        if self.limits.max_message_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "limits.max_message_bytes must be at least 1024: SDP offers are several KiB".into(),
            ));
        }
        self.limits.check()?;
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid(
                "storage.data_dir must name a directory".into(),
            ));
        }
        // A week is far beyond any line test; a larger value is a typing error that
        // would leave links open for months before their meeting.
        if self.meetings.join_before_start_minutes > 7 * 24 * 60 {
            return Err(ConfigError::Invalid(
                "meetings.join_before_start_minutes must be at most 10080 (a week)".into(),
            ));
        }
        if !(5..=600).contains(&self.meetings.reconnect_grace_s) {
            return Err(ConfigError::Invalid(
                "meetings.reconnect_grace_s must be from 5 to 600".into(),
            ));
        }
        let public_url = &self.auth.public_url;
        let scheme_ok = public_url.starts_with("https://") || public_url.starts_with("http://");
        if !public_url.is_empty() && !scheme_ok {
            return Err(ConfigError::Invalid(
                "auth.public_url must start with https:// or http://".into(),
            ));
        }
        if !self.admin.token.is_empty() && self.admin.token.chars().count() < 16 {
            return Err(ConfigError::Invalid(
                "admin.token (CAU_ADMIN_TOKEN) must have at least 16 characters".into(),
            ));
        }
        if self.media.peer_timeout_ms < 1000 {
            return Err(ConfigError::Invalid(
                "media.peer_timeout_ms must be at least 1000".into(),
            ));
        }
        if !(100..=100_000).contains(&self.media.initial_estimate_kbps) {
            return Err(ConfigError::Invalid(
                "media.initial_estimate_kbps must be 100 to 100000".into(),
            ));
        }
        if self.media.loudest_audio > 64 {
            return Err(ConfigError::Invalid(
                "media.loudest_audio must be 0 (every site) to 64".into(),
            ));
        }
        let m = &self.monitoring;
        if m.stats_interval_ms < 100 || m.sample_interval_s == 0 {
            return Err(ConfigError::Invalid(
                "monitoring.stats_interval_ms must be at least 100 and sample_interval_s at least 1"
                    .into(),
            ));
        }
        if m.sample_interval_s * 1000 < m.stats_interval_ms {
            return Err(ConfigError::Invalid(
                "monitoring.sample_interval_s must not be shorter than stats_interval_ms".into(),
            ));
        }
        self.line_test.check()?;
        let url = &m.webhook_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::Invalid(
                "monitoring.webhook_url must start with http:// or https://".into(),
            ));
        }
        Ok(())
    }

    /// Trims what the checks allow but users of the values should not see.
    fn normalize(mut self) -> Config {
        let trimmed = self.auth.public_url.trim_end_matches('/').len();
        self.auth.public_url.truncate(trimmed);
        self
    }
}

impl MediaConfig {
    pub fn peer_timeout(&self) -> Duration {
        Duration::from_millis(self.peer_timeout_ms)
    }

    pub fn keyframe_request_interval(&self) -> Duration {
        Duration::from_millis(self.keyframe_request_interval_ms)
    }

    /// Where the ICE-TCP listener binds, if ICE-TCP is on: udp_listen's address, on
    /// `ice_tcp_port` or else udp_listen's port number.
    pub fn tcp_listen(&self) -> Option<SocketAddr> {
        let port = match self.ice_tcp_port {
            0 => self.udp_listen.port(),
            port => port,
        };
        self.ice_tcp
            .then_some(SocketAddr::new(self.udp_listen.ip(), port))
    }

    /// How many sites of a meeting are heard at once besides the chair and the floor
    /// holder, the loudest; `None`: every site that may speak.
    pub fn loudest_audio(&self) -> Option<usize> {
        (self.loudest_audio > 0).then_some(self.loudest_audio)
    }

    /// The bandwidth estimate each participant's connection starts from, in bits per
    /// second, or `None` when bandwidth estimation is off.
    pub fn initial_estimate(&self) -> Option<u64> {
        self.bandwidth_estimation
            .then_some(self.initial_estimate_kbps * 1000)
    }
}

impl MonitoringConfig {
    /// How often the SFU reports each connection's line, when monitoring is on.
    pub fn stats_interval(&self) -> Option<Duration> {
        self.enabled
            .then(|| Duration::from_millis(self.stats_interval_ms))
    }

    pub fn sample_interval(&self) -> Duration {
        Duration::from_secs(self.sample_interval_s)
    }

    pub fn raw_retention(&self) -> Duration {
        Duration::from_secs(self.raw_retention_hours * 3600)
    }

    pub fn rollup_retention(&self) -> Duration {
        Duration::from_secs(self.rollup_retention_days * 86_400)
    }

    pub fn alert_after(&self) -> Duration {
        Duration::from_secs(self.alert_after_s)
    }
}

impl LimitsConfig {
    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |message: &str| Err(ConfigError::Invalid(format!("limits: {message}")));
        let rates = [
            self.joins_per_minute,
            self.join_burst,
            self.api_requests_per_minute,
            self.api_burst,
            self.messages_per_second,
            self.message_burst,
        ];
        // Zero would refuse everything, which no one means; the rate limiter needs at
        // least one of each.
        if rates.contains(&0) {
            return invalid("every rate and burst must be at least 1");
        }
        for origin in &self.allowed_origins {
            let scheme_ok = origin.starts_with("https://") || origin.starts_with("http://");
            let bare = origin
                .split_once("://")
                .is_some_and(|(_, rest)| !rest.is_empty() && !rest.contains('/'));
            if !scheme_ok || !bare {
                return invalid(&format!(
                    "allowed_origins takes origins like \"https://host:port\", without a path: {origin:?}"
                ));
            }
        }
        Ok(())
    }
}

impl LineTestConfig {
    pub fn probe_phase(&self) -> Duration {
        Duration::from_secs(self.probe_phase_s)
    }

    pub fn download(&self) -> Duration {
        Duration::from_secs(self.download_s)
    }

    pub fn upload(&self) -> Duration {
        Duration::from_secs(self.upload_s)
    }

    pub fn probe_interval(&self) -> Duration {
        Duration::from_millis(self.probe_interval_ms)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |message: &str| Err(ConfigError::Invalid(format!("line_test: {message}")));
        // Below a second a phase measures SCTP's slow start more than the line; past a
        // minute a site waits for nothing.
        let phases = [self.probe_phase_s, self.download_s, self.upload_s];
        if phases.iter().any(|s| !(1..=60).contains(s)) {
            return invalid("probe_phase_s, download_s and upload_s must be 1 to 60");
        }
        if !(5..=1000).contains(&self.probe_interval_ms) {
            return invalid("probe_interval_ms must be 5 to 1000");
        }
        if self.upload_kbps == 0
            || self.download_kbps == 0
            || self.upload_kbps > 100_000
            || self.download_kbps > 100_000
        {
            return invalid("upload_kbps and download_kbps must be 1 to 100000");
        }
        if self.minimum_kbps > self.upload_kbps.min(self.download_kbps) {
            return invalid("minimum_kbps must not exceed upload_kbps or download_kbps");
        }
        let loss_ok = (0.0..=100.0).contains(&self.loss_ready_percent)
            && (0.0..=100.0).contains(&self.loss_marginal_percent);
        if self.rtt_ready_ms > self.rtt_marginal_ms
            || self.jitter_ready_ms > self.jitter_marginal_ms
            || !loss_ok
            || self.loss_ready_percent > self.loss_marginal_percent
        {
            return invalid("each ready threshold must be within its marginal one, loss 0 to 100");
        }
        Ok(())
    }
}

impl MeetingsConfig {
    /// How long before a meeting's start its join links admit their site.
    pub fn join_before_start(&self) -> Duration {
        Duration::from_secs(u64::from(self.join_before_start_minutes) * 60)
    }

    /// How long a site whose connection was lost keeps its seat in a meeting.
    pub fn reconnect_grace(&self) -> Duration {
        Duration::from_secs(u64::from(self.reconnect_grace_s))
    }
}

impl AdminConfig {
    /// The configured token, or `None` when one is to be generated.
    pub fn token(&self) -> Option<&str> {
        Some(self.token.as_str()).filter(|token| !token.is_empty())
    }
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = if self.token.is_empty() {
            ""
        } else {
            "<hidden>"
        };
        f.debug_struct("AdminConfig")
            .field("token", &shown)
            .finish()
    }
}

/// The documented defaults as a table, parsed once per process: each load lays its
/// layers over a copy, which costs a fraction of parsing the commented file again.
fn default_table() -> Result<toml::Table, ConfigError> {
    static DEFAULTS: LazyLock<Result<toml::Table, String>> = LazyLock::new(|| {
        DEFAULT_TOML
            .parse::<toml::Table>()
            .map_err(|e| e.message().to_owned())
    });
    DEFAULTS.clone().map_err(|message| ConfigError::Syntax {
        origin: "the default configuration".to_owned(),
        message,
    })
}

fn parse_table(origin: &str, text: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Syntax {
            origin: origin.to_owned(),
            message: e.message().to_owned(),
        })
}

/// Lays `overlay` over `base` key by key. A key the defaults do not have is an error,
/// so a misspelt option is reported instead of silently ignored.
fn overlay_table(
    base: &mut toml::Table,
    overlay: toml::Table,
    prefix: &str,
) -> Result<(), ConfigError> {
    for (key, value) in overlay {
        let path = format!("{prefix}{key}");
        let Some(slot) = base.get_mut(&key) else {
            return Err(ConfigError::Invalid(format!("unknown option `{path}`")));
        };
        match (slot, value) {
            (toml::Value::Table(inner), toml::Value::Table(value)) => {
                overlay_table(inner, value, &format!("{path}."))?
            }
            (toml::Value::Table(_), _) => {
                return Err(ConfigError::Invalid(format!("`{path}` must be a table")));
            }
            (slot, value) => *slot = value,
        }
    }
    Ok(())
}

/// Applies one environment variable if it names a known option. The value is read as the
/// type of the option's default: a string stays a string, a number or list is parsed as TOML.
fn apply_env(table: &mut toml::Table, name: &str, value: &str) -> Result<(), ConfigError> {
    let Some(rest) = name.strip_prefix("CAU_") else {
        return Ok(());
    };
    for (section, options) in table.iter_mut() {
        let toml::Value::Table(options) = options else {
            continue;
        };
        let section_prefix = format!("{}_", section.to_uppercase());
        let Some(option) = rest.strip_prefix(&section_prefix) else {
            continue;
        };
        for (key, slot) in options.iter_mut() {
            if key.to_uppercase() != option {
                continue;
            }
            let parsed = match slot {
                toml::Value::String(_) => toml::Value::String(value.to_owned()),
                _ => parse_scalar(value).map_err(|message| ConfigError::Environment {
                    name: name.to_owned(),
                    message,
                })?,
            };
            *slot = parsed;
            return Ok(());
        }
    }
    // Other CAU_ variables (such as CAU_CONFIG) belong to other parts of Cầu.
    Ok(())
}

fn parse_scalar(value: &str) -> Result<toml::Value, String> {
    let doc = format!("v = {value}");
    let mut table = doc
        .parse::<toml::Table>()
        .map_err(|e| e.message().to_owned())?;
    table.remove("v").ok_or_else(|| "no value".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_parse() {
        let config = Config::defaults();
        assert_eq!(config.http.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.tls.mode, TlsMode::Off);
        assert_eq!(
            config.media.advertised_ip,
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(config.media.peer_timeout(), Duration::from_secs(4));
        assert_eq!(config.storage.data_dir, PathBuf::from("data"));
        assert_eq!(
            config.meetings.join_before_start(),
            Duration::from_secs(3600)
        );
        assert_eq!(config.auth.public_url, "");
        assert_eq!(config.admin.token(), None);
    }

    #[test]
    fn ice_tcp_takes_udp_listens_port_unless_told() {
        let config = Config::defaults();
        assert_eq!(
            config.media.tcp_listen().map(|a| a.port()),
            Some(config.media.udp_listen.port())
        );
        let own = Config::from_layers(Some(("t.toml", "[media]\nice_tcp_port = 4443")), env(&[]));
        assert_eq!(
            own.unwrap().media.tcp_listen().map(|a| a.port()),
            Some(4443)
        );
        let off = Config::from_layers(Some(("t.toml", "[media]\nice_tcp = false")), env(&[]));
        assert_eq!(off.unwrap().media.tcp_listen(), None);
    }

    #[test]
    fn loudest_audio_is_a_count_or_off() {
        assert_eq!(Config::defaults().media.loudest_audio(), Some(6));
        let off = Config::from_layers(Some(("t.toml", "[media]\nloudest_audio = 0")), env(&[]));
        assert_eq!(off.unwrap().media.loudest_audio(), None);
        let err = Config::from_layers(Some(("t.toml", "[media]\nloudest_audio = 65")), env(&[]))
            .unwrap_err();
        assert!(err.to_string().contains("loudest_audio"), "{err}");
    }

    #[test]
    fn line_test_defaults_and_refusals() {
        let config = Config::defaults();
        let line_test = &config.line_test;
        assert_eq!(line_test.probe_interval(), Duration::from_millis(20));
        let total = line_test.probe_phase() + line_test.download() + line_test.upload();
        assert!(
            total <= Duration::from_secs(15),
            "the test stays short: {total:?}"
        );
        assert!(line_test.minimum_kbps < line_test.upload_kbps);
        let refused = |user: &str| {
            let err = Config::from_layers(Some(("test.toml", user)), env(&[])).unwrap_err();
            assert!(err.to_string().contains("line_test"), "{err}");
        };
        refused("[line_test]\nrtt_ready_ms = 500");
        refused("[line_test]\nloss_marginal_percent = 0.5");
        refused("[line_test]\ndownload_s = 0");
        refused("[line_test]\nminimum_kbps = 1000");
        let env_set = Config::from_layers(None, env(&[("CAU_LINE_TEST_UPLOAD_S", "6")])).unwrap();
        assert_eq!(env_set.line_test.upload(), Duration::from_secs(6));
    }

    #[test]
    fn admin_token_comes_from_its_environment_variable_and_stays_hidden() {
        let token = "s3cret-token-of-the-province";
        let config = Config::from_layers(None, env(&[("CAU_ADMIN_TOKEN", token)])).unwrap();
        assert_eq!(config.admin.token(), Some(token));
        assert!(!format!("{config:?}").contains(token));
    }

    #[test]
    fn public_url_loses_its_trailing_slash() {
        let user = "[auth]\npublic_url = \"https://hop.example.vn/\"\n";
        let config = Config::from_layers(Some(("test.toml", user)), env(&[])).unwrap();
        assert_eq!(config.auth.public_url, "https://hop.example.vn");
    }

    #[test]
    fn default_sites_file_is_valid_toml() {
        let table: toml::Table = DEFAULT_SITES_TOML.parse().unwrap();
        let sites = table["site"].as_array().unwrap();
        assert_eq!(sites.len(), 58);
    }

    #[test]
    fn user_file_overrides_only_what_it_names() {
        let user = "[media]\nadvertised_ip = \"10.1.2.3\"\n";
        let config = Config::from_layers(Some(("test.toml", user)), env(&[])).unwrap();
        assert_eq!(
            config.media.advertised_ip,
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
        assert_eq!(config.http.listen, "127.0.0.1:8080".parse().unwrap());
    }

    #[test]
    fn environment_wins_over_file() {
        let user = "[limits]\nmax_peers = 10\n";
        let config = Config::from_layers(
            Some(("test.toml", user)),
            env(&[
                ("CAU_LIMITS_MAX_PEERS", "20"),
                ("CAU_HTTP_LISTEN", "0.0.0.0:9000"),
            ]),
        )
        .unwrap();
        assert_eq!(config.limits.max_peers, 20);
        assert_eq!(config.http.listen, "0.0.0.0:9000".parse().unwrap());
    }

    #[test]
    fn errors_name_the_problem() {
        let check = |user: &str, env_pairs: &[(&str, &str)], expected: &str| {
            let err = Config::from_layers(Some(("test.toml", user)), env(env_pairs)).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(expected),
                "{text:?} should mention {expected:?}"
            );
        };
        check(
            "[media]\nadvertized_ip = \"1.2.3.4\"",
            &[],
            "unknown option `media.advertized_ip`",
        );
        check("[media", &[], "test.toml is not valid TOML");
        check("[tls]\nmode = \"files\"", &[], "needs tls.cert and tls.key");
        check("[tls]\nmode = \"sometimes\"", &[], "unknown variant");
        check(
            "",
            &[("CAU_LIMITS_MAX_PEERS", "many")],
            "CAU_LIMITS_MAX_PEERS",
        );
        check("[media]\nadvertised_ip = \"0.0.0.0\"", &[], "not 0.0.0.0");
        check("[http]\nlisten = 8080", &[], "invalid configuration");
        check("[storage]\ndata_dir = \"\"", &[], "storage.data_dir");
        check(
            "[auth]\npublic_url = \"hop.example.vn\"",
            &[],
            "auth.public_url",
        );
        check(
            "",
            &[("CAU_ADMIN_TOKEN", "short")],
            "at least 16 characters",
        );
        check("[limits]\njoin_burst = 0", &[], "at least 1");
        check(
            "[limits]\nallowed_origins = [\"https://portal.example.vn/\"]",
            &[],
            "without a path",
        );
        check(
            "[meetings]\njoin_before_start_minutes = 100000",
            &[],
            "join_before_start_minutes",
        );
    }
}
