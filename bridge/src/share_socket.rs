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
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::client::Client;
use crate::ending::ClientFault;
use crate::fleet::Vm;
use crate::session::{run_logged, Held};
use crate::unix_client::UnixClient;

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

/// What bounds the share socket's clients, beside each session's own [`Settings`](crate::session::Settings).
#[derive(Debug, Clone)]
pub struct SocketLimits {
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
    limits: SocketLimits,
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
            let Ok(slot) = slot else {
                tracing::warn!(%peer, "session refused: --max-clients {max_clients} reached");
                let ending = client.tell(ClientFault::TooMany(max_clients)).await;
                client.close(&ending).await;
                return;
            };
            let session = crate::mux_session::serve(client, &vm, peer.clone(), stop);
            let held = Held { slot, alive };
            run_logged(held, &peer, &vm.settings.target, |e| e.to_string(), session).await;
        });
    }
    let _ = std::fs::remove_file(&path);
}
