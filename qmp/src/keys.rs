//! Keys for `send-key`: QEMU's key names (`QKeyCode`), the browser's physical key codes
//! (`KeyboardEvent.code`) mapped to them, and text mapped to key chords (a US layout), for
//! typing and pasting into a VM's screen.
//!
//! A chord is what one `send-key` presses: its keys go down in order and come up in
//! reverse, so `["shift", "a"]` types a capital A.

/// QEMU's `QKeyCode` values (QEMU 7.2's `query-qmp-schema`), every name `send-key` takes.
pub const QKEYCODES: &[&str] = &[
    "unmapped",
    "shift",
    "shift_r",
    "alt",
    "alt_r",
    "ctrl",
    "ctrl_r",
    "menu",
    "esc",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "0",
    "minus",
    "equal",
    "backspace",
    "tab",
    "q",
    "w",
    "e",
    "r",
    "t",
    "y",
    "u",
    "i",
    "o",
    "p",
    "bracket_left",
    "bracket_right",
    "ret",
    "a",
    "s",
    "d",
    "f",
    "g",
    "h",
    "j",
    "k",
    "l",
    "semicolon",
    "apostrophe",
    "grave_accent",
    "backslash",
    "z",
    "x",
    "c",
    "v",
    "b",
    "n",
    "m",
    "comma",
    "dot",
    "slash",
    "asterisk",
    "spc",
    "caps_lock",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "f6",
    "f7",
    "f8",
    "f9",
    "f10",
    "num_lock",
    "scroll_lock",
    "kp_divide",
    "kp_multiply",
    "kp_subtract",
    "kp_add",
    "kp_enter",
    "kp_decimal",
    "sysrq",
    "kp_0",
    "kp_1",
    "kp_2",
    "kp_3",
    "kp_4",
    "kp_5",
    "kp_6",
    "kp_7",
    "kp_8",
    "kp_9",
    "less",
    "f11",
    "f12",
    "print",
    "home",
    "pgup",
    "pgdn",
    "end",
    "left",
    "up",
    "down",
    "right",
    "insert",
    "delete",
    "stop",
    "again",
    "props",
    "undo",
    "front",
    "copy",
    "open",
    "paste",
    "find",
    "cut",
    "lf",
    "help",
    "meta_l",
    "meta_r",
    "compose",
    "pause",
    "ro",
    "hiragana",
    "henkan",
    "yen",
    "muhenkan",
    "katakanahiragana",
    "kp_comma",
    "kp_equals",
    "power",
    "sleep",
    "wake",
    "audionext",
    "audioprev",
    "audiostop",
    "audioplay",
    "audiomute",
    "volumeup",
    "volumedown",
    "mediaselect",
    "mail",
    "calculator",
    "computer",
    "ac_home",
    "ac_back",
    "ac_forward",
    "ac_refresh",
    "ac_bookmarks",
    "lang1",
    "lang2",
];

/// Most keys in one chord.
pub const MAX_CHORD: usize = 8;

/// Ctrl-Alt-Del, the chord a page's button sends.
pub const CTRL_ALT_DEL: &[&str] = &["ctrl", "alt", "delete"];

/// True when `name` is a `QKeyCode` (`unmapped` excluded: it types nothing).
pub fn is_qcode(name: &str) -> bool {
    name != "unmapped" && QKEYCODES.contains(&name)
}

/// The modifier keys' `KeyboardEvent.code` values and their `QKeyCode`s.
const MODIFIERS: &[(&str, &str)] = &[
    ("ShiftLeft", "shift"),
    ("ShiftRight", "shift_r"),
    ("ControlLeft", "ctrl"),
    ("ControlRight", "ctrl_r"),
    ("AltLeft", "alt"),
    ("AltRight", "alt_r"),
    ("MetaLeft", "meta_l"),
    ("MetaRight", "meta_r"),
];

