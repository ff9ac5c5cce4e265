//! Many VMs from one bridge: the registry of named QMP targets, each with its own
//! multiplexer, counters and policy.
//!
//! `--qmp-dir` keeps the registry in step with a folder of sockets. A VM found there *is*
//! its socket's path: a new path is a new VM, and a VM whose path vanishes (deleted, or
//! renamed, which makes a new path and so a new VM) is shown as gone at once, its
//! multiplexer stopped (which lets go of QEMU's monitor, so a renamed socket's new VM can
//! take it), and dropped from the registry once it has been gone for the grace period
//! ([`GONE_GRACE`]). Entries that are not VMs are reported as problems: files that are not
//! sockets, names that make no VM name, and socket files whose names make the same VM
//! name (none of them is served) or the name of a `--qmp` VM (which keeps it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use qmp::vm_list::{ListMode, Problem, VmList, VmRow, VmState};
use tokio::sync::watch;

use crate::input::Input;
use crate::metrics::VmMetrics;
use crate::mux::Mux;
use crate::screen::Screen;
use crate::session::{Limits, Settings};
use crate::target::QmpTarget;
use crate::upstream::{Fault, Monitor, SocketMonitor};

/// How often `--qmp-dir` is looked at.
pub const DIR_POLL: Duration = Duration::from_millis(500);

/// How long a VM whose socket left `--qmp-dir` stays listed as gone before it is dropped.
pub const GONE_GRACE: Duration = Duration::from_secs(60);

/// Why a libvirt domain's screen is not shown.
const LIBVIRT_SCREEN: &str = "the screen of a libvirt domain is not shown yet: its QEMU runs as \
     libvirt's user and cannot write into qmp-bridge's private directory";

/// One VM.
#[derive(Debug)]
pub struct Vm {
    pub name: String,
    pub settings: Arc<Settings>,
    pub mux: Mux,
    pub metrics: Arc<VmMetrics>,
    /// Its screen, shared by every viewer.
    pub screen: Screen,
    /// Its keyboard and pointer, shared by every page typing or clicking into it.
    pub input: Input,
    /// The socket file it was found as in `--qmp-dir` (`None`: named with `--qmp`).
    pub path: Option<PathBuf>,
    /// Since when, and why, it is no longer served (its socket left `--qmp-dir`).
    gone: Mutex<Option<(Instant, String)>>,
    /// A libvirt domain: whether it runs (libvirt's lifecycle events keep this current).
    pub domain_active: Option<AtomicBool>,
    /// A libvirt domain: the way to it, for what goes through libvirt's own API.
    #[cfg(feature = "libvirt")]
    pub domain: std::sync::OnceLock<crate::libvirt::DomainMonitor>,
    /// Flipped (or dropped) to stop the multiplexer.
    retire: watch::Sender<bool>,
}

impl Vm {
    /// Up, connecting, busy (no greeting), gone or error.
    pub fn state(&self) -> VmState {
        if self.gone().is_some() {
            return VmState::Gone;
        }
        if let Some(active) = &self.domain_active {
            if !active.load(Ordering::Relaxed) {
                return VmState::Off;
            }
        }
        let up = self.mux.state();
        if up.is_up() {
            return VmState::Up;
        }
        match up.fault {
            None => VmState::Connecting,
            Some(Fault::Busy) => VmState::Busy,
            Some(Fault::Unreachable) => VmState::Gone,
            Some(Fault::Broken) => VmState::Error,
        }
    }

    /// Since when, and why, the VM is no longer served.
    fn gone(&self) -> Option<(Instant, String)> {
        self.gone.lock().ok()?.clone()
    }

    /// Stops serving the VM: it shows as gone and its multiplexer ends.
    fn retire(&self, why: String) {
        tracing::info!(vm = %self.name, "no longer served: {why}");
        if let Ok(mut gone) = self.gone.lock() {
            gone.get_or_insert((Instant::now(), why));
        }
        self.retire.send_replace(true);
    }

