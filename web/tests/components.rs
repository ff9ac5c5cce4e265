//! Component tests: real Yew components rendered in headless Chromium
//! (wasm-bindgen-test; run by scripts/test).
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use qmp::vm_list::{ListMode, Problem, VmRow, VmState};
use qmp_web::components::vm_list::{VmList, VmListProps};
use qmp_web::components::{
    local_time, CommandForm, CommandFormProps, EntryActions, EventPanel, EventPanelProps, FormMsg,
    Header, HeaderProps, JsonTree, JsonTreeProps, QuickAction, QuickActions, QuickActionsProps,
    RcByPtr, ScreenView, ScreenViewProps, Transcript, TranscriptProps, PAGE,
};
use qmp_web::editor::{Form, Mode};
use qmp_web::endpoint::PageUrl;
use qmp_web::events::{EventLog, SHOWN};
use qmp_web::fleet::Listing;
use qmp_web::screen::Shown;
use qmp_web::state::{Console, Input, Phase, Request};
use serde_json::{json, Value};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use yew::{props, AttrValue, Callback};

wasm_bindgen_test_configure!(run_in_browser);

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}"#;

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

fn all(root: &web_sys::Element, selector: &str) -> Vec<web_sys::Element> {
    let list = root.query_selector_all(selector).unwrap();
    (0..list.length())
        .filter_map(|i| list.item(i)?.dyn_into::<web_sys::Element>().ok())
        .collect()
}

/// The `data-testid` of the element with the keyboard focus.
fn focused() -> Option<String> {
    web_sys::window()
        .unwrap()
        .document()
        .unwrap()
        .active_element()
        .and_then(|e| e.get_attribute("data-testid"))
}

/// The text of each element matching `selector`.
fn texts(root: &web_sys::Element, selector: &str) -> Vec<String> {
    all(root, selector)
        .iter()
        .map(|e| e.text_content().unwrap_or_default())
        .collect()
}

/// Mounts a command form showing `form` (checked against the real schema).
async fn mount_form(form: Form, on: Callback<FormMsg>) -> web_sys::Element {
    let root = mount_point();
    yew::Renderer::<CommandForm>::with_root_and_props(root.clone(), form_props(form, on)).render();
    settle().await;
    root
}

fn click(root: &web_sys::Element, selector: &str) {
    root.query_selector(selector)
        .unwrap()
        .unwrap_or_else(|| panic!("no {selector}"))
        .dyn_into::<web_sys::HtmlElement>()
        .unwrap()
        .click();
}

/// Presses `key` (with Ctrl when `ctrl`) on `el`, as a bubbling keydown event.
fn keydown(el: &web_sys::Element, key: &str, ctrl: bool) {
    let init = web_sys::KeyboardEventInit::new();
    init.set_key(key);
    init.set_ctrl_key(ctrl);
    init.set_bubbles(true);
    let ev = web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).unwrap();
    el.dispatch_event(&ev).unwrap();
}

/// A callback that records what it is given.
fn recorder<T: 'static>() -> (Callback<T>, Rc<RefCell<Vec<T>>>) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    (Callback::from(move |v| s.borrow_mut().push(v)), seen)
}

fn greeting() -> qmp::Greeting {
    qmp::Greeting {
        version: qmp::Version {
            major: 7,
            minor: 2,
            micro: 22,
        },
        package: "Debian 1:7.2".into(),
        capabilities: vec!["oob".into()],
    }
}

