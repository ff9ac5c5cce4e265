//! Command-line flags, and the [`crate::server::Config`] they make.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use std::sync::Arc;

use crate::assets::Ui;
use crate::audit::AuditLog;
use crate::policy::Policy;
use crate::security::{random_token, read_token_file, validate_token, Auth, Gate};
use crate::server::{Config, Mode, Serving};
use crate::session::{Limits, DEFAULT_MAX_COMMAND_BYTES};
use crate::target::QmpTarget;

/// Serves the qmp-console web UI and relays its websockets to a QEMU QMP monitor.
#[derive(Debug, Parser)]
#[command(name = "qmp-bridge", version)]
pub struct Cli {
    /// QMP monitor: unix:PATH, tcp:HOST:PORT, or a socket path; NAME=TARGET names it
    /// (served at /vm/NAME and /ws/NAME). Repeatable.
    #[arg(long, value_name = "[NAME=]TARGET")]
    pub qmp: Vec<NamedTarget>,

    /// Serve every QMP socket in this folder, picking up sockets that appear later and
    /// showing those that vanish as gone (dropped after 60 s); each is named after its file
    /// (files making the same name are reported, and none of them is served).
    #[arg(long, value_name = "DIR")]
    pub qmp_dir: Option<PathBuf>,

    /// Serve every domain of this libvirt connection (default qemu:///system), live as
    /// domains are defined, started, stopped and undefined; repeatable for several hosts
    /// (qemu+ssh://root@host2/system).
    #[arg(long, value_name = "URI", num_args = 0..=1, default_missing_value = "qemu:///system")]
    pub libvirt: Vec<String>,

    /// guarded: a libvirt domain runs queries, the run-state commands (done through
    /// libvirt) and what --allow names; open: what any VM runs.
    #[arg(long, value_enum, default_value = "guarded")]
    pub libvirt_policy: LibvirtPolicy,

    /// shared: one QMP connection for all clients, each with its own session (default);
    /// relay: each client gets its own QMP connection (QEMU serves one at a time).
    #[arg(long, value_enum, default_value = "shared")]
    pub mode: Mode,

    /// Shared mode: also offer the shared session on this Unix socket (mode 0600), for
    /// qmp-shell, the qemu.qmp library and other QMP tools.
    #[arg(long, value_name = "PATH")]
    pub share_socket: Option<PathBuf>,

    /// Address and port to serve the UI and /ws on (port 0 picks a free one).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8780")]
    pub listen: SocketAddr,

    /// Serve the UI from this folder instead of the copy built into the binary.
    #[arg(long, value_name = "DIR")]
    pub ui_dir: Option<PathBuf>,

    /// Largest QMP message relayed in either direction, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = qmp::framing::DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,

    /// Largest command a client may send, in bytes: QEMU reads commands slowly (about
    /// 0.5 MB/s), so a huge one would stall the VM's monitor for everyone.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_COMMAND_BYTES)]
    pub max_command_bytes: usize,

    /// Seconds QEMU may take to answer a command before its client is told it is stalled
    /// (the reply still follows if it comes) and /healthz reports the stall.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = seconds)]
    pub command_timeout: Duration,

    /// Negotiate out-of-band execution with QEMU and let clients use exec-oob (subject to
    /// --allow/--deny). Off by default: QEMU's out-of-band queue is rarely needed.
    #[arg(long)]
    pub allow_oob: bool,

    /// Seconds QEMU may take to greet before its monitor counts as busy.
    #[arg(long, value_name = "SECS", default_value = "3", value_parser = seconds)]
    pub greeting_timeout: Duration,

    /// Seconds a delivery may stall (a browser that does not read) before the session is closed.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = seconds)]
    pub send_timeout: Duration,

    /// Seconds between websocket pings; two silent intervals close the session.
    #[arg(long, value_name = "SECS", default_value = "15", value_parser = seconds)]
    pub ping_interval: Duration,

    /// Worker threads (default: one per core); 1 runs everything on one thread.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,

    /// Log more: -v logs every message relayed.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// The token websocket clients must present (default: a random one per start, shown
    /// in the printed URL). Visible in `ps`: prefer --token-file.
    #[arg(long, value_name = "VALUE", conflicts_with_all = ["token_file", "no_auth"])]
    pub token: Option<String>,

    /// Read the token from the first line of this file.
    #[arg(long, value_name = "PATH", conflicts_with = "no_auth")]
    pub token_file: Option<PathBuf>,

    /// Accept websocket clients without a token (anyone who reaches the port drives the VM).
    #[arg(long)]
    pub no_auth: bool,

    /// Also accept websockets from pages at this origin (e.g. `https://console.example`);
    /// repeatable. The bridge's own origin is always accepted.
    #[arg(long, value_name = "URL", value_parser = origin)]
    pub allow_origin: Vec<String>,

    /// PEM certificate chain: serve https and wss (needs --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Let clients run query commands only (query-*, qom-get, ...; no HMP).
    #[arg(long)]
    pub read_only: bool,

