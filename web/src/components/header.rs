//! The top bar: the VM's name, connection state and control, the websocket URL, QEMU's
//! greeting, the `oob` choice and the VM status badge.

use yew::prelude::*;

use crate::endpoint::redact_token;
use crate::state::Phase;
use qmp::Greeting;

#[derive(Properties, PartialEq)]
pub struct HeaderProps {
    pub url: AttrValue,
    pub phase: Phase,
    pub greeting: Option<Greeting>,
    /// The VM's name (QEMU's `-name`, or the bridge's), when known.
    #[prop_or_default]
    pub vm_name: Option<AttrValue>,
    /// QEMU's run state (`running`, `paused`, ...), when known.
    #[prop_or_default]
    pub vm_status: Option<AttrValue>,
    /// Capabilities the last negotiation enabled.
    #[prop_or_default]
    pub enabled: Vec<AttrValue>,
    /// Whether `oob` is asked for at negotiation.
    #[prop_or_default]
    pub want_oob: bool,
    #[prop_or_default]
    pub on_oob: Callback<bool>,
    /// When the next automatic reconnect happens, in seconds.
    #[prop_or_default]
    pub retry_in: Option<u32>,
    /// Connect (true) or disconnect (false).
    #[prop_or_default]
    pub on_connect: Callback<bool>,
}

#[function_component(Header)]
pub fn header(props: &HeaderProps) -> Html {
    let phase = &props.phase;
    let closed = matches!(phase, Phase::Closed { .. });
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
            <>
                <span class="greeting" data-testid="greeting"
                      data-version={g.version.to_string()}
                      data-capabilities={caps.clone()}
                      title={format!("capabilities offered: {caps}")}>
                    { format!("QEMU {} ({})", g.version, g.package) }
                </span>
                <span class="caps muted" data-testid="capabilities">{ format!("capabilities: {caps}") }</span>
            </>
        }
    });
    let offers_oob = props
        .greeting
        .as_ref()
        .is_none_or(|g| g.capabilities.iter().any(|c| c == "oob"));
    let oob = offers_oob.then(|| {
        let cb = props.on_oob.clone();
        let onchange = Callback::from(move |e: Event| {
            cb.emit(e.target_unchecked_into::<web_sys::HtmlInputElement>().checked())
        });
        let on = props.enabled.iter().any(|c| c == "oob");
        html! {
            <label class="oob" title="Enable out-of-band execution (exec-oob) when QEMU offers it; applied by reconnecting">
                <input type="checkbox" checked={props.want_oob} {onchange} data-testid="oob" />
                { if on { "oob on" } else { "oob" } }
            </label>
        }
    });
    let connect = {
        let cb = props.on_connect.clone();
        Callback::from(move |_: MouseEvent| cb.emit(closed))
    };
    html! {
        <header class="top">
            <h1>
                if let Some(name) = props.vm_name.clone() {
                    <span class="vm-name" data-testid="vm-name">{ name }</span>
                    <span class="muted">{ " · " }</span>
                }
                { "qmp-console" }
            </h1>
            <code class="url">{ redact_token(&props.url) }</code>
            <span class={classes!("state", phase.label())} data-testid="connection-state">
                { phase.label() }
            </span>
            if let Some(reason) = reason {
                <span class="close-reason" data-testid="close-reason">{ reason }</span>
            }
            if let Some(s) = props.retry_in.filter(|_| closed) {
                <span class="muted" data-testid="retry">{ format!("retrying in {s} s") }</span>
            }
            <button onclick={connect} data-testid="connect">{ if closed { "Connect" } else { "Disconnect" } }</button>
            { for oob }
            { for greeting }
            <span class="spacer"></span>
            if let Some(s) = props.vm_status.clone() {
                <span class={classes!("vm-status", s.to_string())} data-testid="vm-status" title="VM run state (query-status, kept current by events)">{ s }</span>
            }
        </header>
    }
}