    /// The row of the VM list.
    pub fn view(&self) -> VmRow {
        let up = self.mux.state();
        let gone = self.gone();
        let greeting = up
            .greeting
            .as_deref()
            .and_then(|g| match qmp::Message::parse(g) {
                Ok(qmp::Message::Greeting(g)) => Some(g),
                _ => None,
            });
        VmRow {
            name: self.name.clone(),
            target: self.settings.target.to_string(),
            state: self.state(),
            version: greeting.as_ref().map(|g| g.version.to_string()),
            package: greeting.as_ref().map(|g| g.package.clone()),
            run_state: if gone.is_some() { None } else { up.run_state },
            clients: self.metrics.sessions.load(Ordering::Relaxed),
            // (a shut-off domain's failed connects say nothing "off" does not)
            last_error: match self.state() {
                VmState::Off => None,
                _ => gone.map(|(_, why)| Some(why)).unwrap_or(up.last_error),
            },
            managed_by: self.domain_active.as_ref().map(|_| "libvirt".to_owned()),
        }
    }
}

/// Every VM this bridge serves.
#[derive(Debug)]
pub struct Fleet {
    vms: RwLock<BTreeMap<String, Arc<Vm>>>,
    /// Entries of `--qmp-dir` that are not VMs, and why.
    problems: RwLock<BTreeMap<String, String>>,
    /// Other problems (a libvirt URI that cannot be used, a domain whose name is taken).
    other_problems: RwLock<BTreeMap<String, String>>,
    base: Limits,
    shutdown: watch::Receiver<bool>,
    /// How long a vanished VM stays listed as gone.
    grace: Duration,
    /// VMs dropped from the registry after their grace period.
    removed: AtomicU64,
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

/// What one look at `--qmp-dir` found.
#[derive(Debug, Default)]
struct Listing {
    /// The socket file each VM name is served from.
    sockets: BTreeMap<String, PathBuf>,
    /// Entries that are not VMs, and why.
    problems: BTreeMap<String, String>,
    /// The folder could be read (otherwise nothing is known about its sockets).
    read: bool,
}

impl Listing {
    /// Reads `dir`; `taken` tells which names belong to `--qmp` VMs.
    fn read(dir: &Path, taken: impl Fn(&str) -> bool) -> Listing {
        use std::os::unix::fs::FileTypeExt;
        let mut listing = Listing::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                let reason = format!("cannot read --qmp-dir: {e}");
                listing.problems.insert(dir.display().to_string(), reason);
                return listing;
            }
        };
        listing.read = true;
        // every socket file under its VM name, in file name order
        let mut by_name: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let name = name_for_file(&file);
            let problem = match entry.file_type() {
                _ if !valid_name(&name) => "no usable VM name in this file name".to_owned(),
                Ok(t) if t.is_socket() => {
                    by_name.entry(name).or_default().insert(file, entry.path());
                    continue;
                }
                Ok(_) => "not a socket".to_owned(),
                Err(e) => e.to_string(),
            };
            listing.problems.insert(file, problem);
        }
        for (name, files) in by_name {
            if taken(&name) {
                for file in files.into_keys() {
                    let reason = format!("VM name {name:?} belongs to a --qmp target: not served");
                    listing.problems.insert(file, reason);
                }
            } else if files.len() > 1 {
                let all = files.keys().cloned().collect::<Vec<_>>().join(", ");
                for file in files.into_keys() {
                    let reason = format!("{all} all make VM name {name:?}: none of them is served");
                    listing.problems.insert(file, reason);
                }
            } else if let Some((_, path)) = files.into_iter().next() {
                listing.sockets.insert(name, path);
            }
        }
        listing
    }
}

