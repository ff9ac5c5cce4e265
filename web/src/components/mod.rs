//! Small view components; each takes its data as props and reports through callbacks.

mod actions;
mod command_form;
mod event_panel;
mod header;
mod json_tree;
mod rc_by_ptr;
mod screen;
mod transcript;

pub use actions::{QuickAction, QuickActions, QuickActionsProps};
pub use command_form::{ArgsView, ArgsViewProps, CommandForm, CommandFormProps, FormMsg, TypeRef};
pub use event_panel::{local_time, EventPanel, EventPanelProps, EventRef};
pub use header::{Header, HeaderProps};
pub use json_tree::{preview, JsonTree, JsonTreeProps, PAGE};
pub use rc_by_ptr::RcByPtr;
pub use screen::{ScreenView, ScreenViewProps};
pub use transcript::{
    latency_text, EntryActions, EntryProps, EntryRef, EntryView, Transcript, TranscriptProps,
};
pub mod vm_list;
