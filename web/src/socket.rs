//! The browser's `WebSocket`, its callbacks turned into [`Input`]s.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::state::Input;

/// An open (or opening) websocket; dropping it closes the socket and its callbacks.
pub struct Socket {
    ws: WebSocket,
    _onopen: Closure<dyn FnMut()>,
    _onmessage: Closure<dyn FnMut(MessageEvent)>,
    _onclose: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    /// Opens `url`, reporting every event through `on_input`.
    pub fn open(url: &str, on_input: yew::Callback<Input>) -> Result<Socket, String> {
        let ws = WebSocket::new(url).map_err(|e| format!("cannot open {url}: {e:?}"))?;
        let cb = on_input.clone();
        let onopen = Closure::<dyn FnMut()>::new(move || cb.emit(Input::Opened));
        let cb = on_input.clone();
        let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(text) = e.data().as_string() {
                cb.emit(Input::Received(text));
            }
        });
        let cb = on_input;
        let onclose = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            let reason = match e.reason() {
                r if r.is_empty() => format!("connection closed (code {})", e.code()),
                r => r,
            };
            cb.emit(Input::Closed { code: e.code(), reason });
        });
        ws.set_onopen(Some(onopen.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        ws.set_onclose(Some(onclose.as_ref().unchecked_ref()));
        Ok(Socket {
            ws,
            _onopen: onopen,
            _onmessage: onmessage,
            _onclose: onclose,
        })
    }

    /// Sends one text frame.
    pub fn send(&self, text: &str) -> Result<(), String> {
        self.ws
            .send_with_str(text)
            .map_err(|e| format!("send failed: {e:?}"))
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}
