//! A VM's screen as a PNG (`/vm/NAME/screen.png`), taken with QEMU's `screendump`.
//!
//! Every viewer of a VM shares one [`Screen`]: at most one `screendump` is in flight at
//! QEMU, a frame younger than [`ScreenLimits::min_interval`] is served again instead of
//! taking a new one (the rate limit), a viewer waits at most [`ScreenLimits::timeout`]
//! (a dump QEMU has not answered by then stays the only one in flight, and later viewers
//! are told at once instead of queueing more), and the file is read only up to
//! [`ScreenLimits::max_bytes`].
//!
//! QEMU writes the file itself, so the bridge must not read a path someone else can
//! swap: each VM's files go in a directory the bridge creates under a random name with
//! mode 0700 ([`PrivateDir`]), opened without following symlinks and read only when it is
//! a regular file. This works when QEMU runs as the bridge's user; a QEMU running as
//! another user (libvirt's `libvirt-qemu`) cannot write there, and the answer says so.
//!
//! The screen is served unless the policy's `--allow`/`--deny` rules refuse `screendump`;
//! `--read-only` does not refuse it: viewers never name a file, the bridge does.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::metrics::VmMetrics;
use crate::mux::Mux;
use crate::mux_caller::{CallError, MuxCaller};
use crate::session::Settings;

/// How each VM's screendumps are bounded.
#[derive(Debug, Clone, Copy)]
pub struct ScreenLimits {
    /// How long a viewer waits for a frame.
    pub timeout: Duration,
    /// A frame this young is served again rather than taking a new one.
    pub min_interval: Duration,
    /// The largest PNG read from QEMU's file.
    pub max_bytes: u64,
}

impl Default for ScreenLimits {
    fn default() -> ScreenLimits {
        ScreenLimits {
            timeout: Duration::from_secs(5),
            min_interval: Duration::from_millis(500),
            max_bytes: 16 << 20,
        }
    }
}

/// One screendump: the PNG, its `ETag` and its size in pixels.
#[derive(Debug)]
pub struct Frame {
    pub png: Bytes,
    /// A quoted hash of the PNG: the same picture gets the same tag.
    pub etag: String,
    pub width: u32,
    pub height: u32,
}

/// Why there is no frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScreenError {
    /// The policy refuses `screendump` for this VM.
    #[error("the screen is refused by qmp-bridge policy: {0}")]
    Refused(String),
    /// The bridge does not take this VM's screen (a libvirt domain: QEMU runs as libvirt's
    /// user and cannot write into the bridge's private directory).
    #[error("{0}")]
    NotServed(String),
    /// The VM has no display device (`-vga none`, `-nographic`).
    #[error("this VM has no display (QEMU: {0})")]
    NoDisplay(String),
    /// QEMU did not answer within the timeout.
    #[error("QEMU did not answer screendump within {0:?}")]
    Timeout(Duration),
    /// An earlier screendump is still unanswered; none other is sent meanwhile.
    #[error("QEMU has not answered the last screendump for {0} s; no other is sent until it does")]
    Stuck(u64),
    /// QEMU cannot be reached now.
    #[error("{0}")]
    Unavailable(String),
    /// QEMU refused or failed the screendump.
    #[error("screendump failed: {0}")]
    Qemu(String),
    /// The file is over the size cap.
    #[error("the screen image is {0} bytes, over the {1}-byte cap")]
    TooLarge(u64, u64),
    /// The file could not be had or is not a PNG.
    #[error("the screen image could not be read: {0}")]
    File(String),
}

impl ScreenError {
    /// The HTTP status that says it: 204 (no picture, and nothing failed: a page shows no
    /// error for it) when there is no screen to show here, an error status when taking it
    /// failed.
    pub fn status(&self) -> u16 {
        match self {
            ScreenError::Refused(_) | ScreenError::NoDisplay(_) | ScreenError::NotServed(_) => 204,
            ScreenError::Timeout(_) | ScreenError::Stuck(_) => 504,
            ScreenError::Unavailable(_) => 503,
            ScreenError::Qemu(_) | ScreenError::TooLarge(..) => 502,
            ScreenError::File(_) => 500,
        }
    }
}

