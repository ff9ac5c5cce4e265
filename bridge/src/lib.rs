//! qmp-bridge: serves the qmp-console UI and relays browser websockets to QEMU's QMP.
//!
//! - [`config`]: command-line flags into a [`server::Config`].
//!
//! The QEMU side:
//! - [`target`]: the QMP endpoint (`unix:` or `tcp:`) and the [`target::Socket`] to it.
//! - [`stream`]: a socket cut into whole QMP messages, cancel-safe `recv`, `send`.
//! - [`upstream`]: the [`upstream::Monitor`] seam (open a connection, then whole messages
//!   both ways) with the socket monitor, and [`upstream::UpstreamError`], every way it
//!   fails, typed.
//!
//! A client's session:
//! - [`session`]: its settings, and the bookkeeping around every session (slot, log lines).
//! - [`ending`]: how a session ends, typed ([`ending::Ending`]).
//! - [`client`]: the [`client::Client`] transport trait; [`ws_client`] (a browser; the one
//!   place endings become websocket close codes) and [`unix_client`] (a `--share-socket`
//!   client, told with a QMP error line).
//! - [`admission`]: what a frame passes before it goes upstream, and the session's ledger
//!   and audit records.
//! - [`mux`]: shared mode's multiplexer: one negotiated QMP connection for every client,
//!   ids rewritten, events fanned out, fair and bounded, reconnecting with backoff.
//! - `libvirt` (cargo feature, on by default): `--libvirt URI`, libvirt's domains as
//!   monitors (commands through libvirt's API, events through its event loop), the fleet
//!   following their lifecycle.
//! - [`fleet`]: the VMs served (`--qmp NAME=...`, `--qmp-dir`), each with its multiplexer.
//! - [`metrics`]: per-VM counters for `/metrics` (Prometheus text).
//! - [`mux_session`]: one client's complete QMP session on the multiplexer (greeting, its own
//!   negotiation, its own ids).
//! - [`share_socket`]: `--share-socket`, the shared session for plain-QMP tools.
//! - [`mux_caller`]: the bridge's own QMP client of a VM, on its multiplexer.
//! - [`screen`]: the VM's screen as a PNG (`screendump`), one in flight per VM whatever
//!   the number of viewers, bounded in time, size and rate, through a private directory.
//! - [`input`]: typing (`send-key`) and clicking (`input-send-event`, where the VM has an
//!   absolute pointer) into the VM's screen, audited one entry per burst.
//! - [`relay`]: `--mode relay`, one client to one QMP connection, whole messages both ways.
//! - [`assets`]: the UI, embedded at build time or served from `--ui-dir`.
//! - [`security`]: the token, Origin and Host checks made before a websocket upgrade.
//! - [`policy`]: which commands clients may run (`--read-only`, `--allow`, `--deny`;
//!   `*` and `?` globs, matched by `wildmatch`).
//! - [`audit`]: `--audit-log`, one JSON line per command and its outcome.
//! - [`tls`]: `--tls-cert`/`--tls-key` (rustls).
//! - [`server`]: accepts connections (TLS, request timeout, client cap), routes
//!   (`/`, `/vm/NAME`, `/ws`, `/ws/NAME`, `/vm/NAME/screen.png`, `/vm/NAME/keys`,
//!   `/api/vms`, `/metrics`, `/healthz`), the
//!   headers every response carries (no framing, no referrer, no sniffing), and
//!   [`server::run`] with a shutdown future.
//!
//! The QMP model (framing, messages, frame checks) lives in the `qmp` crate, shared with
//! the web app.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod admission;
pub mod assets;
pub mod audit;
pub mod client;
pub mod config;
pub mod ending;
pub mod fleet;
pub mod input;
#[cfg(feature = "libvirt")]
pub mod libvirt;
pub mod metrics;
pub mod mux;
pub mod mux_caller;
pub mod mux_session;
pub mod policy;
pub mod relay;
pub mod screen;
pub mod security;
pub mod server;
pub mod session;
pub mod share_socket;
pub mod stream;
pub mod target;
pub mod tls;
pub mod unix_client;
pub mod upstream;
pub mod ws_client;
