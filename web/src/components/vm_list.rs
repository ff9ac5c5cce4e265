//! The VM list page (`/` of a bridge serving many VMs): one row per VM with a thumbnail of
//! its screen, its state, QEMU version, run state and clients, a link to its console, and
//! quick actions (the destructive ones ask in the row first). It shows what it is given: the polling and
//! the actions' sockets are the owner's ([`crate::hooks`]).

use std::collections::HashMap;
use std::rc::Rc;

use qmp::vm_list::{VmRow, VmState};
use yew::prelude::*;

use crate::components::QuickAction;
use crate::endpoint::PageUrl;
use crate::fleet::Listing;
use crate::screen::Shown;

/// Where a row's last quick action stands: `Ok(text)` running or done, `Err(why)` failed.
pub type ActionResult = Result<String, String>;

#[derive(Properties, PartialEq)]
pub struct VmListProps {
    /// The last answer of `/api/vms`.
    pub listing: Listing,
    /// Why the last refresh failed.
    #[prop_or_default]
    pub error: Option<AttrValue>,
    /// The page's URL: each VM's console link is beside it.
    pub page: Rc<PageUrl>,
    /// Each VM's last quick action, by name.
    #[prop_or_default]
    pub results: HashMap<String, ActionResult>,
    /// Run a quick action on the VM named (after the row's confirmation, if it asks).
    #[prop_or_default]
    pub on_action: Callback<(String, QuickAction)>,
    /// Start the shut-off VM named (a libvirt domain).
    #[prop_or_default]
    pub on_start: Callback<String>,
    /// Each VM's screen, by name.
    #[prop_or_default]
    pub thumbs: HashMap<String, Shown>,
}

