//! Small view components; each takes its data as props.

mod header;

pub use header::{Header, HeaderProps};
