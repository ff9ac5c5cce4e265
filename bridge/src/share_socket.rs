//! `--share-socket PATH`: the shared QMP session on a Unix socket too, for qmp-shell, the
//! `qemu.qmp` Python library, or anything else that speaks QMP, beside the browsers.
//!
//! The socket is created mode 0600: whoever may open it drives the VM, as with QEMU's own
//! socket. Clients speak plain QMP: JSON messages (framed on value boundaries, like
//! QEMU's own parser), replies and events each followed by CRLF.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmp::Framer;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};

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

/// Accepts clients until `shutdown`; each holds a clone of `alive` while it runs.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    vm: Arc<Vm>,
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
        let (vm, stop, alive) = (vm.clone(), shutdown.clone(), alive.clone());
        tokio::spawn(async move {
            let _alive = alive;
            let started = Instant::now();
            tracing::info!(%peer, "session opened");
            let client = UnixClient::new(stream, &vm.settings);
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
}

impl UnixClient {
    pub fn new(stream: UnixStream, settings: &Settings) -> UnixClient {
        UnixClient {
            conn: QmpConn {
                io: Upstream::Unix(stream),
                framer: Framer::new(settings.max_message_bytes),
            },
            out: Vec::new(),
            send_timeout: settings.send_timeout,
            idle_timeout: settings.idle_timeout,
            last_frame: Instant::now(),
        }
    }
}

impl Client for UnixClient {
    async fn recv(&mut self) -> Result<Result<String, Denied>, Ending> {
        loop {
            match self.conn.framer.next_message() {
                Ok(Some(text)) => {
                    self.last_frame = Instant::now();
                    return Ok(Ok(text));
                }
                Ok(None) => {}
                Err(e) => {
                    // QEMU would answer a parse error; the stream can not be resynchronised.
                    let reply = qmp::message::error_reply(
                        None,
                        "GenericError",
                        &format!("JSON parse error: {e}"),
                    );
                    let _ = self.send(reply).await;
                    return Err(closed(
                        close_code::PROTOCOL,
                        format!("client sent invalid QMP: {e}"),
                    ));
                }
            }
            tokio::select! {
                _ = idle_deadline(self.idle_timeout, self.last_frame) => {
                    return Err(closed(close_code::GOING_AWAY, "idle (--idle-timeout)"))
                }
                r = self.conn.io.readable() => {
                    match r.and_then(|()| self.conn.read_available()) {
                        Ok(Read::Data | Read::Nothing) => {}
                        Ok(Read::Eof) | Err(_) => return Err(Ending::ClientLeft),
                    }
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
