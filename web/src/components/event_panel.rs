//! Live events: local time, name, data; filter, pause auto-scroll, clear, per-name counts,
//! export. Shows at most [`crate::events::SHOWN`] rows whatever the flood.

use wasm_bindgen::JsValue;
use yew::prelude::*;

use super::RcByPtr;
use crate::events::EventRecord;
use crate::hooks::use_toggle;

/// An event shared by pointer.
pub type EventRef = RcByPtr<EventRecord>;

#[derive(Properties, PartialEq)]
pub struct EventPanelProps {
    /// The rows to show, oldest first.
    pub shown: Vec<EventRef>,
    /// `(name, count)` over the whole log.
    pub counts: Vec<(AttrValue, u64)>,
    pub total: usize,
    /// Events let go past the log's bound (not in the export).
    #[prop_or_default]
    pub dropped: u64,
    pub filter: AttrValue,
    #[prop_or_default]
    pub on_filter: Callback<String>,
    #[prop_or_default]
    pub on_clear: Callback<()>,
    #[prop_or_default]
    pub on_export: Callback<()>,
}

/// `HH:MM:SS.mmm` in the browser's time zone.
pub fn local_time(ms: f64) -> String {
    let d = js_sys::Date::new(&JsValue::from_f64(ms));
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        d.get_hours(),
        d.get_minutes(),
        d.get_seconds(),
        d.get_milliseconds()
    )
}

#[function_component(EventPanel)]
pub fn event_panel(props: &EventPanelProps) -> Html {
    let (paused, toggle_pause) = use_toggle(false);
    let list = use_node_ref();
    {
        // keep the newest in view unless paused
        let list = list.clone();
        let newest = props.shown.last().map(|e| e.0.seq);
        use_effect_with((newest, paused), move |_| {
            if !paused {
                if let Some(el) = list.cast::<web_sys::Element>() {
                    el.set_scroll_top(el.scroll_height());
                }
            }
        });
    }
    let on_filter = {
        let cb = props.on_filter.clone();
        Callback::from(move |e: InputEvent| {
            cb.emit(
                e.target_unchecked_into::<web_sys::HtmlInputElement>()
                    .value(),
            )
        })
    };
    let filter_keys = {
        let cb = props.on_filter.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Escape" {
                cb.emit(String::new());
            }
        })
    };
    let clear = props.on_clear.reform(|_: MouseEvent| ());
    let export = props.on_export.reform(|_: MouseEvent| ());
    html! {
        <section class="events" aria-label="Events">
            <div class="bar">
                <h2>{ "Events" }</h2>
                <input type="search" placeholder="filter by name" value={props.filter.clone()}
                       oninput={on_filter} onkeydown={filter_keys} data-testid="event-filter" />
                <button onclick={toggle_pause} data-testid="events-pause" aria-pressed={paused.to_string()}
                        title="Pause or resume auto-scroll">{ if paused { "▶ scroll" } else { "❚❚ scroll" } }</button>
                <button onclick={clear} data-testid="events-clear">{ "Clear" }</button>
                <button onclick={export} data-testid="events-export" title="Download every event as JSON lines">{ "Export JSONL" }</button>
            </div>
            <div class="counts">
                { for props.counts.iter().map(|(name, n)| {
                    let (cb, filter_to) = (props.on_filter.clone(), name.to_string());
                    let onclick = Callback::from(move |_: MouseEvent| cb.emit(filter_to.clone()));
                    html! {
                        <button class="count" data-testid="event-count" data-name={name.clone()} {onclick}>
                            { name.clone() }<b>{ n.to_string() }</b>
                        </button>
                    }
                }) }
            </div>
            <div class="list mono" ref={list}>
                if props.shown.is_empty() {
                    <p class="muted">{ if props.total == 0 { "No events yet." } else { "No event matches the filter." } }</p>
                }
                { for props.shown.iter().map(|e| html! { <EventRow key={e.0.seq} event={e.clone()} /> }) }
            </div>
            <div class="foot muted">
                { format!("showing {} of {} events", props.shown.len(), props.total) }
                if props.dropped > 0 {
                    { format!(" ({} older ones let go; counts include them)", props.dropped) }
                }
            </div>
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct EventRowProps {
    event: EventRef,
}

/// One event: time, name and its data on one line; a click shows the data in full.
#[function_component(EventRow)]
fn event_row(props: &EventRowProps) -> Html {
    let (open, toggle) = use_toggle(false);
    let r = &props.event.0;
    let data = r.data();
    let empty = data.as_object().is_some_and(|o| o.is_empty());
    html! {
        <div class={classes!("event", open.then_some("open"))} data-testid="event" data-name={r.name.to_string()}
             onclick={(!empty).then_some(toggle)}>
            <span class="time" title={format!("{} ms since the epoch", r.timestamp_ms)}>{ local_time(r.timestamp_ms) }</span>
            <span class="name">{ r.name.to_string() }</span>
            if open {
                <pre class="data">{ serde_json::to_string_pretty(&data).unwrap_or_default() }</pre>
            } else if !empty {
                <span class="data">{ data.to_string() }</span>
            }
        </div>
    }
}