#[wasm_bindgen_test]
async fn header_shows_phase_greeting_and_status() {
    let root = mount_point();
    let props = props!(HeaderProps {
        url: "ws://h/ws?token=s3cret",
        phase: Phase::Ready,
        greeting: Some(greeting()),
        vm_status: Some(AttrValue::from("paused")),
        vm_name: Some(AttrValue::from("web1")),
    });
    yew::Renderer::<Header>::with_root_and_props(root.clone(), props).render();
    settle().await;
    assert_eq!(testid(&root, "connection-state").as_deref(), Some("ready"));
    assert_eq!(
        testid(&root, "greeting").as_deref(),
        Some("QEMU 7.2.22 (Debian 1:7.2)")
    );
    assert_eq!(
        testid(&root, "capabilities").as_deref(),
        Some("capabilities: oob")
    );
    assert_eq!(testid(&root, "vm-status").as_deref(), Some("paused"));
    assert_eq!(testid(&root, "vm-name").as_deref(), Some("web1"));
    assert_eq!(testid(&root, "connect").as_deref(), Some("Disconnect"));
    let url = root
        .query_selector(".url")
        .unwrap()
        .unwrap()
        .text_content()
        .unwrap();
    assert_eq!(url, "ws://h/ws?token=…", "the token is not on the screen");
    assert!(
        testid(&root, "oob").is_some(),
        "QEMU offers oob: the choice is shown"
    );
    assert_eq!(testid(&root, "close-reason"), None);
}

#[wasm_bindgen_test]
async fn header_shows_the_close_reason_and_connects() {
    let root = mount_point();
    let (on_connect, seen) = recorder::<bool>();
    let props = props!(HeaderProps {
        url: "ws://h/ws",
        phase: Phase::Closed {
            code: 1013,
            reason: "QMP monitor busy".into()
        },
        greeting: None,
        retry_in: Some(4),
        on_connect,
    });
    yew::Renderer::<Header>::with_root_and_props(root.clone(), props).render();
    settle().await;
    assert_eq!(testid(&root, "connection-state").as_deref(), Some("closed"));
    assert_eq!(
        testid(&root, "close-reason").as_deref(),
        Some("QMP monitor busy (1013)")
    );
    assert_eq!(testid(&root, "retry").as_deref(), Some("retrying in 4 s"));
    assert_eq!(testid(&root, "greeting"), None);
    assert_eq!(testid(&root, "vm-status"), None);
    click(&root, "[data-testid=connect]");
    assert_eq!(*seen.borrow(), [true]);
}

/// A console past the handshake, with requests answered out of order.
fn console_with_replies() -> Console {
    let mut c = Console::new(String::new());
    c.handle(Input::Opened);
    c.handle(Input::Received(GREETING.into(), 0.0));
    let caps = format!(
        r#"{{"return": {{}}, "id": "{}"}}"#,
        qmp_web::state::CAPABILITIES_ID
    );
    c.handle(Input::Received(caps, 0.0));
    c.send(Request::command("query-status"), 0.0).unwrap();
    c.send(
        Request::Command {
            name: "device_del".into(),
            args: Some(json!({"id": "x"})),
        },
        0.0,
    )
    .unwrap();
    c.send(Request::command("stop"), 0.0).unwrap();
    let err =
        r#"{"error": {"class": "DeviceNotFound", "desc": "Device 'x' not found"}, "id": "c2"}"#;
    c.handle(Input::Received(err.into(), 1.0));
    let ok = r#"{"return": {"status": "paused", "running": false}, "id": "c1"}"#;
    c.handle(Input::Received(ok.into(), 2.0));
    c
}