impl Fleet {
    /// Starts a multiplexer for each named target; vanished `--qmp-dir` VMs are dropped
    /// after [`GONE_GRACE`].
    pub fn new(
        base: Limits,
        targets: Vec<(String, QmpTarget)>,
        single: bool,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Fleet> {
        Fleet::with_grace(base, targets, single, shutdown, GONE_GRACE)
    }

    /// [`Fleet::new`], dropping vanished `--qmp-dir` VMs after `grace`.
    pub fn with_grace(
        base: Limits,
        targets: Vec<(String, QmpTarget)>,
        single: bool,
        shutdown: watch::Receiver<bool>,
        grace: Duration,
    ) -> Arc<Fleet> {
        let fleet = Arc::new(Fleet {
            vms: RwLock::default(),
            problems: RwLock::default(),
            other_problems: RwLock::default(),
            base,
            shutdown,
            grace,
            removed: AtomicU64::new(0),
            single,
        });
        if let Ok(mut vms) = fleet.vms.write() {
            for (name, target) in targets {
                let vm = fleet.start(name.clone(), target, None);
                vms.insert(name, vm);
            }
        }
        fleet
    }

    /// Starts serving a VM: its settings, counters and multiplexer, which runs until the
    /// bridge shuts down or the VM is retired (or dropped).
    fn start(&self, name: String, target: QmpTarget, path: Option<PathBuf>) -> Arc<Vm> {
        let settings = self.base.for_vm(&name, target);
        self.start_on(settings, path, None, SocketMonitor::of)
    }

    /// [`Fleet::start`] on any [`Monitor`]; `domain_active` for a libvirt domain.
    fn start_on<M: Monitor>(
        &self,
        settings: Settings,
        path: Option<PathBuf>,
        domain_active: Option<bool>,
        monitor: impl FnOnce(&Settings) -> M,
    ) -> Arc<Vm> {
        let name = settings.vm.clone();
        let settings = Arc::new(settings);
        let monitor = monitor(&settings);
        let metrics = Arc::new(VmMetrics::default());
        let (stop, stopped) = watch::channel(false);
        let (retire, mut retired) = watch::channel(false);
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = retired.changed() => {}
            }
            stop.send_replace(true);
        });
        let mux = Mux::start_on(monitor, settings.clone(), metrics.clone(), stopped);
        tracing::info!(vm = %name, target = %settings.target, "serving VM");
        Arc::new(Vm {
            name,
            screen: match domain_active {
                None => Screen::new(settings.clone(), mux.clone(), metrics.clone()),
                Some(_) => Screen::not_served(
                    settings.clone(),
                    mux.clone(),
                    metrics.clone(),
                    LIBVIRT_SCREEN,
                ),
            },
            input: Input::new(settings.clone(), mux.clone()),
            settings,
            mux,
            metrics,
            path,
            gone: Mutex::new(None),
            domain_active: domain_active.map(AtomicBool::new),
            #[cfg(feature = "libvirt")]
            domain: std::sync::OnceLock::new(),
            retire,
        })
    }

    /// Serves a libvirt domain under `name` (unless the name is taken: then a problem
    /// says so).
    #[cfg(feature = "libvirt")]
    pub fn add_domain(&self, name: String, monitor: crate::libvirt::DomainMonitor, active: bool) {
        let Ok(mut vms) = self.vms.write() else {
            return;
        };
        if vms.contains_key(&name) {
            if let Ok(mut p) = self.other_problems.write() {
                let why = format!(
                    "libvirt domain {:?} at {}: another VM has this name",
                    monitor.domain, monitor.host.uri
                );
                p.insert(name, why);
            }
            return;
        }
        let target = QmpTarget::Libvirt {
            uri: monitor.host.uri.clone(),
            domain: monitor.domain.clone(),
        };
        let mut settings = self.base.for_vm(&name, target);
        settings.policy.guarded = self.base.libvirt_guarded;
        let domain = monitor.clone();
        let vm = self.start_on(settings, None, Some(active), |_| monitor);
        let _ = vm.domain.set(domain);
        vms.insert(name, vm);
    }

    /// A libvirt domain started or stopped.
    pub fn set_domain_active(&self, name: &str, active: bool) {
        let Some(vm) = self.get(name) else {
            return;
        };
        if let Some(flag) = &vm.domain_active {
            flag.store(active, Ordering::Relaxed);
        }
        if active {
            vm.mux.wake(); // connect now, not at the end of the backoff
        }
    }

    /// A libvirt domain was undefined: it leaves the list.
    pub fn remove_domain(&self, name: &str) {
        if let Ok(mut vms) = self.vms.write() {
            if let Some(vm) = vms.remove(name) {
                vm.retire("the domain was undefined".into());
                self.removed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A problem that is not a `--qmp-dir` entry (a libvirt URI that cannot be used).
    pub fn add_problem(&self, name: String, reason: String) {
        if let Ok(mut p) = self.other_problems.write() {
            p.insert(name, reason);
        }
    }

    /// The VM served under `name` (not one that is gone).
    pub fn get(&self, name: &str) -> Option<Arc<Vm>> {
        let vm = self.vms.read().ok()?.get(name).cloned()?;
        vm.gone().is_none().then_some(vm)
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

    /// Every VM listed, gone ones included.
    pub fn all(&self) -> Vec<Arc<Vm>> {
        self.vms
            .read()
            .map(|v| v.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The VM list as `/api/vms` serves it.
    pub fn view(&self) -> VmList {
        let mut problems = Vec::new();
        for list in [&self.problems, &self.other_problems] {
            if let Ok(list) = list.read() {
                problems.extend(list.iter().map(|(name, reason)| Problem {
                    name: name.clone(),
                    reason: reason.clone(),
                }));
            }
        }
        VmList {
            mode: if self.single {
                ListMode::Single
            } else {
                ListMode::Fleet
            },
            vms: self.all().iter().map(|vm| vm.view()).collect(),
            problems,
        }
    }

    /// Every VM's counters, and the fleet's, Prometheus text.
    pub fn metrics(&self) -> String {
        let vms = self.all();
        let mut out =
            crate::metrics::render(vms.iter().map(|vm| (vm.name.as_str(), vm.metrics.as_ref())));
        crate::metrics::render_fleet(&mut out, self.removed.load(Ordering::Relaxed));
        out
    }

    /// Brings the registry in line with the sockets now in `dir` (when it can be read:
    /// otherwise what was found before is kept, and the problem says why).
    pub fn scan(&self, dir: &Path) {
        let problems = {
            let Ok(mut vms) = self.vms.write() else {
                return;
            };
            let listing = Listing::read(dir, |name| {
                vms.get(name).is_some_and(|vm| vm.path.is_none())
            });
            if listing.read {
                self.follow(&mut vms, listing.sockets, &listing.problems);
            }
            listing.problems
        };
        if let Ok(mut p) = self.problems.write() {
            *p = problems;
        }
    }

    /// Serves each name in `sockets` from its path: VMs whose path is no longer there
    /// are retired, those gone for longer than the grace period dropped, and new paths
    /// (or names served again) started.
    fn follow(
        &self,
        vms: &mut BTreeMap<String, Arc<Vm>>,
        mut sockets: BTreeMap<String, PathBuf>,
        problems: &BTreeMap<String, String>,
    ) {
        vms.retain(|name, vm| {
            let Some(path) = &vm.path else {
                return true; // a --qmp target
            };
            match (vm.gone(), sockets.get(name)) {
                (None, Some(wanted)) if wanted == path => {
                    sockets.remove(name); // served already
                    true
                }
                (None, _) => {
                    let file = path
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    vm.retire(match problems.get(&file) {
                        Some(problem) => format!("{file}: {problem}"),
                        None => format!("{file} left --qmp-dir"),
                    });
                    true
                }
                (Some((since, _)), _) if since.elapsed() >= self.grace => {
                    if !sockets.contains_key(name) {
                        tracing::info!(vm = %name, "dropped: gone for {:?}", self.grace);
                        self.removed.fetch_add(1, Ordering::Relaxed);
                    }
                    false
                }
                (Some(_), _) => true,
            }
        });
        // a gone row under a name served again is replaced
        for (name, path) in sockets {
            let vm = self.start(name.clone(), QmpTarget::Unix(path.clone()), Some(path));
            vms.insert(name, vm);
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
