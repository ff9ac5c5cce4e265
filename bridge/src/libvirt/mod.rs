//! `--libvirt URI`: libvirt-managed domains, reached through libvirt itself.
//!
//! - [`Host`]: one libvirt connection (`qemu:///system`, `qemu+ssh://host/system`, ...),
//!   its domains, and the events libvirt relays: every domain's QMP events (routed to the
//!   sessions on that domain) and lifecycle events (the fleet follows them).
//! - [`DomainMonitor`]: a domain as a [`Monitor`] for the multiplexer. libvirt holds the
//!   QMP connection, already negotiated; commands go through
//!   `virDomainQemuMonitorCommand` (which refuses an `id`: the bridge keeps its own and
//!   puts it back on the reply), one at a time in order, off the async workers; the
//!   greeting is made from `query-version`, without `oob`. Run-state commands (`stop`,
//!   `cont`, `system_reset`, `system_powerdown`) become libvirt's own calls (suspend,
//!   resume, reset, shutdown), so libvirt stays in charge of the state it keeps.
//! - [`ffi`]: the event registrations the `virt` crate lacks.
//!
//! libvirt calls block: every call runs on tokio's blocking pool, and libvirt's event loop
//! has a thread of its own.

pub mod ffi;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};
use tokio::sync::mpsc;
use virt::connect::Connect;
use virt::domain::Domain;

use crate::upstream::{Monitor, MonitorConn, UpstreamError};
use ffi::{Lifecycle, QemuEvent};

/// What a session on a domain receives: QEMU's messages, or the end of the domain's QMP.
type Inbound = mpsc::UnboundedSender<Result<String, UpstreamError>>;

/// A domain as the fleet sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainInfo {
    pub name: String,
    pub active: bool,
}

/// One libvirt connection and the events it relays.
pub struct Host {
    pub uri: String,
    conn: Connect,
    /// The sessions open on each domain, by domain name.
    sessions: Mutex<HashMap<String, Vec<Inbound>>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("uri", &self.uri).finish()
    }
}

/// Starts libvirt's event loop once per process (before any connection is opened).
fn event_loop() -> Result<(), String> {
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            // errors are returned and reported by the bridge, not printed by libvirt
            virt::error::clear_error_callback();
            ffi::register_event_loop().map_err(|e| e.to_string())?;
            std::thread::Builder::new()
                .name("libvirt-events".into())
                .spawn(ffi::run_event_loop)
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .clone()
}

/// Why libvirt could not be used.
#[derive(Debug, thiserror::Error)]
#[error("--libvirt {uri}: {reason}")]
pub struct LibvirtError {
    pub uri: String,
    pub reason: String,
}

impl Host {
    /// Opens `uri` and registers for its events; lifecycle events go to `lifecycle`.
    /// Blocking: call it off the async workers.
    pub fn open(
        uri: &str,
        lifecycle: mpsc::UnboundedSender<(String, Lifecycle)>,
    ) -> Result<Arc<Host>, LibvirtError> {
        let fail = |reason: String| LibvirtError {
            uri: uri.to_owned(),
            reason,
        };
        event_loop().map_err(fail)?;
        let conn = Connect::open(Some(uri)).map_err(|e| fail(e.to_string()))?;
        let host = Arc::new(Host {
            uri: uri.to_owned(),
            conn,
            sessions: Mutex::default(),
        });
        let weak = Arc::downgrade(&host);
        ffi::register_qemu_events(&host.conn, move |event| {
            if let Some(host) = weak.upgrade() {
                host.route_event(event);
            }
        })
        .map_err(|e| fail(format!("QEMU monitor events: {e}")))?;
        let weak = Arc::downgrade(&host);
        ffi::register_lifecycle_events(&host.conn, move |domain, what| {
            if let Some(host) = weak.upgrade() {
                if matches!(what, Lifecycle::Stopped | Lifecycle::Crashed) {
                    host.end_sessions(&domain);
                }
            }
            let _ = lifecycle.send((domain, what));
        })
        .map_err(|e| fail(format!("lifecycle events: {e}")))?;
        Ok(host)
    }

