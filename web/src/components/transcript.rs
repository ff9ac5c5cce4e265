//! The transcript: each request beside its reply (matched by id in the state), newest
//! first, with latency, errors up front, the reply as a lazy tree, copy and re-run.

use serde_json::Value;
use yew::prelude::*;

use super::json_tree::{preview, JsonTree};
use super::RcByPtr;
use crate::state::{Entry, Request};

/// A transcript entry shared by pointer.
pub type EntryRef = RcByPtr<Entry>;

/// What an entry's buttons ask of the owner.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EntryActions {
    /// Send this request again (with a fresh id).
    pub rerun: Callback<Request>,
    /// Put this request into the form.
    pub edit: Callback<Request>,
    /// Copy this text to the clipboard.
    pub copy: Callback<String>,
}

#[derive(Properties, PartialEq)]
pub struct TranscriptProps {
    /// Oldest first, as the state keeps them; shown newest first.
    pub entries: Vec<EntryRef>,
    #[prop_or_default]
    pub actions: EntryActions,
}

#[function_component(Transcript)]
pub fn transcript(props: &TranscriptProps) -> Html {
    html! {
        <section class="transcript" aria-label="Transcript">
            <h2>{ "Transcript" }</h2>
            if props.entries.is_empty() {
                <p class="muted">{ "Requests and their replies appear here." }</p>
            }
            { for props.entries.iter().rev().map(|e| html! {
                <EntryView key={e.0.seq} entry={e.clone()} actions={props.actions.clone()} />
            }) }
        </section>
    }
}

#[derive(Properties, PartialEq)]
pub struct EntryProps {
    pub entry: EntryRef,
    #[prop_or_default]
    pub actions: EntryActions,
}

/// Latency as people read it: `0.4 ms`, `12 ms`, `1.3 s`.
pub fn latency_text(ms: f64) -> String {
    if !ms.is_finite() {
        "-".into()
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

#[function_component(EntryView)]
pub fn entry_view(props: &EntryProps) -> Html {
    let e = &props.entry.0;
    let ok = e
        .reply
        .as_ref()
        .map(|r| if r.ok() { "true" } else { "false" });
    let status = match &e.reply {
        None => html! { <span class="pending">{ "waiting" }</span> },
        Some(r) => match &r.error {
            // an empty object: QEMU did it and has nothing to say
            None if r.value.as_object().is_some_and(|o| o.is_empty()) => {
                html! { <span class="ok" title="QEMU answered {}">{ "ok, empty" }</span> }
            }
            None => html! { <span class="ok">{ "ok" }</span> },
            Some(err) => html! { <span class="err-class">{ err.class.clone() }</span> },
        },
    };
    let latency = e.reply.as_ref().map(|r| latency_text(r.latency_ms));
    let body = e.reply.as_ref().map(|r| match (&r.error, &*r.value) {
        (Some(err), _) => html! {
            <div class="error" data-testid="error">
                <strong>{ err.class.clone() }</strong>{ ": " }{ err.desc.clone() }
            </div>
        },
        // HMP output (and any string reply) is text
        (None, Value::String(s)) => html! { <pre class="text">{ s.clone() }</pre> },
        (None, Value::Object(o)) if o.is_empty() => html! {},
        (None, _) => html! { <JsonTree value={RcByPtr(r.value.clone())} /> },
    });
    let copy = {
        let (on_copy, e) = (props.actions.copy.clone(), e.clone());
        Callback::from(move |_: MouseEvent| {
            let text = match &e.reply {
                Some(r) => match &r.error {
                    Some(err) => format!("{}: {}", err.class, err.desc),
                    None => serde_json::to_string_pretty(&*r.value).unwrap_or_default(),
                },
                None => e.text.clone(),
            };
            on_copy.emit(text);
        })
    };
    let rerun = {
        let (cb, r) = (props.actions.rerun.clone(), e.request.clone());
        Callback::from(move |_: MouseEvent| cb.emit(r.clone()))
    };
    let edit = {
        let (cb, r) = (props.actions.edit.clone(), e.request.clone());
        Callback::from(move |_: MouseEvent| cb.emit(r.clone()))
    };
    html! {
        <article class={classes!("entry", ok.map(|o| if o == "true" { "is-ok" } else { "is-err" }))}
                 data-testid="response" data-id={e.id.clone()} data-ok={ok}>
            <div class="entry-head">
                <span class="seq">{ format!("#{}", e.seq) }</span>
                <span class="title">{ e.request.title() }</span>
                if let Request::Command { args: Some(args), .. } = &e.request {
                    <code class="args-preview" title={args.to_string()}>{ preview(args, 60) }</code>
                }
                { status }
                if let Some(l) = latency { <span class="latency">{ l }</span> }
                <span class="tools">
                    <button onclick={copy} title="Copy the reply">{ "Copy" }</button>
                    <button onclick={edit} title="Put into the form">{ "Edit" }</button>
                    <button onclick={rerun} data-testid="rerun" title="Send again with a new id">{ "Re-run" }</button>
                </span>
            </div>
            <details class="request">
                <summary>{ "request" }</summary>
                <pre>{ e.text.clone() }</pre>
            </details>
            { for body }
        </article>
    }
}
