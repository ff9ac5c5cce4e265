//! Component tests: real Yew components rendered in headless Chromium
//! (wasm-bindgen-test; run by scripts/test).
#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use qmp_web::components::{Header, HeaderProps};
use qmp_web::state::Phase;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn mount_point() -> web_sys::Element {
    let document = web_sys::window().unwrap().document().unwrap();
    let div = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&div).unwrap();
    div
}

async fn settle() {
    yew::platform::time::sleep(Duration::from_millis(20)).await;
}

fn testid(root: &web_sys::Element, id: &str) -> Option<String> {
    root.query_selector(&format!("[data-testid={id}]"))
        .unwrap()
        .map(|e| e.text_content().unwrap_or_default())
}

#[wasm_bindgen_test]
async fn header_shows_phase_and_greeting() {
    let root = mount_point();
    let greeting = qmp::Greeting {
        version: qmp::Version { major: 7, minor: 2, micro: 22 },
        package: "Debian 1:7.2".into(),
        capabilities: vec!["oob".into()],
    };
    let props = HeaderProps {
        url: "ws://h/ws".into(),
        phase: Phase::Ready,
        greeting: Some(greeting),
    };
    yew::Renderer::<Header>::with_root_and_props(root.clone(), props).render();
    settle().await;
    assert_eq!(testid(&root, "connection-state").as_deref(), Some("ready"));
    assert_eq!(testid(&root, "greeting").as_deref(), Some("QEMU 7.2.22 (Debian 1:7.2)"));
    assert_eq!(testid(&root, "close-reason"), None);
}

#[wasm_bindgen_test]
async fn header_shows_the_close_reason() {
    let root = mount_point();
    let props = HeaderProps {
        url: "ws://h/ws".into(),
        phase: Phase::Closed { code: 1013, reason: "QMP monitor busy".into() },
        greeting: None,
    };
    yew::Renderer::<Header>::with_root_and_props(root.clone(), props).render();
    settle().await;
    assert_eq!(testid(&root, "connection-state").as_deref(), Some("closed"));
    assert_eq!(testid(&root, "close-reason").as_deref(), Some("QMP monitor busy (1013)"));
    assert_eq!(testid(&root, "greeting"), None);
}

#[wasm_bindgen_test]
async fn app_reports_a_failed_connection() {
    // The test page's server has no /ws: the app must end in "closed" with a reason,
    // not hang in "connecting".
    let root = mount_point();
    yew::Renderer::<qmp_web::App>::with_root(root.clone()).render();
    for _ in 0..250 {
        settle().await;
        if testid(&root, "connection-state").as_deref() == Some("closed") {
            break;
        }
    }
    assert_eq!(testid(&root, "connection-state").as_deref(), Some("closed"));
    assert!(testid(&root, "close-reason").is_some_and(|r| !r.is_empty()));
}
