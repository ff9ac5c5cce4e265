//! Which commands a client may run: `--read-only`, `--allow GLOB`, `--deny GLOB`.
//!
//! A glob has two wildcards, `*` (any run of characters) and `?` (any one), matched
//! against the whole command name by the `wildmatch` crate; nothing else is special, so
//! every other character, `[`, `{` and `\` included, stands for itself.
//!
//! Every command a frame would have QEMU run is checked: `execute`, `exec-oob`, and each
//! action inside a `transaction`. A refused frame never reaches QEMU; the client gets a
//! QMP-shaped error with the frame's `id`. `qmp_capabilities` is always allowed, since no
//! session can start without it.
//!
//! HMP (`human-monitor-command`) runs a command line the rules cannot be checked against
//! (`stop`, `c`, `migrate`, `info`...): with any `--allow` or `--deny` rule it is refused
//! unless an `--allow` rule names `human-monitor-command` itself, not through a wildcard
//! (`--read-only` refuses it always).
//!
//! What passes is what QEMU runs: the frame was parsed by [`qmp::parse_client_frame`],
//! which accepts exactly one command object that QEMU reads as the bridge does, and QEMU
//! is sent its re-serialization, never the client's bytes.

use qmp::ClientFrame;
use wildmatch::WildMatch;

/// What a guarded libvirt domain runs besides queries: the run-state commands (which the
/// bridge turns into libvirt's own calls; `start` is the VM list's start of a shut-off
/// domain) and the screen's, which libvirt does not track.
pub const GUARDED_EXTRAS: &[&str] = &[
    "start",
    "stop",
    "cont",
    "system_reset",
    "system_powerdown",
    "screendump",
    "send-key",
    "input-send-event",
];

/// The command that runs HMP lines.
const HMP: &str = "human-monitor-command";

/// Commands `--read-only` lets through besides `query-*` and `x-query-*`.
const READ_ONLY_EXTRAS: &[&str] = &[
    "qmp_capabilities",
    "qom-get",
    "qom-list",
    "qom-list-types",
    "qom-list-properties",
    "device-list-properties",
];

/// The command policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub read_only: bool,
    /// A libvirt domain under `--libvirt-policy guarded`: besides queries, only what
    /// leaves libvirt in charge ([`GUARDED_EXTRAS`]) and what an `--allow` rule names.
    pub guarded: bool,
    /// When non-empty, a command must match one of these.
    pub allow: Vec<String>,
    /// A command matching one of these is refused (deny wins over allow).
    pub deny: Vec<String>,
}

/// `*` matches any run of characters, `?` any one; nothing else is special (no classes,
/// no braces, no escapes), and the whole name must match.
fn glob_match(pattern: &str, name: &str) -> bool {
    WildMatch::new(pattern).matches(name)
}

fn is_read_only(name: &str) -> bool {
    name.starts_with("query-") || name.starts_with("x-query-") || READ_ONLY_EXTRAS.contains(&name)
}

impl Policy {
    /// The rules for one VM: unprefixed `--allow`/`--deny` globs, plus those written
    /// `NAME:GLOB` for this VM's name.
    pub fn for_vm(&self, vm: &str) -> Policy {
        let pick = |rules: &[String]| -> Vec<String> {
            rules
                .iter()
                .filter_map(|r| match r.split_once(':') {
                    Some((name, glob)) => (name == vm).then(|| glob.to_owned()),
                    None => Some(r.clone()),
                })
                .collect()
        };
        Policy {
            read_only: self.read_only,
            guarded: self.guarded,
            allow: pick(&self.allow),
            deny: pick(&self.deny),
        }
    }

    /// True when the policy refuses nothing.
    pub fn is_open(&self) -> bool {
        !self.read_only && !self.guarded && self.allow.is_empty() && self.deny.is_empty()
    }

    /// Why `name` is refused, if it is.
    fn refuse(&self, name: &str) -> Option<String> {
        self.refuse_as(name, self.read_only)
    }

    /// Why the bridge may not run `name` on its own (the screen's `screendump`), if it may
    /// not: the `--allow`/`--deny` rules apply, `--read-only` does not, since no client
    /// chooses its arguments (the bridge names the file).
    pub fn refuses_for_bridge(&self, name: &str) -> Option<String> {
        self.refuse_as(name, false)
    }

    /// Whether the bridge may run `name` for a client, with the client's arguments (the
    /// keys typed with `send-key`): every rule applies, `--read-only` too.
    pub fn refuses_for_client(&self, name: &str) -> Option<String> {
        self.refuse(name)
    }

