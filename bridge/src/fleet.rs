//! Many VMs from one bridge: the registry of named QMP targets, each with its own
//! multiplexer, counters and policy. `--qmp-dir` keeps the registry in step with a folder
//! of sockets: new sockets appear, vanished ones are shown as gone (never silently
//! removed), and files that are not sockets are reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::metrics::VmMetrics;
use crate::mux::{Fault, Mux};
use crate::session::Settings;
use crate::target::QmpTarget;

/// How often `--qmp-dir` is looked at.
pub const DIR_POLL: Duration = Duration::from_millis(500);

/// One VM.
#[derive(Debug)]
pub struct Vm {
    pub name: String,
    pub settings: Arc<Settings>,
    pub mux: Mux,
    pub metrics: Arc<VmMetrics>,
    /// Found in `--qmp-dir` (rather than named with `--qmp`).
    pub from_dir: bool,
    /// Its socket file has vanished from `--qmp-dir`.
    vanished: AtomicBool,
}

impl Vm {
    /// `up`, `connecting`, `busy` (no greeting), `gone` or `error`.
    pub fn state(&self) -> &'static str {
        let up = self.mux.state();
        if up.is_up() {
            return "up";
        }
        if self.vanished.load(Ordering::Relaxed) {
            return "gone";
        }
        match up.fault {
            None => "connecting",
            Some(Fault::Busy) => "busy",
            Some(Fault::Unreachable) => "gone",
            Some(Fault::Broken) => "error",
        }
    }

    /// The row of the VM list.
    pub fn view(&self) -> Value {
        let up = self.mux.state();
        let greeting = up
            .greeting
            .as_deref()
            .and_then(|g| match qmp::Message::parse(g) {
                Ok(qmp::Message::Greeting(g)) => Some(g),
                _ => None,
            });
        json!({
            "name": self.name,
            "target": self.settings.target.to_string(),
            "state": self.state(),
            "version": greeting.as_ref().map(|g| g.version.to_string()),
            "package": greeting.as_ref().map(|g| g.package.clone()),
            "run_state": up.run_state,
            "clients": self.metrics.sessions.load(Ordering::Relaxed),
            "last_error": up.last_error,
        })
    }
}

/// Every VM this bridge serves.
#[derive(Debug)]
pub struct Fleet {
    vms: RwLock<BTreeMap<String, Arc<Vm>>>,
    /// Entries of `--qmp-dir` that are not sockets, and why.
    problems: RwLock<BTreeMap<String, String>>,
    base: Settings,
    shutdown: watch::Receiver<bool>,
    /// One `--qmp` without a name and no `--qmp-dir`: served at `/ws` as before.
    pub single: bool,
}

/// A name usable in a URL path: letters, digits, `.`, `_`, `-`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !name.starts_with('.')
}

