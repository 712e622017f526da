//! `cau`: runs the whole Cầu system in one process.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cau",
    version,
    about = "Cầu: meeting server for a government network of sites"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<CliCommand>,
}

#[derive(Subcommand)]
enum CliCommand {
    /// Runs the server: web client, HTTP API, WebSocket signaling and SFU (the default).
    Serve {
        /// A TOML file with the options to change; see config/cau.toml for all of them.
        #[arg(long, short, env = "CAU_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Prints the documented default configuration.
    DefaultConfig,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,str0m=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(CliCommand::Serve { config: None }) {
        CliCommand::DefaultConfig => {
            print!("{}", cau_config::DEFAULT_TOML);
            Ok(())
        }
        CliCommand::Serve { config } => serve(config),
    }
}

fn serve(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = cau_config::Config::load(path.as_deref(), std::env::vars())?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = cau_signaling::start(config).await?;
        if let Some(token) = server.generated_admin_token() {
            // Printed, not logged: this is the only time anyone sees it.
            println!("Admin token, shown only this once (keep it safe): {token}");
            println!("Or set your own with CAU_ADMIN_TOKEN.");
        }
        println!("Cầu is running. Open {}/ in a browser.", server.base_url());
        println!(
            "Join a room directly: {}/join/giao-ban?name=Tên điểm cầu",
            server.base_url()
        );
        // SIGTERM (systemd, docker, kill) and Ctrl-C both stop gracefully: clients are
        // told to come back, and every record is written before the process ends.
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("cannot listen for SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("cannot listen for Ctrl-C")?,
            _ = terminate.recv() => {}
        }
        tracing::info!("stopping");
        server.shutdown(Duration::from_secs(2)).await;
        tracing::info!("stopped");
        Ok(())
    })
}
