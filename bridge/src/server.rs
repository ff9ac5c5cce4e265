//! The HTTP side: UI files, `/healthz`, and `/ws` upgraded into a relay session.
//!
//! Connections are accepted here rather than by `axum::serve`, for what a public-facing
//! bridge needs: optional TLS, a bound on how long a request (TLS handshake and headers)
//! may take to arrive (slowloris), and a cap on concurrent sessions. [`run`] serves until
//! its `shutdown` future resolves, then closes every websocket with 1001 and returns once
//! all sessions have ended, so tests and `main` stop it the same way.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

use crate::assets::Ui;
use crate::mux::{Mux, Upstate};
use crate::relay;
use crate::session::{Ending, Settings, Summary, WsClient};
use crate::security::Gate;

/// How clients reach QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// One QMP connection for everyone, negotiated by the bridge; each client gets its
    /// own complete QMP session on it.
    Shared,
    /// Each client gets its own QMP connection (QEMU serves one at a time).
    Relay,
}

/// Everything the server needs.
#[derive(Clone)]
pub struct Config {
    pub mode: Mode,
    /// Shared mode: also serve the shared session on this Unix socket.
    pub share_socket: Option<std::path::PathBuf>,
    pub relay: Settings,
    pub ui: Ui,
    pub gate: Gate,
    pub tls: Option<TlsAcceptor>,
    /// Most websocket sessions at once.
    pub max_clients: usize,
    /// How long the TLS handshake, and then each request's headers, may take to arrive.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("mode", &self.mode)
            .field("share_socket", &self.share_socket)
            .field("relay", &self.relay)
            .field("ui", &self.ui)
            .field("gate", &self.gate)
            .field("tls", &self.tls.is_some())
            .field("max_clients", &self.max_clients)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

struct Shared {
    config: Config,
    /// Shared mode's multiplexer.
    mux: Option<Mux>,
    shutdown: watch::Receiver<bool>,
    /// Each session holds a clone; `recv` returning `None` means all have ended.
    sessions: mpsc::Sender<()>,
    slots: Arc<Semaphore>,
}

type AppState = Arc<Shared>;

/// Serves on `listener` until `shutdown` resolves and every session has closed.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (sessions_tx, mut sessions_rx) = mpsc::channel::<()>(1);
    let tls = config.tls.clone();
    let request_timeout = config.request_timeout;
    let mux = (config.mode == Mode::Shared)
        .then(|| Mux::start(Arc::new(config.relay.clone()), stop_rx.clone()));
    if let (Some(mux), Some(path)) = (&mux, &config.share_socket) {
        let listener = crate::share_socket::bind(path).map_err(std::io::Error::other)?;
        tokio::spawn(crate::share_socket::serve(
            listener,
            path.clone(),
            mux.clone(),
            Arc::new(config.relay.clone()),
            stop_rx.clone(),
            sessions_tx.clone(),
        ));
    }
    let state = Arc::new(Shared {
        slots: Arc::new(Semaphore::new(config.max_clients)),
        mux,
        config,
        shutdown: stop_rx.clone(),
        sessions: sessions_tx,
    });
    let app = router(state.clone());
    drop(state);

    let mut shutdown = pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: wait a little instead of spinning
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(tcp, peer, app, request_timeout, stop).await,
                Some(acceptor) => {
                    match tokio::time::timeout(request_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => serve_connection(stream, peer, app, request_timeout, stop).await,
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    drop(app);
    // Sessions were told through `stop_rx`; give them a moment to send their close frames.
    let _ = tokio::time::timeout(Duration::from_secs(5), sessions_rx.recv()).await;
    Ok(())
}

/// HTTP/1.1 with upgrades on one connection, headers due within `request_timeout`.
async fn serve_connection<IO>(
    io: IO,
    peer: SocketAddr,
    app: Router,
    request_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().call(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(request_timeout);
    let mut conn = pin!(builder.serve_connection(TokioIo::new(io), service).with_upgrades());
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
                break;
            }
            _ = stop.changed() => conn.as_mut().graceful_shutdown(),
        }
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/ws", get(websocket))
        .route("/healthz", get(healthz))
        .fallback(get(ui_file))
        .with_state(state)
}

/// 200 while the bridge is up; in shared mode the body says whether QEMU is connected.
async fn healthz(State(state): State<AppState>) -> String {
    match state.mux.as_ref().map(Mux::state) {
        None => "ok\n".into(),
        Some(Upstate::Up { .. }) => "ok: QMP connected\n".into(),
        Some(Upstate::Connecting { last_error }) => format!(
            "ok: QMP reconnecting ({})\n",
            last_error.as_deref().unwrap_or("first attempt")
        ),
    }
}

/// The closing log line of a session.
pub(crate) fn log_session_end(peer: &str, settings: &Settings, started: Instant, summary: &Summary) {
    let ending = match &summary.ending {
        Ending::ClientLeft => "client left".to_owned(),
        Ending::Closed { code, reason } => format!("closed {code}: {reason}"),
    };
    tracing::info!(
        %peer,
        target = %settings.target,
        duration_ms = started.elapsed().as_millis() as u64,
        to_qemu = summary.to_qemu,
        to_client = summary.to_client,
        rejected = summary.rejected,
        refused = summary.refused,
        "session ended: {ending}"
    );
}

async fn ui_file(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    state.config.ui.respond(uri.path(), &headers).await
}

async fn websocket(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Err(refusal) = state.config.gate.admit(&uri, &headers) {
        tracing::info!(%peer, status = refusal.status, "websocket refused: {}", refusal.reason.trim());
        let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::FORBIDDEN);
        return (status, refusal.reason).into_response();
    }
    let Ok(slot) = state.slots.clone().try_acquire_owned() else {
        tracing::warn!(%peer, "websocket refused: --max-clients {} reached", state.config.max_clients);
        let reason = format!(
            "qmp-bridge: too many clients (--max-clients {})\n",
            state.config.max_clients
        );
        return (StatusCode::SERVICE_UNAVAILABLE, reason).into_response();
    };
    let max = state.config.relay.max_message_bytes;
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            let _alive = state.sessions.clone();
            let settings = &state.config.relay;
            let started = Instant::now();
            tracing::info!(%peer, target = %settings.target, "session opened");
            let (tx, rx) = socket.split();
            let client = WsClient::new(tx, rx, settings);
            let stop = state.shutdown.clone();
            let summary = match &state.mux {
                Some(mux) => crate::shared::serve(client, mux, settings, peer.to_string(), stop).await,
                None => relay::relay(client, settings, peer, stop).await,
            };
            log_session_end(&peer.to_string(), settings, started, &summary);
        })
}
