//! The root component: owns the socket, feeds it into [`Console`], renders the result.

use yew::prelude::*;

use crate::components::Header;
use crate::endpoint::websocket_url;
use crate::socket::Socket;
use crate::state::{Console, Input, Notice};

/// Root component messages.
pub enum Msg {
    Socket(Input),
}

/// The console page.
pub struct App {
    console: Console,
    socket: Option<Socket>,
}

fn page_url() -> String {
    let Some(location) = web_sys::window().map(|w| w.location()) else {
        return String::new();
    };
    websocket_url(
        &location.protocol().unwrap_or_default(),
        &location.host().unwrap_or_default(),
        &location.search().unwrap_or_default(),
    )
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let url = page_url();
        let mut console = Console::new(url.clone());
        let socket = match Socket::open(&url, ctx.link().callback(Msg::Socket)) {
            Ok(s) => Some(s),
            Err(e) => {
                console.handle(Input::Closed { code: 0, reason: e });
                None
            }
        };
        App { console, socket }
    }

    fn update(&mut self, _ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Socket(input) => {
                let closed = matches!(input, Input::Closed { .. });
                for frame in self.console.handle(input) {
                    if let Some(socket) = &self.socket {
                        if let Err(e) = socket.send(&frame) {
                            self.console.notices.push(Notice(e));
                        }
                    }
                }
                if closed {
                    self.socket = None;
                }
            }
        }
        true
    }

    fn view(&self, _ctx: &Context<Self>) -> Html {
        let c = &self.console;
        html! {
            <div class="console">
                <Header url={c.url.clone()} phase={c.phase.clone()} greeting={c.greeting.clone()} />
                <ul class="notices">
                    { for c.notices.iter().map(|n| html! { <li class="notice">{ n.0.clone() }</li> }) }
                </ul>
            </div>
        }
    }
}
