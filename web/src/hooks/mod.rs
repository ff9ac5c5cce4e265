//! Custom hooks: the page's I/O (polling, one-shot sockets) and small UI state, so the
//! views in [`crate::components`] take props and callbacks only.
//!
//! - [`use_toggle`]: an on/off state (a tree node, auto-scroll) for a view.
//! - [`use_listing`]: the VM list, refreshed from `/api/vms` every second.
//! - [`use_vm_actions`]: quick actions on the listed VMs, each a one-shot QMP exchange on
//!   the VM's own websocket, and where each stands.
//! - [`use_live_screen`], [`use_thumbnails`]: a VM's screen for the console, every listed
//!   VM's for the list, read while the page is visible.

mod listing;
mod screen;
mod toggle;
mod vm_actions;

pub use listing::{use_listing, Polled, REFRESH_MS};
pub use screen::{use_live_screen, use_thumbnails};
pub use toggle::use_toggle;
pub use vm_actions::{use_vm_actions, VmActions};
