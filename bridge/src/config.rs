//! Command-line flags, and the [`Config`](crate::server::Config) they make.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::assets::Ui;
use crate::relay::Settings;
use crate::server::Config;
use crate::target::QmpTarget;

/// Serves the qmp-console web UI and relays its websockets to a QEMU QMP monitor.
#[derive(Debug, Parser)]
#[command(name = "qmp-bridge", version)]
pub struct Cli {
    /// QMP monitor to relay to: unix:PATH, tcp:HOST:PORT, or a socket path.
    #[arg(long, value_name = "TARGET")]
    pub qmp: QmpTarget,

    /// Address and port to serve the UI and /ws on (port 0 picks a free one).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8780")]
    pub listen: SocketAddr,

    /// Serve the UI from this folder instead of the copy built into the binary.
    #[arg(long, value_name = "DIR")]
    pub ui_dir: Option<PathBuf>,

    /// Largest QMP message relayed in either direction, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = qmp::framing::DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,

    /// Seconds QEMU may take to greet before its monitor counts as busy.
    #[arg(long, value_name = "SECS", default_value = "3", value_parser = seconds)]
    pub greeting_timeout: Duration,

    /// Seconds a delivery may stall (a browser that does not read) before the session is closed.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = seconds)]
    pub send_timeout: Duration,

    /// Seconds between websocket pings; two silent intervals close the session.
    #[arg(long, value_name = "SECS", default_value = "15", value_parser = seconds)]
    pub ping_interval: Duration,

    /// Log more: -v logs every message relayed.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("{s} must be above 0 and at most 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A flag combination that can not work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Target(#[from] crate::target::TargetError),
    #[error("--ui-dir {0}: not a readable folder")]
    UiDir(PathBuf),
    #[error("--max-message-bytes must be at least 1024")]
    MaxMessage,
}

impl Cli {
    /// Checks the flags against the machine and builds the server config.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        self.qmp.preflight()?;
        let ui = match self.ui_dir {
            Some(dir) if dir.is_dir() && std::fs::read_dir(&dir).is_ok() => Ui::Dir(dir),
            Some(dir) => return Err(ConfigError::UiDir(dir)),
            None => Ui::Embedded,
        };
        if self.max_message_bytes < 1024 {
            return Err(ConfigError::MaxMessage);
        }
        Ok(Config {
            relay: Settings {
                target: self.qmp,
                greeting_timeout: self.greeting_timeout,
                max_message_bytes: self.max_message_bytes,
                send_timeout: self.send_timeout,
                ping_interval: self.ping_interval,
            },
            ui,
        })
    }
}
