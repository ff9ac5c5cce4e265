//! qmp-web: the qmp-console browser app (Yew, compiled to WebAssembly).
//!
//! State, as plain Rust tested natively (no browser, no I/O):
//! - [`state`]: the console's state: connection phases, the QMP handshake and the VM
//!   status (`qmp`'s [`qmp::client::Handshake`] and [`qmp::client::RunState`]), requests
//!   and replies matched by id, schema; read through accessors, changed only through its
//!   methods.
//! - [`events`]: the event log (complete counts and export, a capped view for the page).
//! - [`editor`]: the command form's state: [`editor::FormMsg`] edits applied by
//!   [`editor::Form::update`] (Format and Minify included), JSON syntax errors, schema
//!   validation and what Send does, the history.
//! - [`endpoint`]: where the page is ([`endpoint::PageUrl`], read once at start-up) and the
//!   URLs derived from it: the console's websocket, `/api/vms`, each VM's console.
//! - [`fleet`]: the VM list of a bridge serving many VMs (`/api/vms`, read into the
//!   [`qmp::vm_list`] types the bridge writes it with) and the one-shot QMP exchange behind
//!   its quick actions.
//! - [`screen`]: the VM's screen in the page: keys pressed made into chords, when each
//!   picture is read again.
//!
//! I/O, in the app layer and hooks only:
//! - [`socket`]: the browser `WebSocket`, its messages batched into [`state::Input`]s;
//!   [`fetch`]: HTTP GETs.
//! - [`app`]: the console page ([`App`]): owns the socket, reconnects, the form's history
//!   and the page's storage, ties state to the views.
//! - [`fleet_app`]: the VM list page: polls the list and runs quick actions through
//!   [`hooks`] ([`hooks::use_listing`], [`hooks::use_vm_actions`]).
//! - [`screen_panel`]: the console's screen: reads it, sends the keys typed into it.
//! - [`root`]: [`Root`] picks the list or the console for the [`endpoint::PageUrl`] it is
//!   given.
//!
//! Views: [`components`]: small pieces taking props and callbacks, no I/O (the VM list's
//! view is [`components::vm_list`]).
//!
//! `main.rs` reads the page's URL and mounts [`Root`] with it; tests can mount [`App`],
//! [`Root`] or any view with props of their own. The QMP model (messages, schema), the
//! client side of a session (handshake, run state) and the VM list come from the shared
//! `qmp` crate, as the bridge uses them.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod app;
pub mod components;
pub mod editor;
pub mod endpoint;
pub mod events;
pub mod fetch;
pub mod fleet;
pub mod fleet_app;
pub mod hooks;
pub mod root;
pub mod screen;
pub mod screen_panel;
pub mod socket;
pub mod state;

pub use app::{App, AppProps};
pub use root::Root;
