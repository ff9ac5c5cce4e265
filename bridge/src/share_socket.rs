//! `--share-socket PATH`: the shared QMP session on a Unix socket too, for qmp-shell, the
//! `qemu.qmp` Python library, or anything else that speaks QMP, beside the browsers.
//!
//! The socket is created mode 0600: whoever may open it drives the VM, as with QEMU's own
//! socket. Clients speak plain QMP: JSON messages (framed on value boundaries, like
//! QEMU's own parser), replies and events each followed by CRLF.
//!
//! Its clients are held to the websockets' limits: each takes a `--max-clients` slot (none
//! free: a QMP error instead of the greeting, then the socket closes), and `--idle-timeout`
//! or a message left unfinished for `--request-timeout` ends the session with a QMP error
//! (no `id`) saying why.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmp::Framer;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::fleet::Vm;
use crate::session::{
    close_code, closed, deliver_within, idle_deadline, Client, Denied, Ending, Settings,
};
use crate::target::Upstream;
use crate::upstream::{QmpConn, Read};

/// Why the shared socket could not be created.
#[derive(Debug, thiserror::Error)]
#[error("--share-socket {path}: {reason}")]
pub struct ShareSocketError {
    pub path: PathBuf,
    pub reason: String,
}

/// Binds `path` (replacing a stale socket, never a live one or another file), mode 0600.
pub fn bind(path: &Path) -> Result<UnixListener, ShareSocketError> {
    let fail = |reason: String| ShareSocketError {
        path: path.to_owned(),
        reason,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(fail("exists and is not a socket".into()));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(fail("another program is serving this socket".into()));
        }
        std::fs::remove_file(path).map_err(|e| fail(e.to_string()))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| fail(e.to_string()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| fail(e.to_string()))?;
    Ok(listener)
}

/// What bounds the share socket's clients, beside each session's own [`Settings`].
#[derive(Debug, Clone)]
pub struct Limits {
    /// `--max-clients`: a session holds one permit while it runs, websockets and share
    /// socket clients alike.
    pub slots: Arc<Semaphore>,
    pub max_clients: usize,
    /// `--request-timeout`: how long a message may stay unfinished.
    pub unfinished: Duration,
}

/// Accepts clients until `shutdown`; each holds a clone of `alive` and a client slot
/// while it runs.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    vm: Arc<Vm>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    loop {
        let stream = tokio::select! {
            _ = shutdown.changed() => break,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("--share-socket accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let peer = format!(
            "unix:{}#{}",
            path.display(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut client = UnixClient::new(stream, &vm.settings, limits.unfinished);
        let slot = limits.slots.clone().try_acquire_owned();
        let (vm, stop, alive) = (vm.clone(), shutdown.clone(), alive.clone());
        let max_clients = limits.max_clients;
        tokio::spawn(async move {
            let _alive = alive;
            let Ok(_slot) = slot else {
                tracing::warn!(%peer, "session refused: --max-clients {max_clients} reached");
                let desc = format!("qmp-bridge: too many clients (--max-clients {max_clients})");
                let ending = client.tell(close_code::TRY_AGAIN_LATER, desc).await;
                client.close(&ending).await;
                return;
            };
            let started = Instant::now();
            tracing::info!(%peer, "session opened");
            let summary = crate::shared::serve(client, &vm, peer.clone(), stop).await;
            crate::server::log_session_end(&peer, &vm.settings, started, &summary);
        });
    }
    let _ = std::fs::remove_file(&path);
}

/// A plain-QMP client on the shared socket.
pub struct UnixClient {
    /// The client's stream and framer: read like QEMU's own side.
    conn: QmpConn,
    out: Vec<u8>,
    send_timeout: Duration,
    idle_timeout: Option<Duration>,
    last_frame: Instant,
    /// How long a message may stay unfinished.
    unfinished_timeout: Duration,
    /// Since when the framer holds part of a message.
    unfinished_since: Option<Instant>,
}

/// What ended a wait for the client's bytes.
enum Wake {
    Idle,
    Unfinished,
    Read(std::io::Result<Read>),
}

impl UnixClient {
    pub fn new(
        stream: UnixStream,
        settings: &Settings,
        unfinished_timeout: Duration,
    ) -> UnixClient {
        UnixClient {
            conn: QmpConn {
                io: Upstream::Unix(stream),
                framer: Framer::new(settings.max_message_bytes),
            },
            out: Vec::new(),
            send_timeout: settings.send_timeout,
            idle_timeout: settings.idle_timeout,
            last_frame: Instant::now(),
            unfinished_timeout,
            unfinished_since: None,
        }
    }

    /// Tells the client why its session ends, as a QMP error without an id (what QEMU
    /// answers to a message it cannot read), and makes that ending.
    async fn tell(&mut self, code: u16, desc: String) -> Ending {
        let reply = qmp::message::error_reply(None, "GenericError", &desc);
        let _ = self.send(reply).await;
        closed(code, desc)
    }
}

impl Client for UnixClient {
    async fn recv(&mut self) -> Result<Result<String, Denied>, Ending> {
        loop {
            match self.conn.framer.next_message() {
                Ok(Some(text)) => {
                    self.last_frame = Instant::now();
                    self.unfinished_since = None;
                    return Ok(Ok(text));
                }
                Ok(None) => {}
                Err(e) => {
                    // QEMU would answer a parse error; the stream can not be resynchronised.
                    let desc = format!("JSON parse error: {e}");
                    return Err(self.tell(close_code::PROTOCOL, desc).await);
                }
            }
            let unfinished = match self.conn.framer.pending_bytes() {
                0 => None,
                _ => Some(*self.unfinished_since.get_or_insert_with(Instant::now)),
            };
            self.unfinished_since = unfinished;
            let wake = tokio::select! {
                _ = idle_deadline(self.idle_timeout, self.last_frame) => Wake::Idle,
                _ = idle_deadline(unfinished.map(|_| self.unfinished_timeout),
                        unfinished.unwrap_or(self.last_frame)) => Wake::Unfinished,
                r = self.conn.io.readable() => Wake::Read(r.and_then(|()| self.conn.read_available())),
            };
            match wake {
                Wake::Read(Ok(Read::Data | Read::Nothing)) => {}
                Wake::Read(Ok(Read::Eof) | Err(_)) => return Err(Ending::ClientLeft),
                Wake::Idle => {
                    let desc = format!(
                        "qmp-bridge closes this session: idle, no command for {:?} (--idle-timeout)",
                        self.last_frame.elapsed()
                    );
                    return Err(self.tell(close_code::GOING_AWAY, desc).await);
                }
                Wake::Unfinished => {
                    let desc = format!(
                        "qmp-bridge closes this session: a message stayed unfinished for over {:?} (--request-timeout)",
                        self.unfinished_timeout
                    );
                    return Err(self.tell(close_code::POLICY, desc).await);
                }
            }
        }
    }

    async fn feed(&mut self, text: String) -> Result<(), Ending> {
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Ending> {
        let out = std::mem::take(&mut self.out);
        deliver_within(self.send_timeout, self.conn.io.write_all(&out)).await
    }

    async fn close(&mut self, _ending: &Ending) {
        self.conn.io.shutdown().await;
    }
}