    /// Every domain, running or not. Blocking.
    pub fn domains(&self) -> Result<Vec<DomainInfo>, LibvirtError> {
        let domains = self.conn.list_all_domains(0).map_err(|e| LibvirtError {
            uri: self.uri.clone(),
            reason: e.to_string(),
        })?;
        Ok(domains
            .iter()
            .filter_map(|d| {
                Some(DomainInfo {
                    name: d.name().ok()?,
                    active: d.is_active().unwrap_or(false),
                })
            })
            .collect())
    }

    /// Whether `domain` runs now. Blocking.
    pub fn is_active(&self, domain: &str) -> bool {
        self.conn
            .lookup_domain_by_name(domain)
            .and_then(|d| d.is_active())
            .unwrap_or(false)
    }

    /// Passes a domain's QMP event to its sessions (on libvirt's event thread).
    fn route_event(&self, event: QemuEvent) {
        let data: Value = event
            .details
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_else(|| json!({}));
        let text = json!({
            "event": event.name,
            "data": data,
            "timestamp": {"seconds": event.seconds, "microseconds": event.micros},
        })
        .to_string();
        if let Ok(mut sessions) = self.sessions.lock() {
            if let Some(list) = sessions.get_mut(&event.domain) {
                list.retain(|s| s.send(Ok(text.clone())).is_ok());
            }
        }
    }

    /// The domain stopped: its sessions' QMP is gone.
    fn end_sessions(&self, domain: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            for s in sessions.remove(domain).unwrap_or_default() {
                let _ = s.send(Err(UpstreamError::Closed));
            }
        }
    }

    fn subscribe(&self, domain: &str, inbound: Inbound) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.entry(domain.to_owned()).or_default().push(inbound);
        }
    }
}

/// A libvirt domain as a QMP monitor.
#[derive(Debug, Clone)]
pub struct DomainMonitor {
    pub host: Arc<Host>,
    pub domain: String,
}

/// The greeting QEMU would have sent, from its `query-version` answer (no `oob`: libvirt
/// negotiated the monitor without it).
fn greeting(version_reply: &str) -> Result<String, String> {
    let reply: Value = serde_json::from_str(version_reply).map_err(|e| e.to_string())?;
    let version = reply
        .get("return")
        .ok_or_else(|| format!("query-version answered {version_reply}"))?;
    Ok(json!({"QMP": {"version": version, "capabilities": []}}).to_string())
}

impl DomainMonitor {
    /// Starts the shut-off domain (`virsh start`). Blocking.
    pub fn start(&self) -> Result<(), String> {
        let domain = self
            .host
            .conn
            .lookup_domain_by_name(&self.domain)
            .map_err(|e| e.to_string())?;
        domain.create().map(drop).map_err(|e| e.to_string())
    }
}

impl Monitor for DomainMonitor {
    type Conn = DomainConn;