    /// Let clients run only commands matching this glob (* and ?); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub allow: Vec<String>,

    /// Refuse commands matching this glob, also inside a transaction; repeatable; wins over --allow.
    #[arg(long, value_name = "GLOB")]
    pub deny: Vec<String>,

    /// Most client sessions at once, websockets and --share-socket clients together; more
    /// websockets are refused with HTTP 503, more socket clients with a QMP error.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_clients: usize,

    /// Close a session after this many seconds without a command (default: never).
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub idle_timeout: Option<Duration>,

    /// Seconds a request may take to arrive (TLS handshake, then headers), and a
    /// --share-socket message to be finished: slow clients are cut off.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = seconds)]
    pub request_timeout: Duration,

    /// Append one JSON line per command to this file (time, client, command, id, outcome).
    #[arg(long, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,
}

/// What libvirt domains may be sent (`--libvirt-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LibvirtPolicy {
    /// Queries, the run-state commands (through libvirt's API), and what `--allow` names:
    /// nothing that changes the domain behind libvirt's back.
    Guarded,
    /// The same rules as any VM.
    Open,
}

/// A `--qmp` value: a target with an optional name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedTarget {
    pub name: Option<String>,
    pub target: QmpTarget,
}

impl std::str::FromStr for NamedTarget {
    type Err = crate::target::TargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some((name, target)) = s.split_once('=') {
            if crate::fleet::valid_name(name) {
                return Ok(NamedTarget {
                    name: Some(name.to_owned()),
                    target: target.parse()?,
                });
            }
        }
        Ok(NamedTarget {
            name: None,
            target: s.parse()?,
        })
    }
}

impl NamedTarget {
    /// The given name, or one made from the socket's file name (or `HOST_PORT`).
    pub fn name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        let derived = match &self.target {
            QmpTarget::Unix(p) => crate::fleet::name_for_file(
                &p.file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            QmpTarget::Tcp(a) => crate::fleet::name_for_file(&a.replace(':', "_")),
            QmpTarget::Libvirt { domain, .. } => crate::fleet::name_for_file(domain),
        };
        if crate::fleet::valid_name(&derived) {
            derived
        } else {
            "vm".into()
        }
    }
}

fn origin(s: &str) -> Result<String, String> {
    crate::security::normalize_origin(s)
        .ok_or_else(|| format!("{s:?} is not an origin like https://host[:port]"))
}

fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
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
    #[error("--max-command-bytes must be at least 256 and at most --max-message-bytes")]
    MaxCommand,
    #[error("--max-clients must be at least 1")]
    MaxClients,
    #[error("--share-socket needs --mode shared")]
    ShareNeedsShared,
    #[error("this qmp-bridge was built without libvirt support (cargo feature `libvirt`)")]
    NoLibvirt,
    #[error("no QMP target: give --qmp TARGET (repeatable), --qmp-dir DIR or --libvirt")]
    NoTarget,
    #[error("--qmp: two targets are named {0:?}; name them with NAME=TARGET")]
    DuplicateName(String),
    #[error("--mode relay serves exactly one --qmp target (no --qmp-dir, no --libvirt)")]
    RelayNeedsOne,
    #[error("--share-socket serves a single VM: give one --qmp and no --qmp-dir")]
    ShareNeedsOne,
    #[error("--qmp-dir {0}: not a readable folder")]
    QmpDir(PathBuf),
    #[error(transparent)]
    Token(#[from] crate::security::TokenError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("--audit-log {path}: {reason}")]
    Audit { path: PathBuf, reason: String },
}