#[wasm_bindgen_test]
async fn transcript_pairs_requests_with_replies() {
    let root = mount_point();
    let c = console_with_replies();
    let (on_rerun, reruns) = recorder::<Request>();
    let props = TranscriptProps {
        entries: c
            .transcript()
            .iter()
            .cloned()
            .map(RcByPtr)
            .collect::<Vec<_>>(),
        actions: EntryActions {
            rerun: on_rerun,
            ..EntryActions::default()
        },
    };
    yew::Renderer::<Transcript>::with_root_and_props(root.clone(), props).render();
    settle().await;
    let entries = all(&root, "[data-testid=response]");
    let attrs: Vec<(String, Option<String>)> = entries
        .iter()
        .map(|e| {
            (
                e.get_attribute("data-id").unwrap(),
                e.get_attribute("data-ok"),
            )
        })
        .collect();
    assert_eq!(
        attrs,
        [
            ("c3".to_owned(), None),
            ("c2".to_owned(), Some("false".to_owned())),
            ("c1".to_owned(), Some("true".to_owned())),
        ],
        "newest first; ok only once answered"
    );
    assert_eq!(
        testid(&root, "error").as_deref(),
        Some("DeviceNotFound: Device 'x' not found")
    );
    assert!(entries[2].text_content().unwrap().contains("\"paused\""));
    let status = |e: &web_sys::Element| {
        e.query_selector(".ok")
            .unwrap()
            .map(|s| s.text_content().unwrap())
    };
    assert_eq!(status(&entries[2]).as_deref(), Some("ok"));
    // stop's answer, {}: ok, and nothing more to say
    let mut c = console_with_replies();
    c.handle(Input::Received(r#"{"return": {}, "id": "c3"}"#.into(), 3.0));
    let root2 = mount_point();
    let entries2 = c
        .transcript()
        .iter()
        .cloned()
        .map(RcByPtr)
        .collect::<Vec<_>>();
    yew::Renderer::<Transcript>::with_root_and_props(
        root2.clone(),
        TranscriptProps {
            entries: entries2,
            actions: EntryActions::default(),
        },
    )
    .render();
    settle().await;
    let newest = all(&root2, "[data-testid=response]").remove(0);
    assert_eq!(status(&newest).as_deref(), Some("ok, empty"));
    let args = entries[1].query_selector(".args-preview").unwrap().unwrap();
    assert_eq!(
        args.text_content().unwrap(),
        "{id: \"x\"}",
        "the request's arguments beside it"
    );
    click(&root, "[data-id=c1] [data-testid=rerun]");
    assert_eq!(*reruns.borrow(), [Request::command("query-status")]);
}

#[wasm_bindgen_test]
async fn a_large_reply_renders_a_page_at_a_time() {
    let root = mount_point();
    let big: Value = Value::Array(
        (0..1000)
            .map(|i| json!({"name": format!("cmd-{i}"), "n": i}))
            .collect(),
    );
    let props = JsonTreeProps {
        value: RcByPtr(Rc::new(big)),
    };
    yew::Renderer::<JsonTree>::with_root_and_props(root.clone(), props).render();
    settle().await;
    // the root and one closed line per child of the first page
    assert_eq!(all(&root, ".node").len(), 1 + PAGE);
    click(&root, ".more");
    settle().await;
    assert_eq!(all(&root, ".node").len(), 1 + 2 * PAGE);
    click(&root, ".children .toggle");
    settle().await;
    assert_eq!(
        all(&root, ".node").len(),
        1 + 2 * PAGE + 2,
        "an opened child shows its members"
    );
}

#[wasm_bindgen_test]
async fn the_event_panel_is_capped_but_counts_everything() {
    let root = mount_point();
    let mut log = EventLog::default();
    for n in 0..2000u64 {
        let name = if n % 4 == 0 { "STOP" } else { "RESUME" };
        let text = format!(
            r#"{{"event": "{name}", "data": {{"n": {n}}}, "timestamp": {{"seconds": 1700000000, "microseconds": 0}}}}"#
        );
        let Ok(qmp::Message::Event(e)) = qmp::Message::parse(&text) else {
            panic!()
        };
        log.push(e, &text);
    }
    let (on_filter, filters) = recorder::<String>();
    let props = props!(EventPanelProps {
        shown: log.shown("").into_iter().map(RcByPtr).collect::<Vec<_>>(),
        counts: log
            .counts()
            .map(|(n, k)| (AttrValue::from(n.to_owned()), k))
            .collect::<Vec<_>>(),
        total: log.total(),
        filter: "",
        on_filter,
    });
    yew::Renderer::<EventPanel>::with_root_and_props(root.clone(), props).render();
    settle().await;
    let rows = all(&root, "[data-testid=event]");
    assert_eq!(rows.len(), SHOWN);
    assert_eq!(rows[0].get_attribute("data-name").as_deref(), Some("STOP"));
    assert!(rows
        .last()
        .unwrap()
        .text_content()
        .unwrap()
        .contains("\"n\":1999"));
    let counts = texts(&root, "[data-testid=event-count]");
    assert_eq!(counts, ["RESUME1500", "STOP500"]);
    // a click shows an event's data in full
    let last = rows
        .last()
        .unwrap()
        .clone()
        .dyn_into::<web_sys::HtmlElement>()
        .unwrap();
    last.click();
    settle().await;
    let pre = last
        .query_selector("pre.data")
        .unwrap()
        .expect("the data, pretty");
    assert_eq!(pre.text_content().unwrap(), "{\n  \"n\": 1999\n}");
    click(&root, "[data-testid=event-count][data-name=STOP]");
    assert_eq!(*filters.borrow(), ["STOP"]);
    assert_eq!(testid(&root, "events-pause").as_deref(), Some("❚❚ scroll"));
    click(&root, "[data-testid=events-pause]");
    settle().await;
    assert_eq!(
        testid(&root, "events-pause").as_deref(),
        Some("▶ scroll"),
        "auto-scroll paused"
    );
}

fn form_props(form: Form, on: Callback<FormMsg>) -> CommandFormProps {
    let schema =
        qmp::Schema::parse(include_str!("../../qmp/tests/data/qemu-7.2-schema.json")).unwrap();
    let check = form.check(Some(&schema));
    let args_type = schema
        .argument_type(form.command_name())
        .ok()
        .map(|t| RcByPtr(Rc::new(t)));
    let completions = form
        .completions(Some(&schema), 8)
        .into_iter()
        .map(AttrValue::from)
        .collect::<Vec<_>>();
    props!(CommandFormProps {
        form,
        check,
        completions,
        args_type,
        ready: true,
        on
    })
}

#[wasm_bindgen_test]
async fn the_form_shows_syntax_errors_and_schema_problems() {
    let root = mount_point();
    let (on, msgs) = recorder::<FormMsg>();
    let form = Form {
        name: "device_del".into(),
        args: "{\"id\" 1}".into(),
        ..Form::default()
    };
    yew::Renderer::<CommandForm>::with_root_and_props(root.clone(), form_props(form, on.clone()))
        .render();
    settle().await;
    assert_eq!(
        testid(&root, "syntax-error").as_deref(),
        Some("line 1, column 7: expected `:`")
    );
    assert_eq!(
        testid(&root, "send-anyway"),
        None,
        "a syntax error can not be sent anyway"
    );
    let args = root
        .query_selector("[data-testid=args-view] [data-name=id]")
        .unwrap()
        .unwrap();
    assert_eq!(args.text_content().unwrap(), "idstrrequired");

    let form = Form {
        name: "device_del".into(),
        args: "{\"idd\": \"x\"}".into(),
        ..Form::default()
    };
    let root = mount_form(form, on).await;
    let problems = texts(&root, "[data-testid=problems] li");
    assert_eq!(
        problems,
        ["$.id: required member missing", "$.idd: unknown member"]
    );
    click(&root, "[data-testid=send-anyway]");
    click(&root, "[data-testid=send]");
    // Ctrl+Enter in the arguments sends too
    let area = root
        .query_selector("[data-testid=command-args]")
        .unwrap()
        .unwrap();
    keydown(&area, "Enter", true);
    assert_eq!(
        *msgs.borrow(),
        [
            FormMsg::Send(true),
            FormMsg::Send(false),
            FormMsg::Send(false)
        ]
    );
}

#[wasm_bindgen_test]
async fn a_refused_placeholder_gets_the_caret() {
    let root = mount_point();
    let schema =
        qmp::Schema::parse(include_str!("../../qmp/tests/data/qemu-7.2-schema.json")).unwrap();
    let mut form = Form::default();
    form.update(FormMsg::Choose("device_del".into()), Some(&schema))
        .unwrap();
    assert!(form.update(FormMsg::Send(false), Some(&schema)).is_err());
    yew::Renderer::<CommandForm>::with_root_and_props(
        root.clone(),
        form_props(form.clone(), Callback::noop()),
    )
    .render();
    settle().await;
    let problems = texts(&root, "[data-testid=problems] li");
    assert_eq!(problems, ["$.id: empty placeholder, to fill in"]);
    assert!(testid(&root, "send-anyway").is_some());
    let area: web_sys::HtmlTextAreaElement = root
        .query_selector("[data-testid=command-args]")
        .unwrap()
        .unwrap()
        .dyn_into()
        .unwrap();
    let focused = focused();
    assert_eq!(focused.as_deref(), Some("command-args"));
    let caret = form.args.find("\"\"").unwrap() as u32 + 1;
    assert_eq!(area.selection_start().unwrap(), Some(caret));
    assert_eq!(area.selection_end().unwrap(), Some(caret));
}

#[wasm_bindgen_test]
async fn the_form_completes_command_names() {
    let (on, msgs) = recorder::<FormMsg>();
    let form = Form {
        name: "query-st".into(),
        ..Form::default()
    };
    let root = mount_form(form, on).await;
    let chips = texts(&root, ".completion");
    assert_eq!(
        chips,
        ["query-stats", "query-stats-schemas", "query-status"]
    );
    click(&root, ".completion:nth-child(3)");
    assert_eq!(*msgs.borrow(), [FormMsg::Choose("query-status".into())]);
    // HMP mode has its own line
    let root = mount_point();
    let form = Form {
        mode: Mode::Hmp,
        hmp: "info status".into(),
        ..Form::default()
    };
    yew::Renderer::<CommandForm>::with_root_and_props(
        root.clone(),
        form_props(form, Callback::noop()),
    )
    .render();
    settle().await;
    assert!(root
        .query_selector("[data-testid=hmp-line]")
        .unwrap()
        .is_some());
    assert!(root
        .query_selector("[data-testid=command-args]")
        .unwrap()
        .is_none());
}

#[wasm_bindgen_test]
async fn the_shell_line_completes_and_sends_on_enter() {
    let (on, msgs) = recorder::<FormMsg>();
    let form = Form {
        mode: Mode::Shell,
        shell: "device_add driver=e1000 ".into(),
        ..Form::default()
    };
    let root = mount_form(form, on).await;
    let chips = texts(&root, ".completion");
    assert_eq!(chips, ["bus=", "id="]);
    // the command's arguments are listed as in JSON mode
    assert!(root
        .query_selector("[data-testid=args-view] [data-name=driver]")
        .unwrap()
        .is_some());
    let line = root
        .query_selector("[data-testid=shell-line]")
        .unwrap()
        .expect("the line");
    keydown(&line, "Tab", false);
    keydown(&line, "Enter", false);
    keydown(&line, "ArrowUp", false);
    assert_eq!(
        *msgs.borrow(),
        [
            FormMsg::Choose("bus=".into()),
            FormMsg::Enter,
            FormMsg::Recall(true)
        ]
    );
    assert!(testid(&root, "mode-shell").is_some());
    assert_eq!(testid(&root, "format"), None, "JSON's tools are JSON's");
}

#[wasm_bindgen_test]
async fn destructive_actions_ask_in_the_page() {
    let root = mount_point();
    let (on_confirm, answers) = recorder::<bool>();
    let (on_action, actions) = recorder::<QuickAction>();
    let props = props!(QuickActionsProps {
        enabled: true,
        confirming: Some(QuickAction::Quit),
        on_action,
        on_confirm,
    });
    yew::Renderer::<QuickActions>::with_root_and_props(root.clone(), props).render();
    settle().await;
    assert!(testid(&root, "confirm").unwrap().starts_with("Quit QEMU?"));
    click(&root, "[data-testid=action-stop]");
    click(&root, "[data-testid=confirm-yes]");
    click(&root, "[data-testid=confirm-no]");
    let focused = web_sys::window()
        .unwrap()
        .document()
        .unwrap()
        .active_element()
        .unwrap();
    assert_eq!(
        focused.get_attribute("data-testid").as_deref(),
        Some("confirm-no"),
        "focus on the safe answer"
    );
    let dialog = root
        .query_selector("[data-testid=confirm]")
        .unwrap()
        .unwrap();
    for key in ["Tab", "a", "Escape"] {
        keydown(&dialog, key, false);
    }
    assert_eq!(*actions.borrow(), [QuickAction::Pause]);
    assert_eq!(
        *answers.borrow(),
        [true, false, false],
        "only Escape answers, with no"
    );
    assert!(QuickAction::Quit.destructive() && !QuickAction::Resume.destructive());
}

#[wasm_bindgen_test]
async fn pause_and_resume_follow_the_run_state() {
    let disabled = |root: &web_sys::Element| -> Vec<String> {
        all(root, ".actions button:disabled")
            .iter()
            .filter_map(|b| b.get_attribute("data-testid"))
            .collect()
    };
    for (status, off) in [
        (Some("running"), vec!["action-cont"]),
        (Some("paused"), vec!["action-stop"]),
        (Some("prelaunch"), vec!["action-stop"]),
        (None, vec![]),
    ] {
        let root = mount_point();
        let props = props!(QuickActionsProps {
            enabled: true,
            vm_status: status.map(AttrValue::from),
        });
        yew::Renderer::<QuickActions>::with_root_and_props(root.clone(), props).render();
        settle().await;
        assert_eq!(disabled(&root), off, "{status:?}");
    }
}

fn vm(name: &str, state: VmState, run_state: Option<&str>) -> VmRow {
    VmRow {
        managed_by: None,
        name: name.into(),
        target: format!("unix:/run/{name}.sock"),
        state,
        version: Some("7.2.22".into()),
        package: None,
        run_state: run_state.map(str::to_owned),
        clients: 1,
        last_error: (state != VmState::Up).then(|| "cannot reach QMP".to_owned()),
    }
}

#[wasm_bindgen_test]
async fn the_vm_list_shows_its_props_and_asks_before_resetting() {
    let root = mount_point();
    let (on_action, asked) = recorder::<(String, QuickAction)>();
    let page = PageUrl {
        protocol: "http:".into(),
        host: "h:1".into(),
        path: "/qmp/".into(),
        search: "?token=t".into(),
    };
    let props = props!(VmListProps {
        listing: Listing {
            mode: ListMode::Fleet,
            vms: vec![
                vm("web 1", VmState::Up, Some("running")),
                vm("db", VmState::Gone, None)
            ],
            problems: vec![Problem {
                name: "notes.txt".into(),
                reason: "not a socket".into()
            }],
        },
        error: Some(AttrValue::from("api/vms: HTTP 500")),
        page: Rc::new(page),
        results: [("db".to_owned(), Err("QMP monitor busy".to_owned()))]
            .into_iter()
            .collect::<HashMap<_, _>>(),
        on_action,
    });
    yew::Renderer::<VmList>::with_root_and_props(root.clone(), props).render();
    settle().await;
    let row = |name: &str, id: &str| {
        root.query_selector(&format!(
            "[data-testid=vm-row][data-name=\"{name}\"] [data-testid={id}]"
        ))
        .unwrap()
    };
    let text = |name: &str, id: &str| row(name, id).and_then(|e| e.text_content());
    assert_eq!(all(&root, "[data-testid=vm-row]").len(), 2);
    assert_eq!(text("web 1", "vm-run-state").as_deref(), Some("running"));
    assert_eq!(text("db", "vm-run-state").as_deref(), Some("–"));
    assert_eq!(text("db", "vm-state").as_deref(), Some("gone"));
    assert_eq!(
        row("web 1", "vm-open")
            .unwrap()
            .get_attribute("href")
            .as_deref(),
        Some("/qmp/vm/web%201?token=t")
    );
    assert_eq!(
        text("db", "vm-action-result").as_deref(),
        Some("QMP monitor busy")
    );
    assert_eq!(text("web 1", "vm-action-result"), None);
    assert_eq!(
        testid(&root, "vm-list-error").as_deref(),
        Some("api/vms: HTTP 500")
    );
    assert!(testid(&root, "vm-problem").is_some_and(|p| p.contains("not a socket")));
    let disabled = |name: &str| {
        all(
            &root,
            &format!("[data-testid=vm-row][data-name=\"{name}\"] [data-testid=vm-action]"),
        )
        .iter()
        .all(|b| b.has_attribute("disabled"))
    };
    assert!(disabled("db") && !disabled("web 1"), "only a VM that is up");
    click(
        &root,
        "[data-name=\"web 1\"] [data-testid=vm-action][data-action=pause]",
    );
    click(
        &root,
        "[data-name=\"web 1\"] [data-testid=vm-action][data-action=reset]",
    );
    settle().await;
    assert_eq!(
        asked.borrow().len(),
        1,
        "reset waits for the row's confirmation"
    );
    click(&root, "[data-name=\"web 1\"] [data-testid=vm-confirm]");
    settle().await;
    assert!(row("web 1", "vm-confirm").is_none(), "the question goes");
    assert_eq!(
        *asked.borrow(),
        [
            ("web 1".to_owned(), QuickAction::Pause),
            ("web 1".to_owned(), QuickAction::Reset)
        ]
    );
}

#[wasm_bindgen_test]
async fn the_vm_list_shows_each_vm_s_screen() {
    let root = mount_point();
    let picture = Shown::default().picture(gloo_file::ObjectUrl::from(gloo_file::Blob::new(
        "not really a PNG",
    )));
    let headless = Shown::default().failed("this VM has no display (QEMU: no console)".into());
    let props = props!(VmListProps {
        listing: Listing {
            mode: ListMode::Fleet,
            vms: vec![
                vm("web", VmState::Up, Some("running")),
                vm("db", VmState::Up, None)
            ],
            problems: vec![],
        },
        page: Rc::new(PageUrl {
            search: "?token=t".into(),
            ..PageUrl::default()
        }),
        thumbs: [("web".to_owned(), picture), ("db".to_owned(), headless)]
            .into_iter()
            .collect::<HashMap<_, _>>(),
    });
    yew::Renderer::<VmList>::with_root_and_props(root.clone(), props).render();
    settle().await;
    let thumb = |name: &str| {
        root.query_selector(&format!(
            "[data-testid=vm-row][data-name={name}] [data-testid=screen-thumb]"
        ))
        .unwrap()
        .unwrap()
    };
    let img = thumb("web").query_selector("img").unwrap().unwrap();
    assert!(img.get_attribute("src").unwrap().starts_with("blob:"));
    assert_eq!(
        thumb("web").get_attribute("href").as_deref(),
        Some("/vm/web?token=t"),
        "the thumbnail opens the console"
    );
    assert!(thumb("db").query_selector("img").unwrap().is_none());
    assert_eq!(thumb("db").text_content().as_deref(), Some("no display"));
    assert!(thumb("db").get_attribute("title").unwrap().contains("QEMU"));
}

#[wasm_bindgen_test]
async fn the_screen_view_reports_keys_paste_and_ctrl_alt_del() {
    let root = mount_point();
    let (on_keydown, keys) = recorder::<web_sys::KeyboardEvent>();
    let (on_ctrl_alt_del, cad) = recorder::<()>();
    let (on_click, clicks) = recorder::<(f64, f64, &'static str)>();
    let props = props!(ScreenViewProps {
        src: Some(AttrValue::from("data:image/png;base64,")),
        frames: 3u64,
        note: Some(AttrValue::from("keys not sent: HTTP 403: refused")),
        on_keydown,
        on_ctrl_alt_del,
        on_click,
    });
    yew::Renderer::<ScreenView>::with_root_and_props(root.clone(), props).render();
    settle().await;
    let screen = root
        .query_selector("[data-testid=screen]")
        .unwrap()
        .unwrap();
    assert_eq!(
        screen.get_attribute("tabindex").as_deref(),
        Some("0"),
        "focusable"
    );
    assert_eq!(screen.get_attribute("data-frames").as_deref(), Some("3"));
    assert!(screen.query_selector("img").unwrap().is_some());
    assert!(testid(&root, "screen-note").is_some_and(|n| n.contains("403")));
    let init = web_sys::KeyboardEventInit::new();
    init.set_code("Escape");
    init.set_key("Escape");
    init.set_bubbles(true);
    let ev = web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).unwrap();
    screen.dispatch_event(&ev).unwrap();
    assert_eq!(keys.borrow().len(), 1);
    assert_eq!(keys.borrow()[0].code(), "Escape");
    click(&root, "[data-testid=send-ctrl-alt-del]");
    assert_eq!(cad.borrow().len(), 1);
    // a right click at the picture's top left corner
    let img = screen.query_selector("img").unwrap().unwrap();
    img.set_attribute("style", "width: 200px; height: 100px")
        .unwrap();
    let rect = img.get_bounding_client_rect();
    let init = web_sys::MouseEventInit::new();
    init.set_button(2);
    init.set_bubbles(true);
    init.set_client_x(rect.left() as i32);
    init.set_client_y(rect.top() as i32);
    let ev = web_sys::MouseEvent::new_with_mouse_event_init_dict("mousedown", &init).unwrap();
    img.dispatch_event(&ev).unwrap();
    let seen = clicks.borrow().clone();
    assert_eq!(seen.len(), 1);
    let (x, y, button) = seen[0];
    assert!(x < 0.01 && y < 0.02 && button == "right", "{seen:?}");
}

#[wasm_bindgen_test]
async fn app_reports_a_failed_connection() {
    // The test page's server has no /ws: the app must end in "closed" with a reason,
    // not hang in "connecting".
    let root = mount_point();
    let url = qmp_web::endpoint::PageUrl::from_window().websocket_url();
    let props = qmp_web::AppProps {
        url: url.into(),
        screen: None,
        vm: Some("vm7".into()),
    };
    yew::Renderer::<qmp_web::App>::with_root_and_props(root.clone(), props).render();
    for _ in 0..250 {
        settle().await;
        if testid(&root, "connection-state").as_deref() == Some("closed") {
            break;
        }
    }
    assert_eq!(testid(&root, "connection-state").as_deref(), Some("closed"));
    assert!(testid(&root, "close-reason").is_some_and(|r| !r.is_empty()));
    let focused = focused();
    assert_eq!(
        focused.as_deref(),
        Some("command-name"),
        "the command name has the keys from the start"
    );
    // the bridge's name for the VM (no QEMU to ask), in the header and the tab's title
    assert_eq!(testid(&root, "vm-name").as_deref(), Some("vm7"));
    let title = web_sys::window().unwrap().document().unwrap().title();
    assert_eq!(title, "vm7 · qmp-console");
    assert_eq!(
        testid(&root, "send").map(|_| ()),
        Some(()),
        "the form is there"
    );
}

#[wasm_bindgen_test]
fn event_times_are_local() {
    // 2023-11-14 22:13:20.123 UTC, shifted by this browser's time zone
    let ms = 1_700_000_000_123.0;
    let offset_min = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms)).get_timezone_offset();
    let local_s = (22 * 3600 + 13 * 60 + 20 - (offset_min * 60.0) as i64).rem_euclid(86_400);
    let expected = format!(
        "{:02}:{:02}:{:02}.123",
        local_s / 3600,
        local_s / 60 % 60,
        local_s % 60
    );
    assert_eq!(local_time(ms), expected);
}