type Shot = Result<Arc<Frame>, ScreenError>;

/// A VM's screen, shared by all its viewers.
#[derive(Debug)]
pub struct Screen {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Arc<Settings>,
    mux: Mux,
    metrics: Arc<VmMetrics>,
    limits: ScreenLimits,
    state: Mutex<State>,
    /// The bridge's own client of the VM, attached at the first screendump.
    caller: tokio::sync::Mutex<Option<MuxCaller>>,
    /// Where QEMU writes, made at the first screendump.
    dir: Mutex<Option<Arc<PrivateDir>>>,
    seq: AtomicU64,
    /// Why this VM's screen is not taken at all, if it is not.
    not_served: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    /// The last outcome and when it came.
    latest: Option<(Instant, Shot)>,
    /// The screendump in flight: since when, and where its outcome will show.
    running: Option<(Instant, watch::Receiver<Option<Shot>>)>,
}

impl Screen {
    pub fn new(settings: Arc<Settings>, mux: Mux, metrics: Arc<VmMetrics>) -> Screen {
        Screen::with_limits(settings, mux, metrics, ScreenLimits::default())
    }

    pub fn with_limits(
        settings: Arc<Settings>,
        mux: Mux,
        metrics: Arc<VmMetrics>,
        limits: ScreenLimits,
    ) -> Screen {
        Screen {
            inner: Arc::new(Inner {
                settings,
                mux,
                metrics,
                limits,
                state: Mutex::default(),
                caller: tokio::sync::Mutex::new(None),
                dir: Mutex::new(None),
                seq: AtomicU64::new(0),
                not_served: None,
            }),
        }
    }

    /// A screen that is never taken, and says `why`.
    pub fn not_served(
        settings: Arc<Settings>,
        mux: Mux,
        metrics: Arc<VmMetrics>,
        why: &str,
    ) -> Screen {
        let mut screen = Screen::new(settings, mux, metrics);
        if let Some(inner) = Arc::get_mut(&mut screen.inner) {
            inner.not_served = Some(why.to_owned());
        }
        screen
    }

    /// The screen now: the latest frame when it is young enough, else the one being
    /// taken, else a new one.
    pub async fn frame(&self) -> Shot {
        let inner = &self.inner;
        if let Some(why) = &inner.not_served {
            return Err(ScreenError::NotServed(why.clone()));
        }
        if let Some(why) = inner.settings.policy.refuses_for_bridge("screendump") {
            return Err(ScreenError::Refused(why));
        }
        let (since, mut outcome) = {
            let mut state = inner.state.lock().map_err(|_| poisoned())?;
            if let Some((at, shot)) = &state.latest {
                if at.elapsed() < inner.limits.min_interval {
                    return shot.clone();
                }
            }
            match &state.running {
                Some((since, _)) if since.elapsed() >= inner.limits.timeout => {
                    return Err(ScreenError::Stuck(since.elapsed().as_secs()));
                }
                Some((since, rx)) => (*since, rx.clone()),
                None => {
                    let (tx, rx) = watch::channel(None);
                    let since = Instant::now();
                    state.running = Some((since, rx.clone()));
                    tokio::spawn(inner.clone().dump(tx));
                    (since, rx)
                }
            }
        };
        let deadline = since + inner.limits.timeout;
        let waited = tokio::time::timeout_at(deadline, async {
            match outcome.wait_for(Option::is_some).await {
                Ok(shot) => shot.clone().unwrap_or_else(|| Err(poisoned())),
                Err(_) => Err(ScreenError::Unavailable(
                    "the screendump was abandoned".into(),
                )),
            }
        })
        .await;
        waited.unwrap_or(Err(ScreenError::Timeout(inner.limits.timeout)))
    }
}

fn poisoned() -> ScreenError {
    ScreenError::File("internal state lost".into())
}