    async fn open(&self) -> Result<(DomainConn, String), UpstreamError> {
        let target = self.describe();
        let (inbound, messages) = mpsc::unbounded_channel();
        // subscribed first: no event between the greeting and the first read is lost
        self.host.subscribe(&self.domain, inbound.clone());
        let (host, name) = (self.host.clone(), self.domain.clone());
        let opened = tokio::task::spawn_blocking(move || {
            let domain = host
                .conn
                .lookup_domain_by_name(&name)
                .map_err(|e| e.to_string())?;
            if !domain.is_active().map_err(|e| e.to_string())? {
                return Err("the domain is not running".to_owned());
            }
            let version = domain
                .qemu_monitor_command(r#"{"execute":"query-version"}"#, 0)
                .map_err(|e| e.to_string())?;
            Ok((domain, greeting(&version)?))
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let (domain, greeting) = opened.map_err(|why| UpstreamError::Unreachable {
            target,
            source: std::io::Error::other(why),
        })?;
        let (commands, queue) = mpsc::unbounded_channel();
        tokio::spawn(run_commands(Arc::new(domain), queue, inbound));
        let conn = DomainConn {
            commands,
            messages,
            ended: None,
        };
        Ok((conn, greeting))
    }

    fn describe(&self) -> String {
        format!("libvirt:{}#{}", self.host.uri, self.domain)
    }
}

/// A session on a domain.
#[derive(Debug)]
pub struct DomainConn {
    commands: mpsc::UnboundedSender<String>,
    messages: mpsc::UnboundedReceiver<Result<String, UpstreamError>>,
    /// The end [`MonitorConn::recv_ready`] met, for the next `recv` to return.
    ended: Option<UpstreamError>,
}

/// Runs a session's commands through libvirt, one at a time, in order, and passes each
/// reply on with the session's own id.
async fn run_commands(
    domain: Arc<Domain>,
    mut queue: mpsc::UnboundedReceiver<String>,
    inbound: Inbound,
) {
    while let Some(text) = queue.recv().await {
        let Ok(Value::Object(mut command)) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let id = command.remove("id");
        let execute = command
            .get("execute")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let bare = command.get("arguments").is_none_or(|a| a == &json!({}));
        let reply = if execute == "qmp_capabilities" {
            // libvirt negotiated the monitor already
            Ok(json!({"return": {}}).to_string())
        } else if let Some(call) = lifecycle_call(execute).filter(|_| bare) {
            let domain = domain.clone();
            tokio::task::spawn_blocking(move || call(&domain))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
                .map(|()| json!({"return": {}}).to_string())
        } else {
            let (domain, text) = (domain.clone(), Value::Object(command).to_string());
            tokio::task::spawn_blocking(move || domain.qemu_monitor_command(&text, 0))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
        };
        let message = match reply {
            Ok(reply) => with_id(&reply, id.as_ref()),
            Err(why) if !domain.is_active().unwrap_or(false) => {
                tracing::debug!("libvirt: {why}");
                let _ = inbound.send(Err(UpstreamError::Closed));
                return;
            }
            Err(why) => {
                let id = id.as_ref().map(qmp::Id::from_value);
                qmp::message::error_reply(id.as_ref(), "GenericError", &format!("libvirt: {why}"))
            }
        };
        if inbound.send(Ok(message)).is_err() {
            return;
        }
    }
}

/// A libvirt call on a domain.
type LibvirtCall = fn(&Domain) -> Result<(), virt::error::Error>;

/// The libvirt call that does what a run-state command asks, so that libvirt, which keeps
/// the domain's state, does it (and knows why: `virsh domstate --reason` says `user`).
fn lifecycle_call(execute: &str) -> Option<LibvirtCall> {
    match execute {
        "stop" => Some(|d| d.suspend().map(drop)),
        "cont" => Some(|d| d.resume().map(drop)),
        "system_reset" => Some(|d| d.reset().map(drop)),
        "system_powerdown" => Some(|d| d.shutdown().map(drop)),
        _ => None,
    }
}

/// `reply` with libvirt's id replaced by the session's.
fn with_id(reply: &str, id: Option<&Value>) -> String {
    match qmp::Envelope::parse(reply) {
        Ok(mut envelope) => {
            envelope.set_id(id.map(qmp::Id::from_value).as_ref());
            envelope.to_text()
        }
        Err(_) => reply.to_owned(),
    }
}

impl MonitorConn for DomainConn {
    async fn send(&mut self, text: &str) -> Result<(), UpstreamError> {
        self.commands
            .send(text.to_owned())
            .map_err(|_| UpstreamError::Closed)
    }

    async fn recv(&mut self) -> Result<String, UpstreamError> {
        if let Some(e) = self.ended.take() {
            return Err(e);
        }
        match self.messages.recv().await {
            Some(message) => message,
            None => Err(UpstreamError::Closed),
        }
    }

    fn recv_ready(&mut self) -> Option<String> {
        if self.ended.is_some() {
            return None;
        }
        match self.messages.try_recv() {
            Ok(Ok(message)) => Some(message),
            Ok(Err(e)) => {
                self.ended = Some(e);
                None
            }
            Err(_) => None,
        }
    }
}

/// The name prefix of each `--libvirt` URI's domains: none with a single URI; with several,
/// the URI's host (`local` for a local one), numbered when two are alike.
pub fn prefixes(uris: &[String]) -> Vec<(String, Option<String>)> {
    if uris.len() < 2 {
        return uris.iter().map(|u| (u.clone(), None)).collect();
    }
    let mut taken: Vec<String> = Vec::new();
    uris.iter()
        .map(|uri| {
            let host = uri
                .split_once("://")
                .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
                .map(|h| h.rsplit('@').next().unwrap_or(h))
                .map(|h| h.split(':').next().unwrap_or(h))
                .filter(|h| !h.is_empty())
                .unwrap_or("local");
            let base = crate::fleet::name_for_file(host);
            let mut prefix = base.clone();
            let mut n = 2;
            while taken.contains(&prefix) {
                prefix = format!("{base}{n}");
                n += 1;
            }
            taken.push(prefix.clone());
            (uri.clone(), Some(prefix))
        })
        .collect()
}

/// The VM name of `domain` under `prefix`.
fn vm_name(prefix: Option<&str>, domain: &str) -> String {
    let name = crate::fleet::name_for_file(domain);
    match prefix {
        Some(p) => format!("{p}.{name}"),
        None => name,
    }
}

/// Serves every domain of `uri` in `fleet`, and follows libvirt's lifecycle events:
/// defined domains appear (shut off), started ones connect, stopped ones show as off,
/// undefined ones leave the list.
pub async fn follow(fleet: Arc<crate::fleet::Fleet>, uri: String, prefix: Option<String>) {
    let (events, mut lifecycle) = mpsc::unbounded_channel();
    let opening = uri.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let host = Host::open(&opening, events)?;
        let domains = host.domains()?;
        Ok::<_, LibvirtError>((host, domains))
    })
    .await;
    let (host, domains) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(e)) => {
            tracing::warn!("{e}");
            fleet.add_problem(uri, e.reason);
            return;
        }
        Err(e) => {
            fleet.add_problem(uri, e.to_string());
            return;
        }
    };
    tracing::info!(%uri, domains = domains.len(), "serving libvirt domains");
    let add = |name: &str, active: bool| {
        let monitor = DomainMonitor {
            host: host.clone(),
            domain: name.to_owned(),
        };
        fleet.add_domain(vm_name(prefix.as_deref(), name), monitor, active);
    };
    for d in &domains {
        add(&d.name, d.active);
    }
    while let Some((domain, what)) = lifecycle.recv().await {
        let name = vm_name(prefix.as_deref(), &domain);
        tracing::debug!(%uri, %domain, ?what, "libvirt lifecycle event");
        match what {
            Lifecycle::Defined => {
                if fleet.get(&name).is_none() {
                    let (host, asked) = (host.clone(), domain.clone());
                    let active = tokio::task::spawn_blocking(move || host.is_active(&asked)).await;
                    add(&domain, active.unwrap_or(false));
                }
            }
            Lifecycle::Undefined => fleet.remove_domain(&name),
            Lifecycle::Started | Lifecycle::Resumed | Lifecycle::Suspended => {
                fleet.set_domain_active(&name, true)
            }
            Lifecycle::Stopped | Lifecycle::Crashed => fleet.set_domain_active(&name, false),
            Lifecycle::Shutdown | Lifecycle::PmSuspended | Lifecycle::Other(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_greeting_from_query_version() {
        let g = greeting(r#"{"return":{"qemu":{"micro":22,"minor":2,"major":7},"package":"Debian"},"id":"libvirt-416"}"#).unwrap();
        let Ok(qmp::Message::Greeting(g)) = qmp::Message::parse(&g) else {
            panic!("{g}")
        };
        assert_eq!(
            (g.version.major, g.version.minor, g.package.as_str()),
            (7, 2, "Debian")
        );
        assert!(g.capabilities.is_empty());
        assert!(greeting(r#"{"error":{"class":"x","desc":"y"}}"#).is_err());
    }

    #[test]
    fn replies_get_the_sessions_id_back() {
        let r = with_id(r#"{"return":{},"id":"libvirt-9"}"#, Some(&json!("qmpc-3")));
        assert_eq!(r, r#"{"id":"qmpc-3","return":{}}"#);
    }

    #[test]
    fn names_tell_hosts_apart() {
        let one = prefixes(&["qemu:///system".into()]);
        assert_eq!(one, [("qemu:///system".into(), None)]);
        let many = prefixes(&[
            "qemu:///system".into(),
            "qemu+ssh://root@host2:2222/system".into(),
            "qemu+tls://host2/system".into(),
        ]);
        let names: Vec<_> = many.iter().map(|(_, p)| p.clone().unwrap()).collect();
        assert_eq!(names, ["local", "host2", "host22"]);
        assert_eq!(vm_name(Some("host2"), "web server"), "host2.web_server");
        assert_eq!(vm_name(None, "db"), "db");
    }
}
