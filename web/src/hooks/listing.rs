//! [`use_listing`]: the bridge's VM list, kept current by polling.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use yew::prelude::*;

use crate::fetch::fetch_listing;
use crate::fleet::Listing;

/// How often the list is refreshed, in milliseconds.
pub const REFRESH_MS: u64 = 1000;

/// The last list read, and why the last refresh failed (cleared by the next success).
#[derive(Debug, Clone, PartialEq)]
pub struct Polled {
    pub listing: Listing,
    pub error: Option<String>,
}

/// Starts from `initial` and reads `url` (`/api/vms`) again every [`REFRESH_MS`] while
/// the component lives.
#[hook]
pub fn use_listing(initial: Listing, url: String) -> Polled {
    let listing = use_state(|| initial);
    let error = use_state(|| None::<String>);
    {
        let (listing, error) = (listing.clone(), error.clone());
        use_effect_with(url, move |url| {
            let url = url.clone();
            let alive = Rc::new(Cell::new(true));
            let running = alive.clone();
            wasm_bindgen_futures::spawn_local(async move {
                while running.get() {
                    yew::platform::time::sleep(Duration::from_millis(REFRESH_MS)).await;
                    if !running.get() {
                        break;
                    }
                    match fetch_listing(&url).await {
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
    Polled {
        listing: (*listing).clone(),
        error: (*error).clone(),
    }
}