impl Inner {
    /// Takes one screendump and shows its outcome to every viewer waiting, and to the next
    /// ones for `min_interval`.
    async fn dump(self: Arc<Self>, done: watch::Sender<Option<Shot>>) {
        let shot = self.take().await;
        if let Ok(mut state) = self.state.lock() {
            state.latest = Some((Instant::now(), shot.clone()));
            state.running = None;
        }
        done.send_replace(Some(shot));
    }

    async fn take(&self) -> Shot {
        let dir = self.dir()?;
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let path = dir.path().join(format!("{n}.png"));
        let mut caller = self.caller.lock().await;
        if !caller.as_ref().is_some_and(MuxCaller::is_attached) {
            *caller = None;
            let attached = MuxCaller::attach(&self.mux, self.limits.timeout).await;
            *caller = Some(attached.map_err(|e| ScreenError::Unavailable(e.to_string()))?);
        }
        let Some(caller) = caller.as_mut() else {
            return Err(poisoned());
        };
        self.metrics.screendumps.fetch_add(1, Ordering::Relaxed);
        let args = json!({ "filename": path.to_string_lossy(), "format": "png" });
        let answer = caller.execute("screendump", args).await;
        let frame = match answer {
            Ok(_) => {
                let max = self.limits.max_bytes;
                let file = path.clone();
                tokio::task::spawn_blocking(move || read_png(&file, max))
                    .await
                    .unwrap_or_else(|e| Err(ScreenError::File(e.to_string())))
            }
            Err(CallError::Qemu(e)) if no_display(&e.desc) => Err(ScreenError::NoDisplay(e.desc)),
            Err(CallError::Qemu(e)) if e.desc.contains("Permission denied") => {
                Err(ScreenError::Qemu(format!(
                    "{}: QEMU cannot write into qmp-bridge's private directory (does it run as another user?)",
                    e.desc
                )))
            }
            Err(CallError::Qemu(e)) => Err(ScreenError::Qemu(format!("{}: {}", e.class, e.desc))),
            Err(CallError::Unavailable(why)) => Err(ScreenError::Unavailable(why)),
        };
        let _ = std::fs::remove_file(&path);
        frame.map(Arc::new)
    }

    fn dir(&self) -> Result<Arc<PrivateDir>, ScreenError> {
        let mut dir = self.dir.lock().map_err(|_| poisoned())?;
        if let Some(d) = dir.as_ref() {
            return Ok(d.clone());
        }
        let made = PrivateDir::create(&std::env::temp_dir(), &self.settings.vm)
            .map_err(|e| ScreenError::File(format!("cannot make a private directory: {e}")))?;
        let made = Arc::new(made);
        *dir = Some(made.clone());
        Ok(made)
    }
}

/// QEMU's words for a VM without a display (7.2, and older versions').
fn no_display(desc: &str) -> bool {
    desc.contains("no console") || desc.contains("no QemuConsole")
}

/// A directory only the bridge's user may enter (mode 0700) under a random name, removed
/// with everything in it when dropped.
#[derive(Debug)]
pub struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    /// Makes `qmp-bridge-screen-LABEL-RANDOM` in `parent`; fails rather than reuse
    /// anything that exists.
    pub fn create(parent: &Path, label: &str) -> std::io::Result<PrivateDir> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let random = crate::security::random_token().map_err(std::io::Error::other)?;
        let label: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(32)
            .collect();
        let path = parent.join(format!("qmp-bridge-screen-{label}-{}", &random[..16]));
        // mkdir fails if anything (a symlink too) is there already
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
        Ok(PrivateDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Reads the PNG QEMU wrote at `path`: a regular file, not through a symlink, at most
/// `max` bytes, with a PNG signature and header.
pub fn read_png(path: &Path, max: u64) -> Result<Frame, ScreenError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| ScreenError::File(e.to_string()))?;
    let meta = file
        .metadata()
        .map_err(|e| ScreenError::File(e.to_string()))?;
    if !meta.is_file() {
        return Err(ScreenError::File("not a regular file".into()));
    }
    if meta.len() > max {
        return Err(ScreenError::TooLarge(meta.len(), max));
    }
    let mut png = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut png)
        .map_err(|e| ScreenError::File(e.to_string()))?;
    if png.len() as u64 > max {
        return Err(ScreenError::TooLarge(png.len() as u64, max));
    }
    let (width, height) = png_size(&png).ok_or_else(|| ScreenError::File("not a PNG".into()))?;
    let etag = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        png.hash(&mut h);
        format!("\"{:016x}\"", h.finish())
    };
    Ok(Frame {
        png: Bytes::from(png),
        etag,
        width,
        height,
    })
}