#[function_component(VmList)]
pub fn vm_list(props: &VmListProps) -> Html {
    let listing = &props.listing;
    html! {
        <div class="vm-list-page">
            <header class="top">
                <h1>{ "qmp-console" }</h1>
                <span class="muted">{ format!("{} VMs", listing.vms.len()) }</span>
                if let Some(e) = &props.error {
                    <span class="close-reason" data-testid="vm-list-error">{ e.clone() }</span>
                }
            </header>
            <table class="vm-list" data-testid="vm-list">
                <thead><tr>
                    <th>{ "screen" }</th><th>{ "VM" }</th><th>{ "state" }</th><th>{ "run state" }</th>
                    <th>{ "QEMU" }</th><th>{ "clients" }</th><th>{ "actions" }</th>
                </tr></thead>
                <tbody>
                    { for listing.vms.iter().map(|vm| html! {
                        <Row key={vm.name.clone()} vm={vm.clone()} href={props.page.vm_page_href(&vm.name)}
                             result={props.results.get(&vm.name).cloned()} on_action={props.on_action.clone()}
                             on_start={props.on_start.clone()}
                             thumb={props.thumbs.get(&vm.name).cloned()} />
                    }) }
                </tbody>
            </table>
            if !listing.problems.is_empty() {
                <ul class="vm-problems">
                    { for listing.problems.iter().map(|p| html! {
                        <li data-testid="vm-problem" data-name={p.name.clone()}>
                            <code>{ p.name.clone() }</code>{ format!(": {}", p.reason) }
                        </li>
                    }) }
                </ul>
            }
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct RowProps {
    vm: VmRow,
    /// Its console page.
    href: String,
    result: Option<ActionResult>,
    on_action: Callback<(String, QuickAction)>,
    on_start: Callback<String>,
    thumb: Option<Shown>,
}

#[function_component(Row)]
fn row(props: &RowProps) -> Html {
    let vm = &props.vm;
    // the destructive action waiting for a yes or no
    let confirming = use_state(|| None::<QuickAction>);
    let run = {
        let (on_action, confirming, name) =
            (props.on_action.clone(), confirming.clone(), vm.name.clone());
        Callback::from(move |action: QuickAction| {
            confirming.set(None);
            on_action.emit((name.clone(), action));
        })
    };
    let buttons = QuickAction::ROW.iter().map(|&action| {
        let (run, confirming) = (run.clone(), confirming.clone());
        let onclick = Callback::from(move |_| {
            if action.destructive() {
                confirming.set(Some(action));
            } else {
                run.emit(action);
            }
        });
        let disabled = vm.state != VmState::Up;
        html! {
            <button data-testid="vm-action" data-action={action.key()} {onclick} {disabled}>
                { action.label() }
            </button>
        }
    });
    let confirm = confirming.map(|action| {
        let yes = run.reform(move |_: MouseEvent| action);
        let no = {
            let confirming = confirming.clone();
            Callback::from(move |_| confirming.set(None))
        };
        html! {
            <span class="vm-confirm">
                { format!("{} {}?", action.label(), vm.name) }
                <button data-testid="vm-confirm" onclick={yes}>{ "Yes" }</button>
                <button data-testid="vm-cancel" onclick={no}>{ "No" }</button>
            </span>
        }
    });
    // a shut-off libvirt domain starts through libvirt
    let start = (vm.state == VmState::Off).then(|| {
        let (on_start, name) = (props.on_start.clone(), vm.name.clone());
        let onclick = Callback::from(move |_| on_start.emit(name.clone()));
        html! { <button data-testid="vm-start" {onclick}>{ "Start" }</button> }
    });
    let run_state = vm.run_state.clone().unwrap_or_else(|| "–".into());
    let thumb_src = props.thumb.as_ref().and_then(Shown::src_text);
    let thumb_problem = props.thumb.as_ref().and_then(|t| t.problem.clone());
    // the whole reason is the thumbnail's title
    let thumb_label = match &thumb_problem {
        Some(p) if p.contains("no display") => "no display",
        Some(_) => "no picture",
        None => "…",
    };
    html! {
        <tr data-testid="vm-row" data-name={vm.name.clone()} class={classes!("vm-row", vm.state.as_str())}>
            <td class="thumb-cell">
                <a class="thumb" data-testid="screen-thumb" href={props.href.clone()}
                   title={thumb_problem.clone().unwrap_or_default()}>
                    if let Some(src) = thumb_src {
                        <img src={src} alt={format!("{}'s screen", vm.name)} />
                    } else {
                        <span class="muted">{ thumb_label }</span>
                    }
                </a>
            </td>
            <td>
                <a data-testid="vm-open" href={props.href.clone()}>{ vm.name.clone() }</a>
                if let Some(manager) = &vm.managed_by {
                    <span data-testid="vm-managed" class="vm-managed"
                          title={format!("{manager} manages this VM: its lifecycle goes through {manager}")}>
                        { manager.clone() }
                    </span>
                }
                <div class="muted mono">{ vm.target.clone() }</div>
            </td>
            <td>
                <span data-testid="vm-state" class={classes!("vm-state", vm.state.as_str())}
                      title={vm.last_error.clone().unwrap_or_default()}>
                    { vm.state.as_str() }
                </span>
                if let Some(e) = &vm.last_error {
                    if vm.state != VmState::Up { <div class="muted">{ e.clone() }</div> }
                }
            </td>
            <td><span data-testid="vm-run-state" class={classes!("vm-status", run_state.clone())}>{ run_state.clone() }</span></td>
            <td data-testid="vm-version">{ vm.version.clone().unwrap_or_default() }</td>
            <td data-testid="vm-clients">{ vm.clients }</td>
            <td class="vm-actions">
                { for start }
                { for buttons }
                { for confirm }
                if let Some(r) = &props.result {
                    <span data-testid="vm-action-result" class={if r.is_ok() { "ok" } else { "bad" }}>
                        { match r { Ok(t) | Err(t) => t.clone() } }
                    </span>
                }
            </td>
        </tr>
    }
}
