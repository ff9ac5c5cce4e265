//! A real libvirtd and real domains for the `--libvirt` tests.
//!
//! No systemd runs on these machines: [`ensure_daemon`] starts `virtlogd -d` and then
//! `libvirtd -d` when libvirt's socket is absent (and reuses a daemon already running).
//! A [`TestDomain`] is a TCG domain (64 MiB, no disk, VGA) defined under a unique name
//! through `virsh`, destroyed and undefined on drop.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::{wait_until, Result};

/// The connection the tests use.
pub const URI: &str = "qemu:///system";
const SOCKET: &str = "/run/libvirt/libvirt-sock";

/// Runs `virsh -c URI ARGS`, failing with its output when it fails.
pub fn virsh(args: &[&str]) -> Result<String> {
    let out = Command::new("virsh")
        .args(["-c", URI])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run virsh (run ./scripts/setup): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "virsh {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Makes sure a libvirtd answers at [`URI`], starting `virtlogd` and `libvirtd` as
/// daemons when none runs, and removes the domains of test processes that are gone (a
/// run killed before its domains' drop).
pub fn ensure_daemon() -> Result<()> {
    if !(Path::new(SOCKET).exists() && virsh(&["version"]).is_ok()) {
        start_daemons()?;
    }
    for name in virsh(&["list", "--all", "--name"])?.lines() {
        // qc-LABEL-PID-N
        let pid = name.rsplit('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        let stale = name.starts_with("qc-")
            && pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if stale {
            let _ = virsh(&["destroy", name]);
            let _ = virsh(&["undefine", name]);
        }
    }
    Ok(())
}

fn start_daemons() -> Result<()> {
    // (one may run already: a second one just exits)
    for daemon in ["virtlogd", "libvirtd"] {
        Command::new(daemon)
            .arg("-d")
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("cannot start {daemon} (run ./scripts/setup): {e}"))?;
    }
    wait_until(Duration::from_secs(20), "libvirtd to answer", || {
        virsh(&["version"]).ok()
    })
    .map(drop)
}

/// A domain of the tests' own, destroyed and undefined on drop.
#[derive(Debug)]
pub struct TestDomain {
    pub name: String,
}

impl TestDomain {
    /// Defines a domain named `qc-LABEL-PID-N` (not started).
    pub fn define(label: &str) -> Result<TestDomain> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "qc-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let xml = format!(
            "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>\
             <vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>\
             <devices><emulator>{}</emulator><video><model type='vga'/></video>\
             </devices></domain>",
            which_qemu()
        );
        let dir = crate::TempDir::new("domain")?;
        let file = dir.path().join("domain.xml");
        std::fs::write(&file, xml)?;
        virsh(&["define", &file.to_string_lossy()])?;
        Ok(TestDomain { name })
    }

    /// Defines and starts a domain.
    pub fn running(label: &str) -> Result<TestDomain> {
        let d = TestDomain::define(label)?;
        d.start()?;
        Ok(d)
    }

    pub fn start(&self) -> Result<()> {
        virsh(&["start", &self.name]).map(drop)
    }

    /// `virsh domstate`: running, paused, shut off, ...
    pub fn state(&self) -> Result<String> {
        Ok(virsh(&["domstate", &self.name])?.trim().to_owned())
    }
}

impl Drop for TestDomain {
    fn drop(&mut self) {
        let _ = virsh(&["destroy", &self.name]);
        let _ = virsh(&["undefine", &self.name]);
    }
}

/// The QEMU binary's full path, as libvirt's `<emulator>` wants it.
fn which_qemu() -> String {
    let binary = crate::qemu::binary();
    if binary.contains('/') {
        return binary;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(&binary))
                .find(|p| p.exists())
        })
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("/usr/bin/{binary}"))
}
