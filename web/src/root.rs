//! Which page to show: a VM's console, or (on a bridge serving many VMs) the VM list.
//!
//! `/vm/NAME` and pages pointed elsewhere with `?ws=` are consoles. Otherwise the page asks
//! the bridge's `/api/vms`: a `fleet` gets the list, anything else (one VM, an older
//! bridge, no answer) the console, as before.

use std::rc::Rc;

use qmp::vm_list::ListMode;
use yew::prelude::*;

use crate::endpoint::PageUrl;
use crate::fetch::fetch_listing;
use crate::fleet::Listing;
use crate::fleet_app::FleetApp;
use crate::App;

enum Page {
    Deciding,
    /// A console, with the bridge's name for its VM when it has one.
    Console(Option<AttrValue>),
    List(Listing),
}

#[derive(Properties, PartialEq)]
pub struct RootProps {
    /// Where the page is, read once at start-up ([`PageUrl::from_window`]).
    pub page: Rc<PageUrl>,
}

#[function_component(Root)]
pub fn root(props: &RootProps) -> Html {
    let shown = use_state(|| Page::Deciding);
    {
        let shown = shown.clone();
        use_effect_with(props.page.clone(), move |page| {
            if page.is_console() {
                shown.set(Page::Console(page.location().1.map(AttrValue::from)));
            } else {
                let url = page.listing_url();
                wasm_bindgen_futures::spawn_local(async move {
                    match fetch_listing(&url).await {
                        Ok(l) if l.mode == ListMode::Fleet => shown.set(Page::List(l)),
                        // one VM: its name, as the bridge calls it
                        Ok(l) => {
                            let name = l.vms.first().map(|v| AttrValue::from(v.name.clone()));
                            shown.set(Page::Console(name));
                        }
                        Err(_) => shown.set(Page::Console(None)),
                    }
                });
            }
        });
    }
    match &*shown {
        Page::Deciding => {
            html! { <p class="muted" data-testid="loading">{ "qmp-console: loading…" }</p> }
        }
        Page::Console(vm) => html! {
            <App url={props.page.websocket_url()} screen={props.page.screen_urls()} vm={vm.clone()} />
        },
        Page::List(l) => html! { <FleetApp page={props.page.clone()} initial={l.clone()} /> },
    }
}
