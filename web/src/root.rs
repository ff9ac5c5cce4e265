//! Which page to show: a VM's console, or (on a bridge serving many VMs) the VM list.
//!
//! `/vm/NAME` and pages pointed elsewhere with `?ws=` are consoles. Otherwise the page asks
//! the bridge's `/api/vms`: a `fleet` gets the list, anything else (one VM, an older
//! bridge, no answer) the console, as before.

use yew::prelude::*;

use crate::components::vm_list::{fetch_text, VmList};
use crate::endpoint::{page_location, query_param};
use crate::fleet::{parse_listing, Listing};
use crate::App;

enum Page {
    Deciding,
    Console,
    List(Listing),
}

#[function_component(Root)]
pub fn root() -> Html {
    let page = use_state(|| Page::Deciding);
    {
        let page = page.clone();
        use_effect_with((), move |_| {
            let location = web_sys::window().map(|w| w.location());
            let path = location
                .as_ref()
                .and_then(|l| l.pathname().ok())
                .unwrap_or_default();
            let search = location
                .as_ref()
                .and_then(|l| l.search().ok())
                .unwrap_or_default();
            let (folder, vm) = page_location(&path);
            if vm.is_some() || query_param(&search, "ws").is_some() {
                page.set(Page::Console);
            } else {
                wasm_bindgen_futures::spawn_local(async move {
                    let url = format!("{folder}api/vms{search}");
                    match fetch_text(&url).await.and_then(|b| parse_listing(&b)) {
                        Ok(l) if l.mode == "fleet" => page.set(Page::List(l)),
                        _ => page.set(Page::Console),
                    }
                });
            }
        });
    }
    match &*page {
        Page::Deciding => {
            html! { <p class="muted" data-testid="loading">{ "qmp-console: loading…" }</p> }
        }
        Page::Console => html! { <App /> },
        Page::List(l) => html! { <VmList initial={l.clone()} /> },
    }
}
