//! qmp-web: the qmp-console browser app (Yew, compiled to WebAssembly).
//!
//! - [`state`]: the console's state machine (connection phases, QMP greeting and
//!   capabilities handshake) as plain Rust, tested natively.
//! - [`endpoint`]: which websocket URL to open, from the page's own URL.
//! - [`socket`]: the browser `WebSocket`, turning its callbacks into [`state::Input`]s.
//! - [`app`]: the root component, tying the socket to the state and rendering it.
//! - [`components`]: small view pieces taking props.
//!
//! `main.rs` only mounts [`App`], so tests can mount it too. The QMP model comes from the
//! shared `qmp` crate.

pub mod app;
pub mod components;
pub mod endpoint;
pub mod socket;
pub mod state;

pub use app::App;
