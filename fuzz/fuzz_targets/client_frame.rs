//! Client frame checks and message outlines on arbitrary text: no panic; an accepted frame
//! is one QMP command object within the limits, holding no string QEMU reads otherwise,
//! and its re-serialization (what QEMU is sent) is accepted again as the same frame; a
//! salvaged id is a JSON value; `commands` never fails.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn qemu_reads_otherwise(c: char) -> bool {
    let cp = c as u32;
    cp == 0 || (0xFDD0..=0xFDEF).contains(&cp) || cp & 0xFFFE == 0xFFFE
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match qmp::parse_client_frame(text) {
        Ok(frame) => {
            let reparsed: serde_json::Value = serde_json::from_str(text).expect("accepted frames are JSON");
            assert!(reparsed.is_object());
            assert!(!frame.commands().is_empty());
            let upstream = frame.upstream_text();
            assert!(!upstream.contains('\n'), "one line upstream");
            assert!(!upstream.chars().any(qemu_reads_otherwise), "{upstream}");
            let again = qmp::parse_client_frame(&upstream).expect("the canonical text is accepted");
            assert_eq!(again.upstream_text(), upstream, "canonical twice is canonical once");
            assert_eq!(again.command(), frame.command());
            let (relabelled, id) = frame.relabel("qmpc-1");
            assert!(qmp::parse_client_frame(&relabelled).is_ok());
            if let Some(id) = id {
                let _ = id.value();
            }
        }
        Err(rejection) => {
            let reply: serde_json::Value =
                serde_json::from_str(&rejection.to_reply()).expect("rejections are JSON");
            assert!(reply["error"]["desc"].is_string());
        }
    }
    if let Some(id) = qmp::inbound::salvage_id(text) {
        let _ = id.value();
    }
    let _ = qmp::outline(text);
    let _ = qmp::Message::parse(text);
});
