//! The top bar: connection state, the websocket URL, and QEMU's greeting.

use yew::prelude::*;

use crate::state::Phase;
use qmp::Greeting;

#[derive(Properties, PartialEq)]
pub struct HeaderProps {
    pub url: AttrValue,
    pub phase: Phase,
    pub greeting: Option<Greeting>,
}

#[function_component(Header)]
pub fn header(props: &HeaderProps) -> Html {
    let phase = &props.phase;
    let reason = match phase {
        Phase::Closed { code, reason } => Some(format!("{reason} ({code})")),
        _ => None,
    };
    let greeting = props.greeting.as_ref().map(|g| {
        let caps = if g.capabilities.is_empty() {
            "none".to_owned()
        } else {
            g.capabilities.join(", ")
        };
        html! {
            <span class="greeting" data-testid="greeting"
                  data-version={g.version.to_string()}
                  title={format!("capabilities: {caps}")}>
                { format!("QEMU {} ({})", g.version, g.package) }
            </span>
        }
    });
    html! {
        <header class="top">
            <h1>{ "qmp-console" }</h1>
            <code class="url">{ props.url.clone() }</code>
            <span class={classes!("state", phase.label())} data-testid="connection-state">
                { phase.label() }
            </span>
            if let Some(reason) = reason {
                <span class="close-reason" data-testid="close-reason">{ reason }</span>
            }
            { for greeting }
        </header>
    }
}