/// Physical keys other than letters, digits, F-keys and the numpad's digits.
const NAMED: &[(&str, &str)] = &[
    ("Escape", "esc"),
    ("Minus", "minus"),
    ("Equal", "equal"),
    ("Backspace", "backspace"),
    ("Tab", "tab"),
    ("BracketLeft", "bracket_left"),
    ("BracketRight", "bracket_right"),
    ("Enter", "ret"),
    ("Semicolon", "semicolon"),
    ("Quote", "apostrophe"),
    ("Backquote", "grave_accent"),
    ("Backslash", "backslash"),
    ("Comma", "comma"),
    ("Period", "dot"),
    ("Slash", "slash"),
    ("Space", "spc"),
    ("CapsLock", "caps_lock"),
    ("NumLock", "num_lock"),
    ("ScrollLock", "scroll_lock"),
    ("NumpadDivide", "kp_divide"),
    ("NumpadMultiply", "kp_multiply"),
    ("NumpadSubtract", "kp_subtract"),
    ("NumpadAdd", "kp_add"),
    ("NumpadEnter", "kp_enter"),
    ("NumpadDecimal", "kp_decimal"),
    ("NumpadEqual", "kp_equals"),
    ("NumpadComma", "kp_comma"),
    ("IntlBackslash", "less"),
    ("IntlRo", "ro"),
    ("IntlYen", "yen"),
    ("PrintScreen", "print"),
    ("Pause", "pause"),
    ("ContextMenu", "menu"),
    ("Home", "home"),
    ("End", "end"),
    ("PageUp", "pgup"),
    ("PageDown", "pgdn"),
    ("ArrowLeft", "left"),
    ("ArrowUp", "up"),
    ("ArrowDown", "down"),
    ("ArrowRight", "right"),
    ("Insert", "insert"),
    ("Delete", "delete"),
    ("Convert", "henkan"),
    ("NonConvert", "muhenkan"),
    ("KanaMode", "katakanahiragana"),
    ("Lang1", "lang1"),
    ("Lang2", "lang2"),
    ("Power", "power"),
    ("Sleep", "sleep"),
    ("WakeUp", "wake"),
    ("AudioVolumeMute", "audiomute"),
    ("AudioVolumeUp", "volumeup"),
    ("AudioVolumeDown", "volumedown"),
    ("MediaTrackNext", "audionext"),
    ("MediaTrackPrevious", "audioprev"),
    ("MediaStop", "audiostop"),
    ("MediaPlayPause", "audioplay"),
    ("Help", "help"),
    ("Undo", "undo"),
    ("Copy", "copy"),
    ("Paste", "paste"),
    ("Cut", "cut"),
    ("Find", "find"),
    ("Again", "again"),
    ("Props", "props"),
    ("Open", "open"),
];

/// The `QKeyCode` a physical modifier key (`KeyboardEvent.code`) presses, if it is one.
pub fn modifier(code: &str) -> Option<&'static str> {
    MODIFIERS.iter().find(|(c, _)| *c == code).map(|(_, q)| *q)
}

/// The `QKeyCode` of a physical key, by its `KeyboardEvent.code` (`KeyA`, `Digit1`,
/// `Escape`, `ShiftLeft`, ...): the key's place on the keyboard, not what it types, so the
/// guest's own layout decides the character, as with a real keyboard.
pub fn qcode(code: &str) -> Option<&'static str> {
    if let Some(q) = modifier(code) {
        return Some(q);
    }
    let find = |name: &str| QKEYCODES.iter().copied().find(|q| *q == name);
    if let Some(letter) = code.strip_prefix("Key") {
        return (letter.len() == 1 && letter.as_bytes()[0].is_ascii_uppercase())
            .then(|| find(&letter.to_ascii_lowercase()))
            .flatten();
    }
    if let Some(digit) = code.strip_prefix("Digit") {
        return (digit.len() == 1 && digit.as_bytes()[0].is_ascii_digit())
            .then(|| find(digit))
            .flatten();
    }
    if let Some(digit) = code.strip_prefix("Numpad") {
        if digit.len() == 1 && digit.as_bytes()[0].is_ascii_digit() {
            return find(&format!("kp_{digit}"));
        }
    }
    if let Some(n) = code.strip_prefix('F').and_then(|n| n.parse::<u8>().ok()) {
        return (1..=12)
            .contains(&n)
            .then(|| find(&format!("f{n}")))
            .flatten();
    }
    NAMED.iter().find(|(c, _)| *c == code).map(|(_, q)| *q)
}

/// The chord that types `c` on a US keyboard layout: `a` is `["a"]`, `A` is
/// `["shift", "a"]`, `!` is `["shift", "1"]`, a newline is `["ret"]`. `None` for a
/// character that layout has no key for.
pub fn chord_for_char(c: char) -> Option<Vec<&'static str>> {
    const PLAIN: &[(char, &str)] = &[
        (' ', "spc"),
        ('\n', "ret"),
        ('\t', "tab"),
        ('-', "minus"),
        ('=', "equal"),
        ('[', "bracket_left"),
        (']', "bracket_right"),
        ('\\', "backslash"),
        (';', "semicolon"),
        ('\'', "apostrophe"),
        ('`', "grave_accent"),
        (',', "comma"),
        ('.', "dot"),
        ('/', "slash"),
    ];
    const SHIFTED: &[(char, &str)] = &[
        ('!', "1"),
        ('@', "2"),
        ('#', "3"),
        ('$', "4"),
        ('%', "5"),
        ('^', "6"),
        ('&', "7"),
        ('*', "8"),
        ('(', "9"),
        (')', "0"),
        ('_', "minus"),
        ('+', "equal"),
        ('{', "bracket_left"),
        ('}', "bracket_right"),
        ('|', "backslash"),
        (':', "semicolon"),
        ('"', "apostrophe"),
        ('~', "grave_accent"),
        ('<', "comma"),
        ('>', "dot"),
        ('?', "slash"),
    ];
    let key = |name: &str| QKEYCODES.iter().copied().find(|q| *q == name);
    if c.is_ascii_lowercase() || c.is_ascii_digit() {
        return key(c.encode_utf8(&mut [0; 4])).map(|k| vec![k]);
    }
    if c.is_ascii_uppercase() {
        let lower = c.to_ascii_lowercase();
        return key(lower.encode_utf8(&mut [0; 4])).map(|k| vec!["shift", k]);
    }
    if let Some((_, k)) = PLAIN.iter().find(|(p, _)| *p == c) {
        return Some(vec![*k]);
    }
    SHIFTED
        .iter()
        .find(|(p, _)| *p == c)
        .map(|(_, k)| vec!["shift", *k])
}

