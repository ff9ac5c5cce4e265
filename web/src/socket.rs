//! The browser's `WebSocket`, its callbacks turned into [`Input`]s.
//!
//! Messages are not delivered one by one: each is stamped with its arrival time and
//! queued, and the queue is handed over as one [`Input::Batch`] a few milliseconds later,
//! so a flood of events costs one state update and one render per batch, not per message.

use std::cell::RefCell;
use std::rc::Rc;

use gloo_timers::callback::Timeout;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::state::Input;

/// How long messages gather before they are delivered together.
const BATCH_MS: u32 = 16;

#[derive(Default)]
struct Queue {
    items: Vec<(String, f64)>,
    flush: Option<Timeout>,
}

/// An open (or opening) websocket; dropping it closes the socket and its callbacks.
pub struct Socket {
    ws: WebSocket,
    queue: Rc<RefCell<Queue>>,
    _onopen: Closure<dyn FnMut()>,
    _onmessage: Closure<dyn FnMut(MessageEvent)>,
    _onclose: Closure<dyn FnMut(CloseEvent)>,
}

/// Milliseconds on the page's clock (`Date.now()`).
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn take(queue: &RefCell<Queue>) -> Vec<(String, f64)> {
    let mut q = queue.borrow_mut();
    q.flush = None;
    std::mem::take(&mut q.items)
}

impl Socket {
    /// Opens `url`, reporting every event through `on_input`.
    pub fn open(url: &str, on_input: yew::Callback<Input>) -> Result<Socket, String> {
        let ws = WebSocket::new(url).map_err(|e| format!("cannot open {url}: {e:?}"))?;
        let queue: Rc<RefCell<Queue>> = Rc::default();
        let cb = on_input.clone();
        let onopen = Closure::<dyn FnMut()>::new(move || cb.emit(Input::Opened));
        let cb = on_input.clone();
        let q = queue.clone();
        let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let Some(text) = e.data().as_string() else {
                return;
            };
            let mut queue = q.borrow_mut();
            queue.items.push((text, now_ms()));
            if queue.flush.is_none() {
                let (q2, cb2) = (q.clone(), cb.clone());
                queue.flush = Some(Timeout::new(BATCH_MS, move || {
                    let items = take(&q2);
                    if !items.is_empty() {
                        cb2.emit(Input::Batch(items));
                    }
                }));
            }
        });
        let cb = on_input;
        let q = queue.clone();
        let onclose = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            // what arrived before the close is delivered before it
            let items = take(&q);
            if !items.is_empty() {
                cb.emit(Input::Batch(items));
            }
            let reason = match e.reason() {
                r if r.is_empty() => format!("connection closed (code {})", e.code()),
                r => r,
            };
            cb.emit(Input::Closed {
                code: e.code(),
                reason,
            });
        });
        ws.set_onopen(Some(onopen.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        ws.set_onclose(Some(onclose.as_ref().unchecked_ref()));
        Ok(Socket {
            ws,
            queue,
            _onopen: onopen,
            _onmessage: onmessage,
            _onclose: onclose,
        })
    }

    /// Sends one text frame. `Ok(false)`: not sent, the socket is no longer open (its
    /// close event follows, and unanswered requests are failed then).
    pub fn send(&self, text: &str) -> Result<bool, String> {
        if self.ws.ready_state() != WebSocket::OPEN {
            return Ok(false);
        }
        self.ws
            .send_with_str(text)
            .map(|()| true)
            .map_err(|e| format!("send failed: {e:?}"))
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.queue.borrow_mut().flush = None;
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}
