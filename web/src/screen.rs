//! The VM's screen in the page, as plain Rust (no browser, no I/O): which chords the keys
//! pressed in the screen view make ([`KeyTracker`]), and when each picture is read again
//! ([`Schedule`]: the console's view about once a second, the VM list's thumbnails every
//! few seconds, slower while they do not change; either slower while it cannot be had).

use std::rc::Rc;

use qmp::keys;
use yew::AttrValue;

use crate::components::RcByPtr;

/// How often the console's screen view is read while the page is visible, in ms.
pub const LIVE_MS: u32 = 700;
/// How often a thumbnail is read while it changes, in ms.
pub const THUMB_MS: u32 = 3_000;
/// How often, at the slowest, a picture that does not change (a thumbnail) or cannot be
/// had is read, in ms.
pub const SLOWEST_MS: u32 = 15_000;

/// A picture as the page shows it: the object URL of the last PNG read (revoked once
/// nothing holds it), how many were read, and why the last read failed.
#[derive(Clone, Default, PartialEq)]
pub struct Shown {
    pub src: Option<RcByPtr<gloo_file::ObjectUrl>>,
    pub frames: u64,
    pub problem: Option<String>,
}

impl std::fmt::Debug for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shown")
            .field("src", &self.src.as_ref().map(|u| u.0.to_string()))
            .field("frames", &self.frames)
            .field("problem", &self.problem)
            .finish()
    }
}

impl Shown {
    /// A new picture.
    pub fn picture(&self, url: gloo_file::ObjectUrl) -> Shown {
        Shown {
            src: Some(RcByPtr(Rc::new(url))),
            frames: self.frames + 1,
            problem: None,
        }
    }

    /// A read that failed: the last picture stays, with the reason beside it.
    pub fn failed(&self, why: String) -> Shown {
        Shown {
            problem: Some(why),
            ..self.clone()
        }
    }

    /// The picture's URL for an `<img>`.
    pub fn src_text(&self) -> Option<AttrValue> {
        self.src.as_ref().map(|u| AttrValue::from(u.0.to_string()))
    }
}

/// The modifier flags a keyboard event carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mods {
    pub shift: bool,
    pub ctrl: bool,
    pub alt: bool,
    pub meta: bool,
}

impl Mods {
    /// Whether the flag of modifier key `qcode` (`shift_r`, `ctrl`, ...) is set.
    fn holds(&self, qcode: &str) -> bool {
        match qcode {
            "shift" | "shift_r" => self.shift,
            "ctrl" | "ctrl_r" => self.ctrl,
            "alt" | "alt_r" => self.alt,
            "meta_l" | "meta_r" => self.meta,
            _ => false,
        }
    }
}

/// Turns the screen view's key presses into chords: a key goes with the modifiers held
/// at the time (`shift` then `a`), and a modifier pressed and released alone is a chord
/// of its own (a guest's menu key, say).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeyTracker {
    /// Modifiers down now, in the order pressed.
    held: Vec<&'static str>,
    /// The last modifier pressed, while no other key was.
    alone: Option<&'static str>,
}

impl KeyTracker {
    /// A key went down (`code` is `KeyboardEvent.code`): the chord to send, if any. `None`
    /// for a modifier (it is held, and goes with the next key) or a key QEMU has no name
    /// for.
    pub fn down(&mut self, code: &str, mods: Mods) -> Option<Vec<&'static str>> {
        if let Some(m) = keys::modifier(code) {
            if !self.held.contains(&m) {
                self.held.push(m);
            }
            self.alone = Some(m);
            return None;
        }
        self.alone = None;
        let key = keys::qcode(code)?;
        // the event's flags are the truth: a release missed while the page had no focus
        // is dropped, a modifier pressed before it got focus is added
        self.held.retain(|m| mods.holds(m));
        for (on, m) in [
            (mods.ctrl, "ctrl"),
            (mods.alt, "alt"),
            (mods.shift, "shift"),
            (mods.meta, "meta_l"),
        ] {
            if on && !self.held.iter().any(|h| Mods::holds(&flag_of(m), h)) {
                self.held.push(m);
            }
        }
        let mut chord = self.held.clone();
        chord.push(key);
        Some(chord)
    }

    /// A key came up: a modifier pressed and released alone is sent now.
    pub fn up(&mut self, code: &str) -> Option<Vec<&'static str>> {
        let m = keys::modifier(code)?;
        let alone = self.alone.take() == Some(m);
        self.held.retain(|h| *h != m);
        alone.then(|| {
            let mut chord = self.held.clone();
            chord.push(m);
            chord
        })
    }

    /// The view lost the focus: nothing is held any more.
    pub fn clear(&mut self) {
        self.held.clear();
        self.alone = None;
    }
}

/// The flags set by modifier `m` alone.
fn flag_of(m: &str) -> Mods {
    let mut mods = Mods::default();
    match m {
        "shift" | "shift_r" => mods.shift = true,
        "ctrl" | "ctrl_r" => mods.ctrl = true,
        "alt" | "alt_r" => mods.alt = true,
        _ => mods.meta = true,
    }
    mods
}

/// What a read of a picture brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// A new picture, with its `ETag`.
    New(Option<String>),
    /// The same picture.
    Same,
    /// None: no display, QEMU not answering, ...
    Failed,
}