/// The chords that type `text` (a US layout); `\r` is skipped (so `\r\n` is one Enter),
/// and so is any character without a key, counted in the second value.
pub fn chords_for_text(text: &str) -> (Vec<Vec<&'static str>>, usize) {
    let mut skipped = 0;
    let chords = text
        .chars()
        .filter(|c| *c != '\r')
        .filter_map(|c| {
            let chord = chord_for_char(c);
            skipped += usize::from(chord.is_none());
            chord
        })
        .collect();
    (chords, skipped)
}

/// Why a chord cannot be sent.
pub fn check_chord(chord: &[impl AsRef<str>]) -> Result<(), String> {
    if chord.is_empty() {
        return Err("an empty chord".into());
    }
    if chord.len() > MAX_CHORD {
        return Err(format!(
            "a chord of {} keys (at most {MAX_CHORD})",
            chord.len()
        ));
    }
    match chord.iter().find(|k| !is_qcode(k.as_ref())) {
        Some(bad) => Err(format!(
            "{:?} is not a QEMU key name (QKeyCode)",
            bad.as_ref()
        )),
        None => Ok(()),
    }
}

/// `send-key`'s arguments for one chord.
pub fn send_key_arguments(chord: &[impl AsRef<str>]) -> serde_json::Value {
    let keys: Vec<serde_json::Value> = chord
        .iter()
        .map(|k| serde_json::json!({"type": "qcode", "data": k.as_ref()}))
        .collect();
    serde_json::json!({ "keys": keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_keys_map_to_qemu_names() {
        assert_eq!(qcode("KeyA"), Some("a"));
        assert_eq!(qcode("KeyZ"), Some("z"));
        assert_eq!(qcode("Digit0"), Some("0"));
        assert_eq!(qcode("Numpad7"), Some("kp_7"));
        assert_eq!(qcode("F1"), Some("f1"));
        assert_eq!(qcode("F12"), Some("f12"));
        assert_eq!(qcode("F13"), None, "QEMU 7.2 has no f13");
        assert_eq!(qcode("Escape"), Some("esc"));
        assert_eq!(qcode("Enter"), Some("ret"));
        assert_eq!(qcode("ShiftRight"), Some("shift_r"));
        assert_eq!(qcode("MetaLeft"), Some("meta_l"));
        assert_eq!(qcode("KeyAB"), None);
        assert_eq!(qcode("Keya"), None);
        assert_eq!(qcode(""), None);
        assert_eq!(modifier("ControlLeft"), Some("ctrl"));
        assert_eq!(modifier("KeyA"), None);
    }

    #[test]
    fn every_mapped_name_is_a_qemu_key() {
        for (_, q) in MODIFIERS.iter().chain(NAMED) {
            assert!(is_qcode(q), "{q}");
        }
        for c in (' '..='~').chain(['\n', '\t']) {
            let chord = chord_for_char(c).unwrap_or_else(|| panic!("no chord for {c:?}"));
            assert!(check_chord(&chord).is_ok(), "{c:?}");
        }
    }

    #[test]
    fn text_types_on_a_us_layout() {
        assert_eq!(chord_for_char('a'), Some(vec!["a"]));
        assert_eq!(chord_for_char('Q'), Some(vec!["shift", "q"]));
        assert_eq!(chord_for_char('?'), Some(vec!["shift", "slash"]));
        assert_eq!(chord_for_char('é'), None);
        let (chords, skipped) = chords_for_text("Hi!\r\né");
        assert_eq!(
            chords,
            vec![
                vec!["shift", "h"],
                vec!["i"],
                vec!["shift", "1"],
                vec!["ret"]
            ]
        );
        assert_eq!(skipped, 1);
    }

    #[test]
    fn chords_are_checked() {
        assert!(check_chord(CTRL_ALT_DEL).is_ok());
        assert!(check_chord(&[] as &[&str]).is_err());
        assert!(check_chord(&["ctrl", "nope"]).unwrap_err().contains("nope"));
        assert!(check_chord(&["unmapped"]).is_err());
        assert!(check_chord(&["a"; 9]).is_err());
        assert_eq!(
            send_key_arguments(&["shift", "a"]),
            serde_json::json!({"keys": [{"type": "qcode", "data": "shift"}, {"type": "qcode", "data": "a"}]})
        );
    }
}
