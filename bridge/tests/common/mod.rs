//! An in-process bridge on port 0 for integration tests, stopped through `run`'s shutdown
//! future exactly as a signal stops the binary.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use qmp_bridge::assets::Ui;
use qmp_bridge::policy::Policy;
use qmp_bridge::security::{Auth, Gate};
use qmp_bridge::server::{self, Config, Mode, Serving};
use qmp_bridge::session::{Limits, Settings};
use qmp_bridge::target::QmpTarget;
use tokio::sync::oneshot;

pub struct TestBridge {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Test defaults: short timeouts so fault tests finish quickly.
pub fn settings(target: &str) -> Settings {
    Settings {
        vm: "test-vm".into(),
        target: target.parse().expect("valid target"),
        limits: limits(),
    }
}

/// The limits of [`settings`].
pub fn limits() -> Limits {
    Limits {
        greeting_timeout: Duration::from_secs(2),
        max_message_bytes: qmp::framing::DEFAULT_MAX_MESSAGE_BYTES,
        max_command_bytes: qmp_bridge::session::DEFAULT_MAX_COMMAND_BYTES,
        command_timeout: Duration::from_secs(30),
        allow_oob: false,
        send_timeout: Duration::from_secs(5),
        ping_interval: Duration::from_secs(15),
        idle_timeout: None,
        policy: Policy::default(),
        audit: None,
        libvirt_guarded: true,
    }
}

/// A relay-mode server config around `relay` without a token (tests that need one set
/// `gate.auth`).
pub fn config(relay: Settings) -> Config {
    let serving = Serving::Relay {
        vm: relay.vm.clone(),
        target: relay.target.clone(),
    };
    with_serving(serving, relay.limits)
}

/// A shared-mode config for the one VM of `settings`, with a `--share-socket`.
pub fn shared(settings: Settings, share_socket: Option<PathBuf>) -> Config {
    let serving = Serving::One {
        vm: settings.vm.clone(),
        target: settings.target.clone(),
        share_socket,
    };
    with_serving(serving, settings.limits)
}

/// A config in `mode` for the one VM of `settings`.
pub fn config_in(mode: Mode, settings: Settings) -> Config {
    match mode {
        Mode::Relay => config(settings),
        Mode::Shared => shared(settings, None),
    }
}

/// A shared-mode config serving a fleet: `vms` and the sockets in `qmp_dir`.
pub fn fleet(limits: Limits, vms: Vec<(String, QmpTarget)>, qmp_dir: Option<PathBuf>) -> Config {
    let libvirt = Vec::new();
    with_serving(
        Serving::Fleet {
            vms,
            qmp_dir,
            libvirt,
        },
        limits,
    )
}

/// A shared-mode config serving every domain of each libvirt URI.
pub fn libvirt(limits: Limits, uris: &[&str]) -> Config {
    let serving = Serving::Fleet {
        vms: Vec::new(),
        qmp_dir: None,
        libvirt: uris.iter().map(|u| (*u).to_owned()).collect(),
    };
    with_serving(serving, limits)
}

fn with_serving(serving: Serving, limits: Limits) -> Config {
    Config {
        serving,
        limits,
        ui: Ui::Embedded,
        gate: Gate {
            auth: Auth::Disabled,
            allowed_origins: Vec::new(),
            scheme: "http",
            loopback: true,
        },
        tls: None,
        max_clients: 1024,
        request_timeout: Duration::from_secs(10),
    }
}

pub async fn start(relay: Settings) -> TestBridge {
    start_with(config(relay)).await
}

pub async fn start_with(config: Config) -> TestBridge {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(server::run(listener, config, async {
        let _ = stopped.await;
    }));
    TestBridge {
        addr,
        stop: Some(stop),
        handle,
    }
}

impl TestBridge {
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// True when `/healthz` answers 200.
    pub fn healthy(&self) -> bool {
        testkit::http::get(&self.addr.to_string(), "/healthz", &[])
            .map(|r| r.status == 200)
            .unwrap_or(false)
    }

    /// Triggers shutdown and waits for `run` to return.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.handle).await.expect("server task")
    }
}
