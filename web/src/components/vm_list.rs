//! The VM list page (`/` of a bridge serving many VMs): one live row per VM with its state,
//! QEMU version, run state and clients, a link to its console, and quick actions.

use std::cell::RefCell;
use std::rc::Rc;

use yew::prelude::*;

use crate::components::QuickAction;
use crate::fleet::{parse_listing, Listing, OneShot, VmRow};
use crate::socket::Socket;

/// How often the list is refreshed.
const REFRESH_MS: u64 = 1000;

/// Text of a GET, relative to the page.
pub async fn fetch_text(url: &str) -> Result<String, String> {
    use wasm_bindgen::JsCast;
    let window = web_sys::window().ok_or("no window")?;
    let resp = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|e| format!("{url}: {e:?}"))?;
    let resp: web_sys::Response = resp.dyn_into().map_err(|_| "not a response")?;
    let body = wasm_bindgen_futures::JsFuture::from(resp.text().map_err(|e| format!("{e:?}"))?)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let body = body.as_string().unwrap_or_default();
    if !resp.ok() {
        return Err(format!("{url}: HTTP {}: {}", resp.status(), body.trim()));
    }
    Ok(body)
}

/// Where the page is: `(protocol, host, folder, search)`.
fn here() -> (String, String, String, String) {
    let Some(l) = web_sys::window().map(|w| w.location()) else {
        return Default::default();
    };
    let path = l.pathname().unwrap_or_default();
    let folder = crate::endpoint::page_location(&path).0;
    (
        l.protocol().unwrap_or_default(),
        l.host().unwrap_or_default(),
        folder,
        l.search().unwrap_or_default(),
    )
}

#[derive(Properties, PartialEq)]
pub struct VmListProps {
    /// The first answer of `/api/vms` (the page refreshes it itself).
    pub initial: Listing,
}