/// When a picture is read next: every `fast` ms while it changes, doubling up to
/// [`SLOWEST_MS`] while it cannot be had, and (a thumbnail) while it does not change.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    fast: u32,
    /// An unchanged picture slows the reads down too.
    same_slows: bool,
    delay: u32,
    /// When the next read is due (ms on the page's clock).
    due: f64,
    /// The last picture's `ETag`, sent as `If-None-Match`.
    pub etag: Option<String>,
}

impl Schedule {
    fn new(fast: u32, same_slows: bool) -> Schedule {
        Schedule {
            fast,
            same_slows,
            delay: fast,
            due: 0.0,
            etag: None,
        }
    }

    /// A thumbnail's schedule.
    pub fn thumbnail() -> Schedule {
        Schedule::new(THUMB_MS, true)
    }

    /// The console's live view's schedule.
    pub fn live() -> Schedule {
        Schedule::new(LIVE_MS, false)
    }

    pub fn is_due(&self, now: f64) -> bool {
        now >= self.due
    }

    /// A read at `now` brought `read`.
    pub fn read(&mut self, now: f64, read: Read) {
        let slower = (self.delay.saturating_mul(2)).min(SLOWEST_MS);
        self.delay = match read {
            Read::New(etag) => {
                self.etag = etag;
                self.fast
            }
            Read::Same if !self.same_slows => self.fast,
            Read::Same | Read::Failed => slower,
        };
        self.due = now + f64::from(self.delay);
    }

    /// The wait before the next read.
    pub fn delay(&self) -> u32 {
        self.delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Mods = Mods {
        shift: false,
        ctrl: false,
        alt: false,
        meta: false,
    };

    #[test]
    fn keys_go_with_the_modifiers_held() {
        let mut k = KeyTracker::default();
        assert_eq!(k.down("KeyA", NONE), Some(vec!["a"]));
        let shift = Mods {
            shift: true,
            ..NONE
        };
        assert_eq!(k.down("ShiftLeft", shift), None);
        assert_eq!(k.down("KeyA", shift), Some(vec!["shift", "a"]));
        assert_eq!(k.up("ShiftLeft"), None, "shift was used");
        assert_eq!(k.down("KeyA", NONE), Some(vec!["a"]));
        let ctrl_alt = Mods {
            ctrl: true,
            alt: true,
            ..NONE
        };
        k.down("ControlRight", ctrl_alt);
        k.down("AltLeft", ctrl_alt);
        assert_eq!(
            k.down("Delete", ctrl_alt),
            Some(vec!["ctrl_r", "alt", "delete"])
        );
        assert_eq!(
            k.down("Escape", NONE),
            Some(vec!["esc"]),
            "released meanwhile"
        );
        assert_eq!(k.down("F13", NONE), None, "no QEMU name");
    }

    #[test]
    fn a_modifier_alone_is_sent_on_release() {
        let mut k = KeyTracker::default();
        let meta = Mods { meta: true, ..NONE };
        k.down("MetaLeft", meta);
        assert_eq!(k.up("MetaLeft"), Some(vec!["meta_l"]));
        assert_eq!(k.up("MetaLeft"), None);
        k.down("ShiftRight", NONE);
        k.clear();
        assert_eq!(k.up("ShiftRight"), None, "focus was lost meanwhile");
    }

    #[test]
    fn modifiers_pressed_before_focus_count() {
        let mut k = KeyTracker::default();
        let ctrl = Mods { ctrl: true, ..NONE };
        assert_eq!(k.down("KeyC", ctrl), Some(vec!["ctrl", "c"]));
        let shift = Mods {
            shift: true,
            ..NONE
        };
        k.down("ShiftRight", shift);
        assert_eq!(k.down("Digit1", shift), Some(vec!["shift_r", "1"]));
    }

    #[test]
    fn thumbnails_slow_down_while_unchanged() {
        let mut s = Schedule::thumbnail();
        assert!(s.is_due(0.0));
        s.read(0.0, Read::New(Some("\"a\"".into())));
        assert_eq!(s.delay(), THUMB_MS);
        assert!(!s.is_due(1000.0) && s.is_due(3000.0));
        s.read(3000.0, Read::Same);
        assert_eq!(s.delay(), 2 * THUMB_MS);
        for _ in 0..5 {
            s.read(0.0, Read::Same);
        }
        assert_eq!(s.delay(), SLOWEST_MS);
        assert_eq!(s.etag.as_deref(), Some("\"a\""), "kept for If-None-Match");
        s.read(0.0, Read::New(Some("\"b\"".into())));
        assert_eq!(s.delay(), THUMB_MS);
    }

    #[test]
    fn the_live_view_slows_down_only_while_it_fails() {
        let mut s = Schedule::live();
        s.read(0.0, Read::Same);
        assert_eq!(s.delay(), LIVE_MS);
        s.read(0.0, Read::Failed);
        s.read(0.0, Read::Failed);
        assert_eq!(s.delay(), 4 * LIVE_MS);
        for _ in 0..10 {
            s.read(0.0, Read::Failed);
        }
        assert_eq!(s.delay(), SLOWEST_MS);
        s.read(0.0, Read::New(None));
        assert_eq!(s.delay(), LIVE_MS);
    }
}
