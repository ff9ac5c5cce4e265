//! The VM's screen in the console: the picture, focusable so that keys typed (and text
//! pasted) while it has the focus go to the VM, and a "send Ctrl-Alt-Del" button. It
//! shows what it is given and reports the keys; which chords they make and the sending
//! are the owner's ([`crate::screen_panel`]).

use wasm_bindgen::JsCast;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct ScreenViewProps {
    /// The picture's URL (an object URL of the last PNG read).
    #[prop_or_default]
    pub src: Option<AttrValue>,
    /// Pictures read so far.
    #[prop_or_default]
    pub frames: u64,
    /// Why there is no (new) picture: no display, QEMU not answering, ...
    #[prop_or_default]
    pub problem: Option<AttrValue>,
    /// How the typing goes (a refusal, say).
    #[prop_or_default]
    pub note: Option<AttrValue>,
    #[prop_or_default]
    pub on_keydown: Callback<KeyboardEvent>,
    #[prop_or_default]
    pub on_keyup: Callback<KeyboardEvent>,
    /// The view lost the focus.
    #[prop_or_default]
    pub on_blur: Callback<()>,
    /// Text pasted into the view.
    #[prop_or_default]
    pub on_paste: Callback<String>,
    /// The Ctrl-Alt-Del button.
    #[prop_or_default]
    pub on_ctrl_alt_del: Callback<()>,
}

#[function_component(ScreenView)]
pub fn screen_view(props: &ScreenViewProps) -> Html {
    let on_paste = props.on_paste.clone();
    let onpaste = Callback::from(move |e: Event| {
        let text = e
            .dyn_ref::<web_sys::ClipboardEvent>()
            .and_then(|c| c.clipboard_data())
            .and_then(|d| d.get_data("text/plain").ok());
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            e.prevent_default();
            on_paste.emit(text);
        }
    });
    let onblur = props.on_blur.reform(|_: FocusEvent| ());
    let cad = props.on_ctrl_alt_del.reform(|_: MouseEvent| ());
    html! {
        <section class="screen-pane">
            <div class="bar">
                <h2>{ "Screen" }</h2>
                <span class="muted">{ "click it and type; paste types text" }</span>
                <span class="spacer"></span>
                <button data-testid="send-ctrl-alt-del" onclick={cad} title="send Ctrl-Alt-Del to the VM">
                    { "Ctrl-Alt-Del" }
                </button>
            </div>
            <div class="screen" data-testid="screen" tabindex="0" data-frames={props.frames.to_string()}
                 onkeydown={props.on_keydown.clone()} onkeyup={props.on_keyup.clone()} {onblur} {onpaste}>
                if let Some(src) = &props.src {
                    <img src={src.clone()} alt="the VM's screen" draggable="false" />
                }
                if let Some(problem) = &props.problem {
                    <p class="screen-problem" data-testid="screen-problem">{ problem.clone() }</p>
                } else if props.src.is_none() {
                    <p class="screen-problem muted">{ "reading the screen…" }</p>
                }
            </div>
            if let Some(note) = &props.note {
                <div class="screen-note" data-testid="screen-note">{ note.clone() }</div>
            }
        </section>
    }
}
