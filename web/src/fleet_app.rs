//! The VM list page of a bridge serving many VMs: keeps the list current and runs the
//! rows' quick actions (both through [`crate::hooks`]), and shows them with
//! [`VmList`].

use std::rc::Rc;

use yew::prelude::*;

use crate::components::vm_list::VmList;
use crate::endpoint::PageUrl;
use crate::fleet::Listing;
use crate::hooks::{use_listing, use_vm_actions};

#[derive(Properties, PartialEq)]
pub struct FleetAppProps {
    /// Where the page is.
    pub page: Rc<PageUrl>,
    /// The first answer of `/api/vms` (refreshed from then on).
    pub initial: Listing,
}

#[function_component(FleetApp)]
pub fn fleet_app(props: &FleetAppProps) -> Html {
    let polled = use_listing(props.initial.clone(), props.page.listing_url());
    let names = polled
        .listing
        .vms
        .iter()
        .map(|vm| vm.name.clone())
        .collect();
    let actions = use_vm_actions(props.page.clone(), names);
    html! {
        <VmList listing={polled.listing} error={polled.error.map(AttrValue::from)}
                page={props.page.clone()} results={actions.results} on_action={actions.run}
                on_start={actions.start} />
    }
}
