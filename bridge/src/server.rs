//! The HTTP side: UI files, `/healthz`, and `/ws` upgraded into a relay session.
//!
//! Connections are accepted here rather than by `axum::serve`, for what a public-facing
//! bridge needs: optional TLS, a bound on how long a request (TLS handshake and headers)
//! may take to arrive (slowloris), and a cap on concurrent sessions. [`run`] serves until
//! its `shutdown` future resolves, then closes every websocket with 1001 and returns once
//! all sessions have ended, so tests and `main` stop it the same way.
//!
//! Every response, the UI's above all, says it may not be framed (`X-Frame-Options: DENY`,
//! `Content-Security-Policy: frame-ancestors 'none'`), sends no referrer (the page's URL
//! carries the token) and is not to be sniffed. A websocket request is checked for its
//! token and Origin before anything else, so without the token every `/ws/NAME` is 401 (403
//! from a foreign Origin), whether NAME exists or not.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::rejection::PathRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::DefaultBodyLimit;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use futures_util::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

use qmp::vm_list::{ListMode, VmList, VmRow, VmState};

use crate::assets::Ui;
use crate::fleet::{Fleet, Vm};
use crate::relay;
use crate::security::Gate;
use crate::session::{run_logged, Held, Limits, Settings};
use crate::target::QmpTarget;
use crate::ws_client::{told, WsClient};

/// How clients reach QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// One QMP connection for everyone, negotiated by the bridge; each client gets its
    /// own complete QMP session on it.
    Shared,
    /// Each client gets its own QMP connection (QEMU serves one at a time).
    Relay,
}

/// What the bridge serves, and how: each way owns what it needs, so no combination that
/// cannot work can be written down.
#[derive(Debug, Clone)]
pub enum Serving {
    /// `--mode relay`: one QMP target; each client gets its own connection to it.
    Relay { vm: String, target: QmpTarget },
    /// Shared mode with one `--qmp`: served at `/ws` too (`/` is its console), and on
    /// `--share-socket` when given.
    One {
        vm: String,
        target: QmpTarget,
        share_socket: Option<PathBuf>,
    },
    /// Shared mode with many VMs: `--qmp NAME=...` targets, every socket in `--qmp-dir`,
    /// every domain of each `--libvirt` URI (`/` is the VM list).
    Fleet {
        vms: Vec<(String, QmpTarget)>,
        qmp_dir: Option<PathBuf>,
        libvirt: Vec<String>,
    },
}

impl Serving {
    /// One VM, served at `/ws` as well as `/ws/NAME`.
    pub fn single(&self) -> bool {
        !matches!(self, Serving::Fleet { .. })
    }
}

