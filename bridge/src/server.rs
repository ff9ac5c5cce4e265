//! The HTTP side: UI files, `/healthz`, and `/ws` upgraded into a relay session.
//!
//! [`run`] serves until its `shutdown` future resolves, then closes every websocket with
//! 1001 and returns once all sessions have ended, so tests and `main` stop it the same way.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::assets::Ui;
use crate::relay::{self, Ending, Settings};

/// Everything the server needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub relay: Settings,
    pub ui: Ui,
}

struct Shared {
    config: Config,
    shutdown: watch::Receiver<bool>,
    /// Each session holds a clone; `recv` returning `None` means all have ended.
    sessions: mpsc::Sender<()>,
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
    let state = Arc::new(Shared {
        config,
        shutdown: stop_rx,
        sessions: sessions_tx,
    });
    let app = router(state.clone());
    drop(state);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let serve = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    serve.await?;
    // Sessions were told through `stop_rx`; give them a moment to send their close frames.
    let _ = tokio::time::timeout(Duration::from_secs(5), sessions_rx.recv()).await;
    Ok(())
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/ws", get(websocket))
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(get(ui_file))
        .with_state(state)
}

async fn ui_file(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    state.config.ui.respond(uri.path(), &headers).await
}

async fn websocket(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let max = state.config.relay.max_message_bytes;
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            let _alive = state.sessions.clone();
            let settings = &state.config.relay;
            let started = Instant::now();
            tracing::info!(%peer, target = %settings.target, "session opened");
            let (tx, rx) = socket.split();
            let summary = relay::relay(tx, rx, settings, state.shutdown.clone()).await;
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
                "session ended: {ending}"
            );
        })
}
