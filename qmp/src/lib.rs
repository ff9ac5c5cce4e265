//! The QEMU Machine Protocol model shared by `qmp-bridge` and `qmp-web`.
//!
//! - [`framing`]: cuts a QMP byte stream into whole JSON messages, on JSON value
//!   boundaries (CRLF-terminated or `pretty=on` output alike), with a bounded buffer.
//! - [`message`]: what a message is (greeting, return, error, event) and how to build the
//!   ones a client sends (`qmp_capabilities`, commands) or a bridge answers with (QMP-shaped
//!   errors).
//! - [`inbound`]: the check every client frame passes before it is written upstream:
//!   exactly one JSON object without repeated keys, or a QMP-shaped rejection carrying the
//!   frame's `id`; and what commands a frame would run (for policies).
//! - [`schema`]: QEMU's `query-qmp-schema` reply: command names, argument trees,
//!   templates of the required arguments, and validation with JSON paths.
//! - [`shell`]: qmp-shell's one-line syntax (`device_add driver=e1000 id=n1`, JSON
//!   values, dotted keys for nesting), read into a command and written back.
//! - [`devices`]: what a live QEMU says about its device types (drivers, a driver's
//!   properties), folded into the schema for `device_add`.
//! - [`client`]: the client side of a session without I/O: the [`client::Handshake`]
//!   (greeting, negotiation) and the VM's [`client::RunState`] kept current from events;
//!   the bridge's multiplexer and the page (its console, the VM list's actions) use them.
//! - [`vm_list`]: the VM list a bridge serves at `/api/vms`, as the bridge writes it and
//!   the page reads it.
//! - [`keys`]: QEMU's key names for `send-key`, the browser's key codes and text mapped to
//!   them.
//!
//! serde and serde_json only, no I/O: it builds for native and wasm32 alike.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod client;
pub mod devices;
pub mod framing;
pub mod inbound;
pub mod keys;
pub mod message;
pub mod schema;
pub mod shell;
pub mod vm_list;

pub use framing::{FrameError, Framer};
pub use inbound::{parse_client_frame, ClientFrame, Id, Rejection};
pub use message::{
    outline, Envelope, Event, Greeting, Kind, Message, MessageError, Outline, QmpError, Version,
};
pub use schema::{Schema, SchemaError};
