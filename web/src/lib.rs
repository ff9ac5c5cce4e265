//! qmp-web: the qmp-console browser app (Yew, compiled to WebAssembly).
//!
//! - [`state`]: the console's state as plain Rust, tested natively: connection phases,
//!   the QMP handshake, requests and replies matched by id, schema, VM status.
//! - [`events`]: the event log (complete counts and export, a capped view for the page).
//! - [`editor`]: the command form's logic: JSON syntax errors, format/minify, schema
//!   validation before sending, the history.
//! - [`endpoint`]: which websocket URL to open, from the page's own URL.
//! - [`socket`]: the browser `WebSocket`, its messages batched into [`state::Input`]s.
//! - [`app`]: the root component: owns the socket, reconnects, ties state to the page.
//! - [`components`]: small view pieces taking props and callbacks; [`hooks`]: their
//!   custom hooks.
//! - [`fleet`]: the VM list of a bridge serving many VMs (`/api/vms`) and the one-shot
//!   QMP exchange behind its quick actions; [`root`] picks the list or the console.
//!
//! `main.rs` only mounts [`Root`], so tests can mount [`App`] or [`Root`] too. The QMP
//! model (messages, schema) comes from the shared `qmp` crate.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod app;
pub mod components;
pub mod editor;
pub mod endpoint;
pub mod events;
pub mod fleet;
pub mod hooks;
pub mod root;
pub mod socket;
pub mod state;

pub use app::App;
pub use root::Root;