/// The VM name for a socket file: its name without `.sock`/`.qmp`/`.socket`, other
/// characters replaced by `_`.
pub fn name_for_file(file: &str) -> String {
    let stem = [".sock", ".qmp", ".socket"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .unwrap_or(file);
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.trim_start_matches('.').chars().take(64).collect()
}

impl Fleet {
    /// Starts a multiplexer for each named target.
    pub fn new(
        base: Settings,
        targets: Vec<(String, QmpTarget)>,
        single: bool,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Fleet> {
        let fleet = Arc::new(Fleet {
            vms: RwLock::default(),
            problems: RwLock::default(),
            base,
            shutdown,
            single,
        });
        for (name, target) in targets {
            fleet.add(name, target, false);
        }
        fleet
    }

    fn add(&self, name: String, target: QmpTarget, from_dir: bool) -> Arc<Vm> {
        let mut settings = self.base.clone();
        settings.policy = self.base.policy.for_vm(&name);
        settings.vm = name.clone();
        settings.target = target;
        let settings = Arc::new(settings);
        let metrics = Arc::new(VmMetrics::default());
        let mux = Mux::start(settings.clone(), metrics.clone(), self.shutdown.clone());
        let vm = Arc::new(Vm {
            name: name.clone(),
            settings,
            mux,
            metrics,
            from_dir,
            vanished: AtomicBool::new(false),
        });
        tracing::info!(vm = %name, target = %vm.settings.target, "serving VM");
        if let Ok(mut vms) = self.vms.write() {
            vms.insert(name, vm.clone());
        }
        vm
    }

    pub fn get(&self, name: &str) -> Option<Arc<Vm>> {
        self.vms.read().ok()?.get(name).cloned()
    }

    /// The VM of a single-target bridge.
    pub fn only(&self) -> Option<Arc<Vm>> {
        let vms = self.vms.read().ok()?;
        if self.single && vms.len() == 1 {
            vms.values().next().cloned()
        } else {
            None
        }
    }

    pub fn all(&self) -> Vec<Arc<Vm>> {
        self.vms
            .read()
            .map(|v| v.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The VM list as `/api/vms` serves it.
    pub fn view(&self) -> Value {
        let problems: Vec<Value> = self
            .problems
            .read()
            .map(|p| {
                p.iter()
                    .map(|(name, reason)| json!({ "name": name, "reason": reason }))
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "mode": if self.single { "single" } else { "fleet" },
            "vms": self.all().iter().map(|vm| vm.view()).collect::<Vec<_>>(),
            "problems": problems,
        })
    }

    /// Every VM's counters, Prometheus text.
    pub fn metrics(&self) -> String {
        let vms = self.all();
        crate::metrics::render(vms.iter().map(|vm| (vm.name.as_str(), vm.metrics.as_ref())))
    }

    /// Brings the registry in line with the sockets now in `dir`.
    pub fn scan(&self, dir: &Path) {
        use std::os::unix::fs::FileTypeExt;
        let mut seen = Vec::new();
        let mut problems = BTreeMap::new();
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let file = entry.file_name().to_string_lossy().into_owned();
                    let name = name_for_file(&file);
                    if !valid_name(&name) {
                        problems.insert(file, "no usable VM name in this file name".into());
                        continue;
                    }
                    match entry.file_type() {
                        Ok(t) if t.is_socket() => {
                            seen.push(name.clone());
                            match self.get(&name) {
                                Some(vm) => vm.vanished.store(false, Ordering::Relaxed),
                                None => {
                                    self.add(name, QmpTarget::Unix(entry.path()), true);
                                }
                            }
                        }
                        Ok(_) => {
                            problems.insert(file, "not a socket".into());
                        }
                        Err(e) => {
                            problems.insert(file, e.to_string());
                        }
                    }
                }
            }
            Err(e) => {
                problems.insert(
                    dir.display().to_string(),
                    format!("cannot read --qmp-dir: {e}"),
                );
            }
        }
        for vm in self.all().iter().filter(|vm| vm.from_dir) {
            let gone = !seen.contains(&vm.name);
            if gone && !vm.vanished.swap(true, Ordering::Relaxed) {
                tracing::info!(vm = %vm.name, "socket gone from --qmp-dir");
            }
        }
        if let Ok(mut p) = self.problems.write() {
            *p = problems;
        }
    }

    /// Scans `dir` every [`DIR_POLL`] until shutdown.
    pub async fn watch_dir(self: Arc<Self>, dir: PathBuf) {
        let mut shutdown = self.shutdown.clone();
        loop {
            self.scan(&dir);
            tokio::select! {
                _ = tokio::time::sleep(DIR_POLL) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_files() {
        assert_eq!(name_for_file("vm1.sock"), "vm1");
        assert_eq!(name_for_file("web server.qmp"), "web_server");
        assert_eq!(name_for_file("db.socket"), "db");
        assert_eq!(name_for_file("plain"), "plain");
        assert!(valid_name("vm-1.test_2"));
        assert!(
            !valid_name("") && !valid_name("a/b") && !valid_name(".hidden") && !valid_name("a b")
        );
    }
}