#[function_component(VmList)]
pub fn vm_list(props: &VmListProps) -> Html {
    let listing = use_state(|| props.initial.clone());
    let error = use_state(|| None::<String>);
    {
        let (listing, error) = (listing.clone(), error.clone());
        use_effect_with((), move |_| {
            let alive = Rc::new(std::cell::Cell::new(true));
            let running = alive.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let (_, _, folder, search) = here();
                let url = format!("{folder}api/vms{search}");
                while running.get() {
                    yew::platform::time::sleep(std::time::Duration::from_millis(REFRESH_MS)).await;
                    if !running.get() {
                        break;
                    }
                    match fetch_text(&url).await.and_then(|b| parse_listing(&b)) {
                        Ok(l) => {
                            listing.set(l);
                            error.set(None);
                        }
                        Err(e) => error.set(Some(e)),
                    }
                }
            });
            move || alive.set(false)
        });
    }
    let (_, _, folder, search) = here();
    html! {
        <div class="vm-list-page">
            <header class="top">
                <h1>{ "qmp-console" }</h1>
                <span class="muted">{ format!("{} VMs", listing.vms.len()) }</span>
                if let Some(e) = &*error {
                    <span class="close-reason" data-testid="vm-list-error">{ e.clone() }</span>
                }
            </header>
            <table class="vm-list" data-testid="vm-list">
                <thead><tr>
                    <th>{ "VM" }</th><th>{ "state" }</th><th>{ "run state" }</th>
                    <th>{ "QEMU" }</th><th>{ "clients" }</th><th>{ "actions" }</th>
                </tr></thead>
                <tbody>
                    { for listing.vms.iter().map(|vm| html! {
                        <Row key={vm.name.clone()} vm={vm.clone()} folder={folder.clone()} search={search.clone()} />
                    }) }
                </tbody>
            </table>
            if !listing.problems.is_empty() {
                <ul class="vm-problems">
                    { for listing.problems.iter().map(|(name, reason)| html! {
                        <li data-testid="vm-problem" data-name={name.clone()}>
                            <code>{ name.clone() }</code>{ format!(": {reason}") }
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
    folder: String,
    search: String,
}

#[function_component(Row)]
fn row(props: &RowProps) -> Html {
    let vm = &props.vm;
    let confirming = use_state(|| None::<QuickAction>);
    let result = use_state(|| None::<Result<String, String>>);
    // the quick action's socket, while one runs
    let socket: Rc<RefCell<Option<Socket>>> = use_mut_ref(|| None);

    let run = {
        let (result, socket, confirming) = (result.clone(), socket.clone(), confirming.clone());
        let name = vm.name.clone();
        Callback::from(move |action: QuickAction| {
            confirming.set(None);
            let (protocol, host, folder, search) = here();
            let url = crate::endpoint::websocket_url(
                &protocol,
                &host,
                &crate::endpoint::vm_page_path(&folder, &name),
                &search,
            );
            let shot = RefCell::new(OneShot::new(action.command()));
            let (result2, socket2) = (result.clone(), socket.clone());
            let on_input = Callback::from(move |input| {
                let step = shot.borrow_mut().step(input);
                if let Some(s) = socket2.borrow().as_ref() {
                    for frame in &step.send {
                        let _ = s.send(frame);
                    }
                }
                if let Some(done) = step.done {
                    result2.set(Some(done.map(|()| format!("{}: done", action.label()))));
                    // not from inside the socket's own callback
                    let socket3 = socket2.clone();
                    wasm_bindgen_futures::spawn_local(async move {
                        socket3.borrow_mut().take();
                    });
                }
            });
            result.set(Some(Ok(format!("{}…", action.label()))));
            match Socket::open(&url, on_input) {
                Ok(s) => *socket.borrow_mut() = Some(s),
                Err(e) => result.set(Some(Err(e))),
            }
        })
    };
    let href = format!(
        "{}{}",
        crate::endpoint::vm_page_path(&props.folder, &vm.name),
        props.search
    );
    let buttons = QuickAction::ROW.iter().map(|&action| {
        let (run, confirming) = (run.clone(), confirming.clone());
        let onclick = Callback::from(move |_| {
            if action.destructive() {
                confirming.set(Some(action));
            } else {
                run.emit(action);
            }
        });
        let disabled = vm.state != "up";
        html! {
            <button data-testid="vm-action" data-action={action.key()} {onclick} {disabled}>
                { action.label() }
            </button>
        }
    });
    let confirm = confirming.map(|action| {
        let yes = {
            let run = run.clone();
            Callback::from(move |_| run.emit(action))
        };
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
    let run_state = vm.run_state.clone().unwrap_or_else(|| "–".into());
    html! {
        <tr data-testid="vm-row" data-name={vm.name.clone()} class={classes!("vm-row", vm.state.clone())}>
            <td>
                <a data-testid="vm-open" href={href}>{ vm.name.clone() }</a>
                <div class="muted mono">{ vm.target.clone() }</div>
            </td>
            <td>
                <span data-testid="vm-state" class={classes!("vm-state", vm.state.clone())}
                      title={vm.last_error.clone().unwrap_or_default()}>
                    { vm.state.clone() }
                </span>
                if let Some(e) = &vm.last_error {
                    if vm.state != "up" { <div class="muted">{ e.clone() }</div> }
                }
            </td>
            <td><span data-testid="vm-run-state" class={classes!("vm-status", run_state.clone())}>{ run_state.clone() }</span></td>
            <td data-testid="vm-version">{ vm.version.clone().unwrap_or_default() }</td>
            <td data-testid="vm-clients">{ vm.clients }</td>
            <td class="vm-actions">
                { for buttons }
                { for confirm }
                if let Some(r) = &*result {
                    <span data-testid="vm-action-result" class={if r.is_ok() { "ok" } else { "bad" }}>
                        { match r { Ok(t) | Err(t) => t.clone() } }
                    </span>
                }
            </td>
        </tr>
    }
}
