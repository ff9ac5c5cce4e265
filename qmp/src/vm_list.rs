//! The VM list a bridge serves at `/api/vms`, as both sides read and write it.

use serde::{Deserialize, Serialize};

/// The whole list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmList {
    pub mode: ListMode,
    pub vms: Vec<VmRow>,
    /// Entries of `--qmp-dir` that are not VMs, and why.
    #[serde(default)]
    pub problems: Vec<Problem>,
}

/// How the bridge serves its VMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListMode {
    /// One VM, shared; `/` is its console.
    Single,
    /// Many VMs; `/` is this list.
    Fleet,
    /// One VM, each client on its own connection.
    Relay,
}

/// One VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmRow {
    pub name: String,
    pub target: String,
    pub state: VmState,
    /// QEMU's version, while connected.
    #[serde(default)]
    pub version: Option<String>,
    /// QEMU's package string, while connected.
    #[serde(default)]
    pub package: Option<String>,
    /// `query-status`'s `status`.
    #[serde(default)]
    pub run_state: Option<String>,
    /// Sessions attached.
    #[serde(default)]
    pub clients: i64,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Who manages the VM when something other than its QMP does (`libvirt`): its
    /// lifecycle goes through that manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
}

/// Where a VM's QMP connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VmState {
    /// Connected and negotiated.
    Up,
    /// First attempt under way.
    Connecting,
    /// A socket that does not greet: another client holds the monitor.
    Busy,
    /// Its socket is gone.
    Gone,
    /// A libvirt domain that is defined but not running.
    Off,
    /// The connection broke, or what came was not QMP.
    Error,
    /// Relay mode: each client connects on its own.
    Relay,
    /// A state this build does not know.
    #[serde(other)]
    Unknown,
}

impl VmState {
    /// The word the list and the JSON use.
    pub fn as_str(self) -> &'static str {
        match self {
            VmState::Up => "up",
            VmState::Connecting => "connecting",
            VmState::Busy => "busy",
            VmState::Gone => "gone",
            VmState::Off => "off",
            VmState::Error => "error",
            VmState::Relay => "relay",
            VmState::Unknown => "unknown",
        }
    }
}

/// A folder entry that is not a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub name: String,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_a_bridge_writes_and_tolerates_the_unknown() {
        let text = r#"{"mode": "fleet", "vms": [
            {"name": "a", "target": "unix:/r/a.sock", "state": "up", "version": "7.2.22",
             "package": "Debian", "run_state": "running", "clients": 2, "last_error": null},
            {"name": "b", "target": "unix:/r/b.sock", "state": "sleeping"}],
            "problems": [{"name": "notes.txt", "reason": "not a socket"}]}"#;
        let list: VmList = serde_json::from_str(text).unwrap();
        assert_eq!(list.mode, ListMode::Fleet);
        assert_eq!(list.vms[0].state, VmState::Up);
        assert_eq!(list.vms[0].clients, 2);
        assert_eq!(list.vms[1].state, VmState::Unknown);
        assert_eq!(list.vms[1].run_state, None);
        assert_eq!(list.problems[0].reason, "not a socket");
        let again: VmList = serde_json::from_str(&serde_json::to_string(&list).unwrap()).unwrap();
        assert_eq!(again, list);
        assert_eq!(
            serde_json::to_value(VmState::Connecting).unwrap(),
            serde_json::json!(VmState::Connecting.as_str())
        );
    }
}
