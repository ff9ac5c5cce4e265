//! The console's screen: reads the VM's screen ([`hooks::use_live_screen`]), turns keys
//! pressed in the view into chords ([`KeyTracker`]) and sends them in order, batched while
//! one request is on its way, to the bridge's `keys` route, and clicks to its `pointer`
//! route; shows it all with [`ScreenView`].
//!
//! [`hooks::use_live_screen`]: crate::hooks::use_live_screen

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use qmp::keys;
use yew::prelude::*;

use crate::components::ScreenView;
use crate::endpoint::ScreenUrls;
use crate::fetch::post_json;
use crate::hooks::use_live_screen;
use crate::screen::{KeyTracker, Mods};

/// Chords sent in one request at most.
const BATCH: usize = 64;

#[derive(Properties, PartialEq)]
pub struct ScreenPanelProps {
    pub urls: ScreenUrls,
}

type Chord = Vec<&'static str>;

/// Chords waiting to be sent, and whether a request is on its way.
#[derive(Default)]
struct Outbox {
    waiting: VecDeque<Chord>,
    sending: bool,
}

/// Queues `chords`; starts sending unless a request is on its way already (it takes the
/// newcomers when it is done).
fn send(
    outbox: &Rc<RefCell<Outbox>>,
    url: &str,
    chords: Vec<Chord>,
    note: UseStateHandle<Option<String>>,
) {
    let mut ob = outbox.borrow_mut();
    ob.waiting.extend(chords);
    if ob.sending || ob.waiting.is_empty() {
        return;
    }
    ob.sending = true;
    let (outbox, url) = (outbox.clone(), url.to_owned());
    wasm_bindgen_futures::spawn_local(async move {
        loop {
            let batch: Vec<Chord> = {
                let mut ob = outbox.borrow_mut();
                let n = ob.waiting.len().min(BATCH);
                ob.waiting.drain(..n).collect()
            };
            if batch.is_empty() {
                outbox.borrow_mut().sending = false;
                return;
            }
            let body = serde_json::json!({ "keys": batch }).to_string();
            match post_json(&url, &body).await {
                Ok(_) => note.set(None),
                Err(why) => note.set(Some(format!("keys not sent: {why}"))),
            }
        }
    });
}

fn mods(e: &KeyboardEvent) -> Mods {
    Mods {
        shift: e.shift_key(),
        ctrl: e.ctrl_key(),
        alt: e.alt_key(),
        meta: e.meta_key(),
    }
}

#[function_component(ScreenPanel)]
pub fn screen_panel(props: &ScreenPanelProps) -> Html {
    let shown = use_live_screen(props.urls.screen.clone());
    let tracker = use_mut_ref(KeyTracker::default);
    let outbox = use_mut_ref(Outbox::default);
    let note = use_state_eq(|| None::<String>);
    let sender = {
        let (outbox, url, note) = (outbox.clone(), props.urls.keys.clone(), note.clone());
        Callback::from(move |chords: Vec<Chord>| send(&outbox, &url, chords, note.clone()))
    };
    let on_keydown = {
        let (tracker, sender) = (tracker.clone(), sender.clone());
        Callback::from(move |e: KeyboardEvent| {
            let code = e.code();
            match tracker.borrow_mut().down(&code, mods(&e)) {
                Some(chord) => {
                    e.prevent_default();
                    sender.emit(vec![chord]);
                }
                None if keys::modifier(&code).is_some() => e.prevent_default(),
                None => {}
            }
        })
    };
    let on_keyup = {
        let (tracker, sender) = (tracker.clone(), sender.clone());
        Callback::from(move |e: KeyboardEvent| {
            if let Some(chord) = tracker.borrow_mut().up(&e.code()) {
                e.prevent_default();
                sender.emit(vec![chord]);
            }
        })
    };
    let on_blur = {
        let tracker = tracker.clone();
        Callback::from(move |()| tracker.borrow_mut().clear())
    };
    let on_paste = {
        let (sender, note) = (sender.clone(), note.clone());
        Callback::from(move |text: String| {
            let (chords, skipped) = keys::chords_for_text(&text);
            if skipped > 0 {
                note.set(Some(format!(
                    "{skipped} pasted characters have no key on a US keyboard: not typed"
                )));
            }
            sender.emit(chords);
        })
    };
    let on_ctrl_alt_del = sender.reform(|()| vec![keys::CTRL_ALT_DEL.to_vec()]);
    let on_click = {
        let (url, note) = (props.urls.pointer.clone(), note.clone());
        Callback::from(move |(x, y, button): (f64, f64, &'static str)| {
            let (url, note) = (url.clone(), note.clone());
            let body = serde_json::json!({ "x": x, "y": y, "button": button }).to_string();
            wasm_bindgen_futures::spawn_local(async move {
                match post_json(&url, &body).await {
                    Ok(_) => note.set(None),
                    Err(why) => note.set(Some(format!("click not sent: {why}"))),
                }
            });
        })
    };
    html! {
        <ScreenView src={shown.src_text()} frames={shown.frames}
                    problem={shown.problem.clone().map(AttrValue::from)}
                    note={(*note).clone().map(AttrValue::from)}
                    {on_keydown} {on_keyup} {on_blur} {on_paste} {on_ctrl_alt_del} {on_click} />
    }
}
