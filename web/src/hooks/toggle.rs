//! [`use_toggle`]: an on/off state and the click that flips it.

use yew::prelude::*;

/// An on/off state (a node open or closed, scrolling paused or not) and the click
/// callback that flips it.
#[hook]
pub fn use_toggle(initial: bool) -> (bool, Callback<MouseEvent>) {
    let state = use_state(|| initial);
    let flip = {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| state.set(!*state))
    };
    (*state, flip)
}