impl Cli {
    /// Checks the flags against the machine and builds the server config.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        for t in &self.qmp {
            t.target.preflight()?;
        }
        let mut vms: Vec<(String, QmpTarget)> = Vec::new();
        for t in &self.qmp {
            let name = t.name();
            if vms.iter().any(|(n, _)| *n == name) {
                return Err(ConfigError::DuplicateName(name));
            }
            vms.push((name, t.target.clone()));
        }
        if let Some(dir) = &self.qmp_dir {
            if !dir.is_dir() || std::fs::read_dir(dir).is_err() {
                return Err(ConfigError::QmpDir(dir.clone()));
            }
        }
        if self.share_socket.is_some() && self.mode != Mode::Shared {
            return Err(ConfigError::ShareNeedsShared);
        }
        if !self.libvirt.is_empty() && !cfg!(feature = "libvirt") {
            return Err(ConfigError::NoLibvirt);
        }
        let libvirt = self.libvirt;
        let serving = match (self.mode, vms.len(), self.qmp_dir) {
            (_, 0, None) if libvirt.is_empty() => return Err(ConfigError::NoTarget),
            (Mode::Relay, _, _) if !libvirt.is_empty() => return Err(ConfigError::RelayNeedsOne),
            (Mode::Relay, 1, None) => {
                let (vm, target) = vms.remove(0);
                Serving::Relay { vm, target }
            }
            (Mode::Relay, _, _) => return Err(ConfigError::RelayNeedsOne),
            (Mode::Shared, 1, None) if libvirt.is_empty() => {
                let (vm, target) = vms.remove(0);
                Serving::One {
                    vm,
                    target,
                    share_socket: self.share_socket,
                }
            }
            (Mode::Shared, _, _) if self.share_socket.is_some() => {
                return Err(ConfigError::ShareNeedsOne)
            }
            (Mode::Shared, _, qmp_dir) => Serving::Fleet {
                vms,
                qmp_dir,
                libvirt,
            },
        };
        let ui = match self.ui_dir {
            Some(dir) if dir.is_dir() && std::fs::read_dir(&dir).is_ok() => Ui::Dir(dir),
            Some(dir) => return Err(ConfigError::UiDir(dir)),
            None => Ui::Embedded,
        };
        if self.max_message_bytes < 1024 {
            return Err(ConfigError::MaxMessage);
        }
        if !(256..=self.max_message_bytes).contains(&self.max_command_bytes) {
            return Err(ConfigError::MaxCommand);
        }
        if self.max_clients == 0 {
            return Err(ConfigError::MaxClients);
        }
        let auth = match (self.no_auth, self.token, self.token_file) {
            (true, _, _) => Auth::Disabled,
            (false, Some(t), _) => Auth::Token(validate_token(&t, "--token")?),
            (false, None, Some(path)) => Auth::Token(read_token_file(&path)?),
            (false, None, None) => Auth::Token(random_token()?),
        };
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
            _ => None,
        };
        let audit = match &self.audit_log {
            Some(path) => Some(Arc::new(AuditLog::open(path).map_err(|e| {
                ConfigError::Audit {
                    path: path.clone(),
                    reason: e.to_string(),
                }
            })?)),
            None => None,
        };
        let policy = Policy {
            read_only: self.read_only,
            allow: self.allow,
            deny: self.deny,
            guarded: false,
        };
        Ok(Config {
            serving,
            gate: Gate {
                auth,
                allowed_origins: self.allow_origin,
                scheme: if tls.is_some() { "https" } else { "http" },
                loopback: self.listen.ip().is_loopback(),
            },
            limits: Limits {
                policy,
                greeting_timeout: self.greeting_timeout,
                max_message_bytes: self.max_message_bytes,
                max_command_bytes: self.max_command_bytes,
                command_timeout: self.command_timeout,
                allow_oob: self.allow_oob,
                send_timeout: self.send_timeout,
                ping_interval: self.ping_interval,
                idle_timeout: self.idle_timeout,
                audit,
                libvirt_guarded: self.libvirt_policy == LibvirtPolicy::Guarded,
            },
            ui,
            tls,
            max_clients: self.max_clients,
            request_timeout: self.request_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["qmp-bridge"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().into_config()
    }

    fn dir() -> String {
        std::env::temp_dir().display().to_string()
    }

    #[test]
    fn each_way_of_serving_from_its_flags() {
        let one = config(&["--qmp", "tcp:127.0.0.1:1"]).unwrap();
        assert!(matches!(
            one.serving,
            Serving::One {
                share_socket: None,
                ..
            }
        ));
        let relay = config(&["--qmp", "tcp:127.0.0.1:1", "--mode", "relay"]).unwrap();
        assert!(matches!(relay.serving, Serving::Relay { .. }));
        let shared = ["--qmp", "tcp:127.0.0.1:1", "--share-socket", "/tmp/x.sock"];
        assert!(matches!(
            config(&shared).unwrap().serving,
            Serving::One {
                share_socket: Some(_),
                ..
            }
        ));
        let d = dir();
        let fleet = config(&["--qmp", "a=tcp:127.0.0.1:1", "--qmp-dir", &d]).unwrap();
        assert!(
            matches!(&fleet.serving, Serving::Fleet { vms, qmp_dir: Some(_), .. } if vms.len() == 1)
        );
        assert!(!fleet.serving.single());
    }

    #[test]
    fn combinations_that_cannot_work_are_start_up_errors() {
        let d = dir();
        let cases: [(&[&str], &str); 6] = [
            (&[], "no QMP target"),
            (
                &["--qmp-dir", &d, "--mode", "relay"],
                "relay serves exactly one",
            ),
            (
                &[
                    "--qmp",
                    "a=tcp:h:1",
                    "--qmp",
                    "b=tcp:h:2",
                    "--mode",
                    "relay",
                ],
                "relay serves exactly one",
            ),
            (
                &[
                    "--qmp",
                    "tcp:h:1",
                    "--qmp-dir",
                    &d,
                    "--share-socket",
                    "/tmp/s",
                ],
                "serves a single VM",
            ),
            (
                &[
                    "--qmp",
                    "tcp:h:1",
                    "--mode",
                    "relay",
                    "--share-socket",
                    "/tmp/s",
                ],
                "needs --mode shared",
            ),
            (
                &["--qmp", "tcp:h:1", "--max-command-bytes", "100"],
                "at least 256",
            ),
        ];
        for (args, why) in cases {
            let e = config(args).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(why), "{args:?}: {e}");
        }
    }
}
