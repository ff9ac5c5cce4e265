//! Framing: arbitrary bytes, cut at an arbitrary point, must frame exactly as the same
//! bytes in one piece, every message must be one JSON object, and nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qmp::Framer;

fn frame(chunks: &[&[u8]]) -> (Vec<String>, Option<qmp::FrameError>) {
    let mut framer = Framer::new(4096);
    let mut out = Vec::new();
    for chunk in chunks {
        framer.push(chunk);
        loop {
            match framer.next_message() {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else { return };
    let cut = usize::from(cut) * rest.len() / 256;
    let whole = frame(&[rest]);
    let split = frame(&[&rest[..cut], &rest[cut..]]);
    assert_eq!(whole, split, "framing depends on how the bytes were cut");
    for m in &whole.0 {
        // JSON by RFC 8259's grammar (a number past f64's range is JSON, though serde's
        // Value refuses it), and an object
        let raw: Box<serde_json::value::RawValue> =
            serde_json::from_str(m).expect("framed message is JSON");
        assert!(raw.get().starts_with('{'), "framed message is an object");
        assert!(m.len() <= 4096);
    }
});
