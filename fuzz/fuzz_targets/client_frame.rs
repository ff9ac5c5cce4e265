//! Client frame checks and message outlines on arbitrary text: no panic; an accepted frame
//! is one JSON object; a salvaged id is a JSON value; `commands` never fails.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match qmp::parse_client_frame(text) {
        Ok(frame) => {
            let reparsed: serde_json::Value = serde_json::from_str(text).expect("accepted frames are JSON");
            assert!(reparsed.is_object());
            let _ = frame.commands();
            let _ = frame.command();
        }
        Err(rejection) => {
            let reply: serde_json::Value =
                serde_json::from_str(&rejection.to_reply()).expect("rejections are JSON");
            assert!(reply["error"]["desc"].is_string());
        }
    }
    let _ = qmp::inbound::salvage_id(text);
    let _ = qmp::outline(text);
    let _ = qmp::Message::parse(text);
});
