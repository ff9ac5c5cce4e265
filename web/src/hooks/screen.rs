//! [`use_live_screen`]: a VM's screen, read about once a second; [`use_thumbnails`]: every
//! listed VM's screen, read every few seconds and less often while it does not change.
//! Neither reads anything while the page is hidden (another tab, a minimised window).

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use yew::prelude::*;

use crate::endpoint::PageUrl;
use crate::fetch::{fetch_picture, Picture};
use crate::screen::{Read, Schedule, Shown};
use crate::socket::now_ms;

/// True while the page is not visible.
fn page_hidden() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.hidden())
}

async fn sleep_ms(ms: u32) {
    yew::platform::time::sleep(Duration::from_millis(u64::from(ms))).await;
}

/// The picture at `url` (`vm/NAME/screen.png`), read every
/// [`LIVE_MS`](crate::screen::LIVE_MS) while the page is
/// visible and the component lives (less often while it cannot be had: [`Schedule::live`]).
#[hook]
pub fn use_live_screen(url: String) -> Shown {
    let shown = use_state(Shown::default);
    {
        let shown = shown.clone();
        use_effect_with(url, move |url| {
            let url = url.clone();
            let alive = Rc::new(Cell::new(true));
            let running = alive.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let mut schedule = Schedule::live();
                let mut current = Shown::default();
                while running.get() {
                    if !page_hidden() {
                        let (read, next) =
                            read_into(&url, schedule.etag.as_deref(), &current).await;
                        schedule.read(now_ms(), read);
                        if let Some(next) = next {
                            current = next;
                            if running.get() {
                                shown.set(current.clone());
                            }
                        }
                    }
                    sleep_ms(schedule.delay()).await;
                }
            });
            move || alive.set(false)
        });
    }
    (*shown).clone()
}

/// Reads the picture at `url` (sending `etag`, the last one's): what the read brought,
/// and what to show instead of `current`, if that changes.
async fn read_into(url: &str, etag: Option<&str>, current: &Shown) -> (Read, Option<Shown>) {
    match fetch_picture(url, etag).await {
        Ok(Picture::New { blob, etag }) => (
            Read::New(etag),
            Some(current.picture(gloo_file::ObjectUrl::from(blob))),
        ),
        Ok(Picture::Unchanged) => {
            let recovered = current.problem.is_some().then(|| Shown {
                problem: None,
                ..current.clone()
            });
            (Read::Same, recovered)
        }
        Err(why) => {
            let news = (current.problem.as_ref() != Some(&why)).then(|| current.failed(why));
            (Read::Failed, news)
        }
    }
}

/// How often the thumbnails' loop looks at which are due, in ms.
const THUMB_TICK_MS: u32 = 500;

/// Every VM in `names`' screen, by name ([`PageUrl::vm_screen_url`]), each on its own
/// [`Schedule`].
#[hook]
pub fn use_thumbnails(page: Rc<PageUrl>, names: Vec<String>) -> HashMap<String, Shown> {
    let thumbs = use_state(HashMap::<String, Shown>::new);
    let listed = use_mut_ref(Vec::<String>::new);
    *listed.borrow_mut() = names;
    {
        let thumbs = thumbs.clone();
        use_effect_with(page, move |page| {
            let page = page.clone();
            let alive = Rc::new(Cell::new(true));
            let running = alive.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let mut schedules: HashMap<String, Schedule> = HashMap::new();
                let mut current: HashMap<String, Shown> = HashMap::new();
                while running.get() {
                    let names = listed.borrow().clone();
                    schedules.retain(|n, _| names.contains(n));
                    let mut changed = current.len();
                    current.retain(|n, _| names.contains(n));
                    changed -= current.len();
                    for name in names.iter().filter(|_| !page_hidden()) {
                        let schedule = schedules
                            .entry(name.clone())
                            .or_insert_with(Schedule::thumbnail);
                        if !schedule.is_due(now_ms()) {
                            continue;
                        }
                        let shown = current.entry(name.clone()).or_default();
                        let url = page.vm_screen_url(name);
                        let (read, next) = read_into(&url, schedule.etag.as_deref(), shown).await;
                        schedule.read(now_ms(), read);
                        if let Some(next) = next {
                            *shown = next;
                            changed += 1;
                        }
                    }
                    if changed > 0 && running.get() {
                        thumbs.set(current.clone());
                    }
                    sleep_ms(THUMB_TICK_MS).await;
                }
            });
            move || alive.set(false)
        });
    }
    (*thumbs).clone()
}
