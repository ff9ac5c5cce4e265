//! The VM list page of a bridge serving many VMs: keeps the list current, runs the rows'
//! quick actions and reads each VM's screen for its thumbnail (all through
//! [`crate::hooks`]), and shows them with [`VmList`].

use std::rc::Rc;

use qmp::vm_list::VmState;
use yew::prelude::*;

use crate::components::vm_list::VmList;
use crate::endpoint::PageUrl;
use crate::fleet::Listing;
use crate::hooks::{use_listing, use_thumbnails, use_vm_actions};

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
    let names: Vec<String> = polled
        .listing
        .vms
        .iter()
        .map(|vm| vm.name.clone())
        .collect();
    // only VMs that are up have a screen to read
    let up = polled
        .listing
        .vms
        .iter()
        .filter(|vm| vm.state == VmState::Up)
        .map(|vm| vm.name.clone())
        .collect();
    let thumbs = use_thumbnails(props.page.clone(), up);
    let actions = use_vm_actions(props.page.clone(), names);
    html! {
        <VmList listing={polled.listing} error={polled.error.map(AttrValue::from)}
                page={props.page.clone()} results={actions.results} on_action={actions.run}
                on_start={actions.start} {thumbs} />
    }
}