/// Everything the server needs.
#[derive(Clone)]
pub struct Config {
    pub serving: Serving,
    /// What every session is held to.
    pub limits: Limits,
    pub ui: Ui,
    pub gate: Gate,
    pub tls: Option<TlsAcceptor>,
    /// Most client sessions at once, websockets and `--share-socket` clients together.
    pub max_clients: usize,
    /// How long the TLS handshake, and then each request's headers, may take to arrive;
    /// also how long a `--share-socket` client's message may stay unfinished.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("serving", &self.serving)
            .field("limits", &self.limits)
            .field("ui", &self.ui)
            .field("gate", &self.gate)
            .field("tls", &self.tls.is_some())
            .field("max_clients", &self.max_clients)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// The server's state, shared by its handlers.
struct App {
    config: Config,
    /// Shared mode's VMs, each with its multiplexer.
    fleet: Option<Arc<Fleet>>,
    /// Relay mode's one VM.
    relay: Option<Arc<Settings>>,
    shutdown: watch::Receiver<bool>,
    /// Each session holds a clone; `recv` returning `None` means all have ended.
    sessions: mpsc::Sender<()>,
    slots: Arc<Semaphore>,
}

type AppState = Arc<App>;

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
    let (fleet, relay) = match &config.serving {
        Serving::Relay { vm, target } => {
            let settings = config.limits.for_vm(vm, target.clone());
            (None, Some(Arc::new(settings)))
        }
        Serving::One { vm, target, .. } => {
            let vms = vec![(vm.clone(), target.clone())];
            let fleet = Fleet::new(config.limits.clone(), vms, true, stop_rx.clone());
            (Some(fleet), None)
        }
        Serving::Fleet {
            vms,
            qmp_dir,
            libvirt,
        } => {
            let fleet = Fleet::new(config.limits.clone(), vms.clone(), false, stop_rx.clone());
            if let Some(dir) = qmp_dir {
                fleet.scan(dir);
                tokio::spawn(fleet.clone().watch_dir(dir.clone()));
            }
            #[cfg(feature = "libvirt")]
            for (uri, prefix) in crate::libvirt::prefixes(libvirt) {
                tokio::spawn(crate::libvirt::follow(fleet.clone(), uri, prefix));
            }
            #[cfg(not(feature = "libvirt"))]
            let _ = libvirt;
            (Some(fleet), None)
        }
    };
    // --max-clients counts websocket and share socket sessions alike
    let slots = Arc::new(Semaphore::new(config.max_clients));
    let share_socket = match &config.serving {
        Serving::One { share_socket, .. } => share_socket.as_ref(),
        _ => None,
    };
    if let (Some(vm), Some(path)) = (fleet.as_ref().and_then(|f| f.only()), share_socket) {
        let listener = crate::share_socket::bind(path).map_err(std::io::Error::other)?;
        let limits = crate::share_socket::SocketLimits {
            slots: slots.clone(),
            max_clients: config.max_clients,
            unfinished: config.request_timeout,
        };
        tokio::spawn(crate::share_socket::serve(
            listener,
            path.clone(),
            vm,
            limits,
            stop_rx.clone(),
            sessions_tx.clone(),
        ));
    }
    let state = Arc::new(App {
        slots,
        fleet,
        relay,
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
                        Ok(Ok(stream)) => {
                            serve_connection(stream, peer, app, request_timeout, stop).await
                        }
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
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().call(req)
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(request_timeout);
    let mut conn = pin!(builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades());
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
        .route("/ws", get(websocket_default))
        .route("/ws/{name}", get(websocket_named))
        .route("/vm/{name}", get(vm_page))
        .route("/screen.png", get(screen_default))
        .route("/vm/{name}/screen.png", get(screen_named))
        .route("/keys", input_route(post(input_default)))
        .route("/vm/{name}/keys", input_route(post(input_named)))
        .route("/pointer", input_route(post(input_default)))
        .route("/vm/{name}/pointer", input_route(post(input_named)))
        .route("/api/vms", get(api_vms))
        .route("/api/vms/{name}/start", post(start_vm))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .fallback(get(ui_file))
        .layer(axum::middleware::map_response(protective_headers))
        .with_state(state)
}

/// What every response carries (the UI's pages and files above all): no framing by other
/// sites (clickjacking), no `Referer` (the page's URL carries the token), no MIME sniffing.
async fn protective_headers(mut response: Response) -> Response {
    use axum::http::{header, HeaderValue};
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let csp = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Ok(csp) = HeaderValue::try_from(without_framing(csp)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// A Content-Security-Policy's directives with `frame-ancestors 'none'` in place of any
/// `frame-ancestors` it had.
fn without_framing(csp: &str) -> String {
    csp.split(';')
        .map(str::trim)
        .filter(|d| {
            let name = d.split_ascii_whitespace().next().unwrap_or("");
            !d.is_empty() && !name.eq_ignore_ascii_case("frame-ancestors")
        })
        .chain(["frame-ancestors 'none'"])
        .collect::<Vec<_>>()
        .join("; ")
}

/// 200 while the bridge is up; the body says how many VMs are connected.
async fn healthz(State(state): State<AppState>) -> String {
    match &state.fleet {
        None => "ok\n".into(),
        Some(fleet) => {
            let vms = fleet.all();
            let up = vms.iter().filter(|vm| vm.mux.state().is_up()).count();
            // (no VM names: /healthz takes no token)
            let stalled = vms
                .iter()
                .filter(|vm| vm.mux.state().stalled.is_some())
                .count();
            match (fleet.only(), up) {
                (Some(vm), 1) => match vm.mux.state().stalled {
                    Some(stall) => format!("ok: QMP connected, but stalled: {stall}\n"),
                    None => "ok: QMP connected\n".into(),
                },
                (Some(vm), _) => format!(
                    "ok: QMP reconnecting ({})\n",
                    vm.mux
                        .state()
                        .last_error
                        .as_deref()
                        .unwrap_or("first attempt")
                ),
                (None, up) if stalled == 0 => {
                    format!("ok: {up} of {} VMs connected\n", vms.len())
                }
                (None, up) => format!(
                    "ok: {up} of {} VMs connected, {stalled} stalled (QEMU not answering)\n",
                    vms.len(),
                ),
            }
        }
    }
}

/// The HTTP answer to a refused request.
fn refused(refusal: crate::security::Refusal) -> Response {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::FORBIDDEN);
    (status, refusal.reason).into_response()
}

/// The VM list: name, target, state, QEMU version, run state, clients.
async fn api_vms(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    if let Err(refusal) = state.config.gate.admit(&uri, &headers) {
        return refused(refusal);
    }
    let list = match (&state.fleet, &state.relay) {
        (Some(fleet), _) => fleet.view(),
        (None, relay) => VmList {
            mode: ListMode::Relay,
            vms: relay
                .iter()
                .map(|r| VmRow {
                    name: r.vm.clone(),
                    target: r.target.to_string(),
                    state: VmState::Relay,
                    version: None,
                    package: None,
                    run_state: None,
                    clients: 0,
                    last_error: None,
                    managed_by: None,
                })
                .collect(),
            problems: Vec::new(),
        },
    };
    let body = serde_json::to_string(&list).unwrap_or_default();
    (
        [
            (axum::http::header::CONTENT_TYPE, "application/json"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// Starts a shut-off libvirt domain (the VM list's Start): behind the token and Origin
/// checks, allowed by the policy as the command `start`, recorded in the audit log. The
/// answer is QMP-shaped: `{"return": {}}`, or `{"error": {"class", "desc"}}`.
async fn start_vm(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = state.config.gate.admit(&uri, &headers) {
        return refused(refusal);
    }
    let answer = |status: StatusCode, class: &str, desc: &str| {
        let body = match class {
            "" => serde_json::json!({"return": {}}),
            _ => serde_json::json!({"error": {"class": class, "desc": desc}}),
        };
        let json = (axum::http::header::CONTENT_TYPE, "application/json");
        (status, [json], body.to_string()).into_response()
    };
    let Some(vm) = state.fleet.as_ref().and_then(|f| f.get(&name)) else {
        let desc = format!("no VM named {name:?}");
        return answer(StatusCode::NOT_FOUND, "DeviceNotFound", &desc);
    };
    let record = |outcome: crate::audit::Outcome| {
        if let Some(log) = &vm.settings.audit {
            log.record(crate::audit::Entry {
                vm: &vm.name,
                client: &peer.to_string(),
                command: "start",
                id: None,
                outcome,
            });
        }
    };
    let start = qmp::parse_client_frame(r#"{"execute": "start"}"#);
    if let Some(why) = start.ok().and_then(|f| vm.settings.policy.check(&f).err()) {
        record(crate::audit::Outcome::Refused(why.clone()));
        let desc = format!("refused by qmp-bridge policy: {why}");
        return answer(StatusCode::FORBIDDEN, "GenericError", &desc);
    }
    #[cfg(feature = "libvirt")]
    if let Some(domain) = vm.domain.get().cloned() {
        let started = tokio::task::spawn_blocking(move || domain.start())
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        return match started {
            Ok(()) => {
                record(crate::audit::Outcome::Ok);
                answer(StatusCode::OK, "", "")
            }
            Err(why) => {
                record(crate::audit::Outcome::Error("GenericError".into()));
                answer(
                    StatusCode::CONFLICT,
                    "GenericError",
                    &format!("libvirt: {why}"),
                )
            }
        };
    }
    let desc = format!("{name} is not a libvirt domain: start QEMU itself");
    answer(StatusCode::CONFLICT, "GenericError", &desc)
}

/// Prometheus text format.
async fn metrics(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    if let Err(refusal) = state.config.gate.admit(&uri, &headers) {
        return refused(refusal);
    }
    let body = state
        .fleet
        .as_ref()
        .map(|f| f.metrics())
        .unwrap_or_default();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
        .into_response()
}

/// A VM's console page: the UI, which reads the VM's name from the path.
async fn vm_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    state.config.ui.respond("/", &headers).await
}

async fn ui_file(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    state.config.ui.respond(uri.path(), &headers).await
}

/// The largest body `/vm/NAME/keys` and `/vm/NAME/pointer` read.
const INPUT_BODY_MAX: usize = 64 * 1024;

/// The keys and pointer routes read at most [`INPUT_BODY_MAX`].
fn input_route(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.layer(DefaultBodyLimit::max(INPUT_BODY_MAX))
}

/// The shared-mode VM a screen or keys request is for, once the request passed the token
/// and Origin checks; or the status and text saying why not (401, 403, 404, or 409 in
/// relay mode).
fn vm_for(
    state: &App,
    uri: &Uri,
    headers: &HeaderMap,
    name: Result<Option<String>, PathRejection>,
) -> Result<Arc<Vm>, (u16, String)> {
    if let Err(refusal) = state.config.gate.admit(uri, headers) {
        return Err((refusal.status, refusal.reason));
    }
    let name = name.map_err(|r| (r.status().as_u16(), r.body_text()))?;
    match route(state, name.as_deref()) {
        Ok(Route::Shared(vm)) => Ok(vm),
        Ok(Route::Relay(_)) => Err((
            409,
            "qmp-bridge: the screen, keys and clicks need shared mode (--mode shared)\n".into(),
        )),
        Err(reason) => Err((404, reason)),
    }
}

/// A plain-text answer that is never cached.
fn uncached(status: u16, text: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        text,
    )
        .into_response()
}

async fn screen_default(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    screen(&state, &uri, &headers, Ok(None)).await
}

async fn screen_named(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let name = name.map(|Path(name)| Some(name));
    screen(&state, &uri, &headers, name).await
}

/// The VM's screen as a PNG, with an `ETag`; `If-None-Match` with that tag gets 304 while
/// the picture is the same.
async fn screen(
    state: &App,
    uri: &Uri,
    headers: &HeaderMap,
    name: Result<Option<String>, PathRejection>,
) -> Response {
    use axum::http::header;
    let vm = match vm_for(state, uri, headers, name) {
        Ok(vm) => vm,
        Err((409, why)) => return no_picture(why.trim().trim_start_matches("qmp-bridge: ")),
        Err((status, why)) => return uncached(status, why),
    };
    match vm.screen.frame().await {
        Ok(frame) => {
            let etag = frame.etag.clone();
            let unchanged = headers
                .get(header::IF_NONE_MATCH)
                .is_some_and(|tags| tags.as_bytes() == etag.as_bytes());
            let fields = [
                (header::CACHE_CONTROL, "no-store".to_owned()),
                (header::ETAG, etag),
            ];
            if unchanged {
                return (StatusCode::NOT_MODIFIED, fields).into_response();
            }
            let fields = [
                fields[0].clone(),
                fields[1].clone(),
                (header::CONTENT_TYPE, "image/png".to_owned()),
            ];
            (fields, frame.png.clone()).into_response()
        }
        Err(e) if e.status() == 204 => no_picture(&e.to_string()),
        Err(e) => uncached(e.status(), format!("qmp-bridge: VM {}: {e}\n", vm.name)),
    }
}

/// The answer of `screen.png` when there is no screen to show (no display, the policy
/// refuses it, relay mode): 204, and `X-Screen-Problem` saying why.
fn no_picture(why: &str) -> Response {
    let mut answer = uncached(204, String::new());
    if let Ok(why) = axum::http::HeaderValue::try_from(why) {
        answer.headers_mut().insert("x-screen-problem", why);
    }
    answer
}

/// `POST /vm/NAME/keys`: `{"keys": [["ctrl", "alt", "delete"], ["a"]]}`, chords of QEMU
/// key names.
#[derive(serde::Deserialize)]
struct KeysBody {
    keys: Vec<Vec<String>>,
}

async fn input_default(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    input(&state, peer, &uri, &headers, Ok(None), body).await
}

async fn input_named(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    name: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let name = name.map(|Path(name)| Some(name));
    input(&state, peer, &uri, &headers, name, body).await
}

/// `POST .../keys` types chords into the VM, `POST .../pointer` with `{"x": 0.5, "y":
/// 0.25, "button": "left"}` clicks there (`x`, `y` from 0 to 1 across the screen) where
/// it has an absolute pointer: `{"sent": N}`, or why not.
async fn input(
    state: &App,
    peer: SocketAddr,
    uri: &Uri,
    headers: &HeaderMap,
    name: Result<Option<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let vm = match vm_for(state, uri, headers, name) {
        Ok(vm) => vm,
        Err((status, why)) => return uncached(status, why),
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    let client = peer.ip().to_string();
    let bad = |expected: &str, e: serde_json::Error| {
        uncached(400, format!("qmp-bridge: expected {expected}: {e}\n"))
    };
    let sent = if uri.path().ends_with("/pointer") {
        match serde_json::from_slice::<crate::input::Click>(&body) {
            Ok(click) => vm.input.click(&client, &click).await,
            Err(e) => return bad(r#"{"x": 0.5, "y": 0.5, "button": "left"}"#, e),
        }
    } else {
        match serde_json::from_slice::<KeysBody>(&body) {
            Ok(keys) => vm.input.send(&client, &keys.keys).await,
            Err(e) => return bad(r#"{"keys": [["ctrl", "alt", "delete"], ...]}"#, e),
        }
    };
    match sent {
        Ok(sent) => (
            [
                (axum::http::header::CONTENT_TYPE, "application/json"),
                (axum::http::header::CACHE_CONTROL, "no-store"),
            ],
            serde_json::json!({ "sent": sent }).to_string(),
        )
            .into_response(),
        Err(e) => uncached(e.status(), format!("qmp-bridge: VM {}: {e}\n", vm.name)),
    }
}

/// Which VM a websocket is for.
enum Route {
    Relay(Arc<Settings>),
    Shared(Arc<Vm>),
}

/// The extractors' outcomes are taken as they are and looked at only after the token and
/// Origin checks: a request without the token learns nothing, not even whether a VM of
/// that name exists (401 for every name, and for a request that is no upgrade at all).
type Upgrade = Result<WebSocketUpgrade, WebSocketUpgradeRejection>;

async fn websocket_default(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Upgrade,
) -> Response {
    websocket(state, peer, &uri, &headers, upgrade, Ok(None)).await
}

async fn websocket_named(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    name: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Upgrade,
) -> Response {
    let name = name.map(|Path(name)| Some(name));
    websocket(state, peer, &uri, &headers, upgrade, name).await
}

/// The VM `name` names (`None`: the one at `/ws`), or why there is none (a 404).
fn route(state: &App, name: Option<&str>) -> Result<Route, String> {
    let route = match (&state.fleet, &state.relay, name) {
        (Some(fleet), _, None) => fleet.only().map(Route::Shared),
        (Some(fleet), _, Some(name)) => fleet.get(name).map(Route::Shared),
        (None, Some(relay), None) => Some(Route::Relay(relay.clone())),
        (None, Some(relay), Some(name)) => (name == relay.vm).then(|| Route::Relay(relay.clone())),
        (None, None, _) => None,
    };
    route.ok_or_else(|| match name {
        None => "qmp-bridge serves several VMs: connect to /ws/NAME (the list is at /)\n".into(),
        Some(name) => format!("qmp-bridge: no VM named {name:?}\n"),
    })
}

async fn websocket(
    state: AppState,
    peer: SocketAddr,
    uri: &Uri,
    headers: &HeaderMap,
    upgrade: Upgrade,
    name: Result<Option<String>, PathRejection>,
) -> Response {
    if let Err(refusal) = state.config.gate.admit(uri, headers) {
        tracing::info!(%peer, status = refusal.status, "websocket refused: {}", refusal.reason.trim());
        return refused(refusal);
    }
    let name = match name {
        Ok(name) => name,
        Err(rejection) => return rejection.into_response(),
    };
    let route = match route(&state, name.as_deref()) {
        Ok(route) => route,
        Err(reason) => return (StatusCode::NOT_FOUND, reason).into_response(),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let Ok(slot) = state.slots.clone().try_acquire_owned() else {
        tracing::warn!(%peer, "websocket refused: --max-clients {} reached", state.config.max_clients);
        let reason = format!(
            "qmp-bridge: too many clients (--max-clients {})\n",
            state.config.max_clients
        );
        return (StatusCode::SERVICE_UNAVAILABLE, reason).into_response();
    };
    let max = state.config.limits.max_message_bytes;
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(4 * 1024)
        // messages are fed in batches and flushed once: one write per batch, not per message
        .write_buffer_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            let held = Held {
                slot,
                alive: state.sessions.clone(),
            };
            let settings = match &route {
                Route::Relay(settings) => settings.as_ref(),
                Route::Shared(vm) => vm.settings.as_ref(),
            };
            let (tx, rx) = socket.split();
            let client = WsClient::new(tx, rx, settings);
            let stop = state.shutdown.clone();
            let name = peer.to_string();
            match &route {
                Route::Shared(vm) => {
                    let session = crate::mux_session::serve(client, vm, name.clone(), stop);
                    run_logged(held, &name, &settings.target, told, session).await
                }
                Route::Relay(_) => {
                    let session = relay::relay(client, settings, peer, stop);
                    run_logged(held, &name, &settings.target, told, session).await
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::without_framing;

    #[test]
    fn a_policy_gains_frame_ancestors_none() {
        assert_eq!(without_framing(""), "frame-ancestors 'none'");
        assert_eq!(
            without_framing("default-src 'self';"),
            "default-src 'self'; frame-ancestors 'none'"
        );
        assert_eq!(
            without_framing("Frame-Ancestors https://a.example; img-src *"),
            "img-src *; frame-ancestors 'none'"
        );
    }
}
