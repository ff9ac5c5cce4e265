//! [`use_vm_actions`]: the VM list's quick actions. Each is a one-shot QMP exchange
//! ([`OneShot`]) on the VM's own websocket, exactly as a console would do it, so the
//! bridge's token, policy and audit log apply.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use yew::prelude::*;

use crate::components::vm_list::ActionResult;
use crate::components::QuickAction;
use crate::endpoint::PageUrl;
use crate::fleet::OneShot;
use crate::socket::Socket;

/// Each VM's last quick action, by name.
#[derive(Debug, Default, PartialEq)]
struct Results(HashMap<String, ActionResult>);

enum Change {
    Set(String, ActionResult),
    /// Only these VMs are still listed: forget the others.
    Keep(Vec<String>),
}

impl Reducible for Results {
    type Action = Change;

    fn reduce(self: Rc<Self>, change: Change) -> Rc<Self> {
        let mut map = self.0.clone();
        match change {
            Change::Set(name, result) => {
                map.insert(name, result);
            }
            Change::Keep(names) => map.retain(|name, _| names.contains(name)),
        }
        Rc::new(Results(map))
    }
}

/// Where the VMs' quick actions stand, and the callback that starts one.
#[derive(Debug, Clone, PartialEq)]
pub struct VmActions {
    /// By VM name: `Ok("Pause…")` while it runs, `Ok("Pause: done")`, or `Err(why)`.
    pub results: HashMap<String, ActionResult>,
    /// Runs `action` on the VM named.
    pub run: Callback<(String, QuickAction)>,
    /// Starts the shut-off VM named (a libvirt domain), through the bridge's endpoint.
    pub start: Callback<String>,
}

/// The running exchanges' sockets, by VM name, each with the run it belongs to.
type Sockets = Rc<RefCell<HashMap<String, (u64, Socket)>>>;

/// Quick actions on the VMs of the list at `page`; `names` are the VMs listed now (what
/// is known of the others is dropped, and their sockets closed).
#[hook]
pub fn use_vm_actions(page: Rc<PageUrl>, names: Vec<String>) -> VmActions {
    let results = use_reducer(Results::default);
    let sockets: Sockets = use_mut_ref(HashMap::new);
    let runs = use_mut_ref(|| 0u64);
    {
        let (results, sockets) = (results.dispatcher(), sockets.clone());
        use_effect_with(names, move |names| {
            sockets.borrow_mut().retain(|name, _| names.contains(name));
            results.dispatch(Change::Keep(names.clone()));
        });
    }
    let run = {
        let results = results.dispatcher();
        use_callback(
            page.clone(),
            move |(name, action): (String, QuickAction), page| {
                let run = {
                    let mut runs = runs.borrow_mut();
                    *runs += 1;
                    *runs
                };
                let on_input = {
                    let (results, sockets, name) = (results.clone(), sockets.clone(), name.clone());
                    let shot = RefCell::new(OneShot::new(action.command()));
                    Callback::from(move |input| {
                        let step = shot.borrow_mut().step(input);
                        if let Some((_, s)) = sockets.borrow().get(&name) {
                            for frame in &step.send {
                                let _ = s.send(frame);
                            }
                        }
                        if let Some(done) = step.done {
                            let done = done.map(|()| format!("{}: done", action.label()));
                            results.dispatch(Change::Set(name.clone(), done));
                            // not from inside the socket's own callback
                            let (sockets, name) = (sockets.clone(), name.clone());
                            wasm_bindgen_futures::spawn_local(async move {
                                let mut sockets = sockets.borrow_mut();
                                if sockets.get(&name).is_some_and(|(r, _)| *r == run) {
                                    sockets.remove(&name);
                                }
                            });
                        }
                    })
                };
                results.dispatch(Change::Set(
                    name.clone(),
                    Ok(format!("{}…", action.label())),
                ));
                match Socket::open(&page.vm_websocket_url(&name), on_input) {
                    Ok(s) => {
                        sockets.borrow_mut().insert(name, (run, s));
                    }
                    Err(e) => results.dispatch(Change::Set(name, Err(e))),
                }
            },
        )
    };
    let start = {
        let results = results.dispatcher();
        use_callback(page, move |name: String, page| {
            let (results, url) = (results.clone(), page.start_url(&name));
            results.dispatch(Change::Set(name.clone(), Ok("Start…".into())));
            wasm_bindgen_futures::spawn_local(async move {
                let done = crate::fetch::post_text(&url)
                    .await
                    .map(|_| "Start: done".to_owned());
                results.dispatch(Change::Set(name, done));
            });
        })
    };
    VmActions {
        results: results.0.clone(),
        run,
        start,
    }
}
