//! `talky`: run the server, apply migrations, print the configuration example, or create a
//! platform admin.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use talky_server::config::{Config, LogFormat};

#[derive(Parser)]
#[command(
    name = "talky",
    version,
    about = "Talky: AI outbound voice-calling campaigns"
)]
struct Cli {
    /// TOML configuration file (environment variables TALKY_* override it).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (applies migrations first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Platform administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print every configuration key with its default, commented.
    Example,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a platform admin (or flag an existing user as one).
    Create {
        #[arg(long)]
        email: String,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Config {
        command: ConfigCommand::Example,
    } = cli.command
    {
        print!("{}", talky_server::config::example());
        return Ok(());
    }
    let cfg = Config::load(cli.config.as_deref(), std::env::vars())?;
    init_logging(cfg.log_format);
    match cli.command {
        Command::Serve => talky_server::app::run(cfg).await,
        Command::Migrate => {
            std::fs::create_dir_all(&cfg.data_dir)?;
            let url = cfg.database_url();
            talky_store::connect(&url)
                .await
                .with_context(|| format!("migrating {}", talky_server::app::redact_url(&url)))?;
            println!("migrations applied");
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::Create { email },
        } => {
            let email = talky_core::Email::parse(&email).context("invalid --email")?;
            std::fs::create_dir_all(&cfg.data_dir)?;
            let store = talky_store::connect(&cfg.database_url()).await?;
            let (user, created) = store
                .create_platform_admin(email.as_str(), chrono::Utc::now())
                .await?;
            println!(
                "{} platform admin {} ({})",
                if created {
                    "created"
                } else {
                    "flagged existing user as"
                },
                user.email,
                user.id
            );
            Ok(())
        }
        Command::Config { .. } => unreachable!("handled above"),
    }
}