    fn refuse_as(&self, name: &str, read_only: bool) -> Option<String> {
        if name == "qmp_capabilities" {
            return None;
        }
        if read_only && !is_read_only(name) {
            return Some(format!("'{name}' is not a query command (--read-only)"));
        }
        if let Some(glob) = self.deny.iter().find(|g| glob_match(g, name)) {
            return Some(format!("'{name}' matches --deny {glob}"));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|g| glob_match(g, name)) {
            return Some(format!("'{name}' matches no --allow pattern"));
        }
        if self.guarded
            && !is_read_only(name)
            && !GUARDED_EXTRAS.contains(&name)
            && !self.allow.iter().any(|g| g == name)
        {
            return Some(format!(
                "'{name}' would change this libvirt domain behind libvirt's back \
                 (--libvirt-policy guarded; --allow {name} or --libvirt-policy open permits it)"
            ));
        }
        if name == HMP && !self.allow.iter().any(|g| g == HMP) {
            return Some(format!(
                "HMP command lines cannot be checked against --allow/--deny rules; \
                 to permit them anyway, --allow {HMP}"
            ));
        }
        None
    }

    /// Refuses the frame when any command in it is refused.
    pub fn check(&self, frame: &ClientFrame) -> Result<(), String> {
        if self.is_open() {
            return Ok(());
        }
        let names = frame.commands();
        let outer = names.first().copied();
        for name in &names {
            if let Some(why) = self.refuse(name) {
                return Err(match outer {
                    Some(outer) if outer != *name => format!("{why}, inside '{outer}'"),
                    _ => why,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> ClientFrame {
        qmp::parse_client_frame(text).expect("valid frame")
    }

    #[test]
    fn globs() {
        assert!(glob_match("query-*", "query-status"));
        assert!(glob_match("*", ""));
        assert!(glob_match("block*-add", "blockdev-add"));
        assert!(glob_match("?top", "stop"));
        assert!(!glob_match("query-*", "stop"));
        assert!(!glob_match("stop", "stops"));
        assert!(glob_match("*a*b*", "xxaxxbxx"));
        assert!(!glob_match("*a*b", "xxaxxbxxc"));
    }

    #[test]
    fn globs_read_wildcards_in_the_name_as_plain_characters() {
        assert!(glob_match("*", "*x"));
        assert!(glob_match("query*", "query*x"));
        assert!(glob_match("a?c", "a?c"));
        assert!(!glob_match("[ab]", "a"), "no character classes");
        assert!(!glob_match("{a,b}", "a"), "no braces");
        assert!(!glob_match("Stop", "stop"), "case matters");
    }

    #[test]
    fn read_only_allows_queries_only() {
        let p = Policy {
            read_only: true,
            ..Policy::default()
        };
        assert!(p.check(&frame(r#"{"execute": "query-status"}"#)).is_ok());
        assert!(p
            .check(&frame(r#"{"execute": "qmp_capabilities"}"#))
            .is_ok());
        assert!(p
            .check(&frame(r#"{"execute": "stop"}"#))
            .unwrap_err()
            .contains("--read-only"));
        assert!(p.check(&frame(r#"{"execute": "human-monitor-command", "arguments": {"command-line": "info status"}}"#)).is_err());
        assert!(p.check(&frame(r#"{"exec-oob": "migrate-pause"}"#)).is_err());
    }

    #[test]
    fn a_guarded_libvirt_domain_runs_queries_and_run_state_commands_only() {
        let p = Policy {
            guarded: true,
            ..Policy::default()
        };
        assert!(!p.is_open());
        for ok in ["query-status", "qom-get", "stop", "cont", "system_reset"] {
            assert!(
                p.check(&frame(&format!(r#"{{"execute": "{ok}"}}"#)))
                    .is_ok(),
                "{ok}"
            );
        }
        for refused in [
            "device_del",
            "quit",
            "migrate",
            "human-monitor-command",
            "blockdev-add",
        ] {
            let why = p
                .check(&frame(&format!(r#"{{"execute": "{refused}"}}"#)))
                .unwrap_err();
            assert!(why.contains("behind libvirt's back"), "{refused}: {why}");
        }
        let allowed = Policy {
            guarded: true,
            allow: vec!["query-*".into(), "device_del".into()],
            ..Policy::default()
        };
        assert!(allowed
            .check(&frame(r#"{"execute": "device_del"}"#))
            .is_ok());
        assert!(allowed.check(&frame(r#"{"execute": "quit"}"#)).is_err());
    }

    #[test]
    fn hmp_needs_an_explicit_allow_once_any_rule_is_set() {
        let hmp =
            frame(r#"{"execute": "human-monitor-command", "arguments": {"command-line": "stop"}}"#);
        assert!(
            Policy::default().check(&hmp).is_ok(),
            "no rules: HMP as with QEMU"
        );
        let deny_stop = Policy {
            deny: vec!["stop".into()],
            ..Policy::default()
        };
        let why = deny_stop.check(&hmp).unwrap_err();
        assert!(why.contains("--allow human-monitor-command"), "{why}");
        let star = Policy {
            allow: vec!["*".into()],
            deny: vec!["quit".into()],
            ..Policy::default()
        };
        assert!(
            star.check(&hmp).is_err(),
            "a wildcard is not an explicit allow"
        );
        let explicit = Policy {
            allow: vec!["query-*".into(), "human-monitor-command".into()],
            ..Policy::default()
        };
        assert!(explicit.check(&hmp).is_ok());
        let vm = Policy {
            allow: vec!["*".into(), "vm1:human-monitor-command".into()],
            ..Policy::default()
        };
        assert!(vm.for_vm("vm1").check(&hmp).is_ok());
        assert!(vm.for_vm("vm2").check(&hmp).is_err());
        let both = Policy {
            allow: vec!["human-monitor-command".into()],
            deny: vec!["human-*".into()],
            ..Policy::default()
        };
        assert!(both.check(&hmp).unwrap_err().contains("--deny"));
    }

    #[test]
    fn transaction_actions_are_checked() {
        let p = Policy {
            deny: vec!["blockdev-snapshot*".into()],
            ..Policy::default()
        };
        let t = r#"{"execute": "transaction", "arguments": {"actions": [{"type": "abort"}, {"type": "blockdev-snapshot-sync"}]}}"#;
        let why = p.check(&frame(t)).unwrap_err();
        assert!(
            why.contains("blockdev-snapshot-sync") && why.contains("inside 'transaction'"),
            "{why}"
        );
        let ok = r#"{"execute": "transaction", "arguments": {"actions": [{"type": "abort"}]}}"#;
        assert!(p.check(&frame(ok)).is_ok());
    }

    #[test]
    fn vm_prefixed_rules_apply_to_that_vm_only() {
        let p = Policy {
            deny: vec!["vm1:quit".into(), "system_reset".into()],
            allow: vec!["vm2:query-*".into()],
            ..Policy::default()
        };
        let vm1 = p.for_vm("vm1");
        assert!(vm1.check(&frame(r#"{"execute": "quit"}"#)).is_err());
        assert!(vm1.check(&frame(r#"{"execute": "system_reset"}"#)).is_err());
        assert!(vm1.check(&frame(r#"{"execute": "stop"}"#)).is_ok());
        let vm2 = p.for_vm("vm2");
        assert!(
            vm2.check(&frame(r#"{"execute": "quit"}"#)).is_err(),
            "vm2 allows queries only"
        );
        assert!(vm2.check(&frame(r#"{"execute": "query-status"}"#)).is_ok());
        assert!(p
            .for_vm("vm3")
            .check(&frame(r#"{"execute": "quit"}"#))
            .is_ok());
    }

    #[test]
    fn the_bridge_s_own_screendump_passes_read_only_but_not_the_rules() {
        let read_only = Policy {
            read_only: true,
            ..Policy::default()
        };
        assert_eq!(read_only.refuses_for_bridge("screendump"), None);
        assert!(
            read_only
                .check(&frame(
                    r#"{"execute": "screendump", "arguments": {"filename": "/x"}}"#
                ))
                .is_err(),
            "a client's screendump names a file: not under --read-only"
        );
        assert!(read_only.refuses_for_client("send-key").is_some());
        let deny = Policy {
            deny: vec!["screen*".into()],
            ..Policy::default()
        };
        assert!(deny.refuses_for_bridge("screendump").is_some());
        let allow = Policy {
            allow: vec!["query-*".into()],
            ..Policy::default()
        };
        assert!(allow.refuses_for_bridge("screendump").is_some());
        assert_eq!(Policy::default().refuses_for_client("send-key"), None);
    }

    #[test]
    fn allow_list_and_deny_wins() {
        let p = Policy {
            allow: vec!["query-*".into(), "stop".into(), "cont".into()],
            deny: vec!["query-qmp-schema".into()],
            ..Policy::default()
        };
        assert!(p.check(&frame(r#"{"execute": "stop"}"#)).is_ok());
        assert!(p
            .check(&frame(r#"{"execute": "quit"}"#))
            .unwrap_err()
            .contains("no --allow"));
        assert!(p
            .check(&frame(r#"{"execute": "query-qmp-schema"}"#))
            .unwrap_err()
            .contains("--deny"));
    }
}