/// A PNG's width and height, from its signature and `IHDR` chunk.
pub fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let rest = png.strip_prefix(SIGNATURE)?;
    let ihdr = rest.get(..16)?;
    if &ihdr[4..8] != b"IHDR" {
        return None;
    }
    let word = |at: usize| u32::from_be_bytes([ihdr[at], ihdr[at + 1], ihdr[at + 2], ihdr[at + 3]]);
    Some((word(8), word(12)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The smallest PNG header: signature, then an IHDR of 720x400.
    fn header() -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&720u32.to_be_bytes());
        png.extend_from_slice(&400u32.to_be_bytes());
        png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        png
    }

    #[test]
    fn the_private_directory_is_the_bridge_users_alone() {
        let parent = testkit::TempDir::new("screen-dir").unwrap();
        let dir = PrivateDir::create(parent.path(), "vm/1").unwrap();
        let meta = std::fs::symlink_metadata(dir.path()).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        let name = dir.path().file_name().unwrap().to_string_lossy();
        assert!(name.starts_with("qmp-bridge-screen-vm_1-"), "{name}");
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists(), "removed when dropped");
    }

    #[test]
    fn a_symlink_or_a_folder_is_not_read() {
        let dir = testkit::TempDir::new("screen-read").unwrap();
        let target = dir.path().join("secret.png");
        std::fs::write(&target, header()).unwrap();
        let link = dir.path().join("0.png");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            read_png(&link, 1 << 20),
            Err(ScreenError::File(_))
        ));
        assert!(matches!(
            read_png(dir.path(), 1 << 20),
            Err(ScreenError::File(_))
        ));
        let frame = read_png(&target, 1 << 20).unwrap();
        assert_eq!((frame.width, frame.height), (720, 400));
    }

    #[test]
    fn a_file_over_the_cap_is_refused() {
        let dir = testkit::TempDir::new("screen-cap").unwrap();
        let path = dir.path().join("big.png");
        let mut png = header();
        png.resize(4096, 0);
        std::fs::write(&path, &png).unwrap();
        assert_eq!(
            read_png(&path, 4095).unwrap_err(),
            ScreenError::TooLarge(4096, 4095)
        );
        assert!(read_png(&path, 4096).is_ok());
    }

    #[test]
    fn png_headers() {
        assert_eq!(png_size(&header()), Some((720, 400)));
        assert_eq!(png_size(b"GIF89a"), None);
        assert_eq!(png_size(&header()[..20]), None);
        let same = |a: &[u8]| {
            let dir = testkit::TempDir::new("screen-etag").unwrap();
            let p = dir.path().join("a.png");
            std::fs::write(&p, a).unwrap();
            read_png(&p, 1 << 20).unwrap().etag
        };
        let mut other = header();
        other.push(1);
        assert_eq!(same(&header()), same(&header()));
        assert_ne!(same(&header()), same(&other));
    }

    #[test]
    fn statuses() {
        assert_eq!(ScreenError::NoDisplay("x".into()).status(), 204);
        assert_eq!(ScreenError::Refused("x".into()).status(), 204);
        assert_eq!(ScreenError::Stuck(5).status(), 504);
        assert!(no_display("There is no console to take a screendump from"));
        assert!(no_display("There is no QemuConsole I can screendump from."));
    }
}
