//! The VM's screen in the console: the picture, focusable so that keys typed (and text
//! pasted) while it has the focus go to the VM, clicked to click there (where the VM has
//! an absolute pointer), and a "send Ctrl-Alt-Del" button. It
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
    /// A click on the picture: where (0 to 1 across it, left to right and top to bottom)
    /// and which button (`left`, `middle`, `right`).
    #[prop_or_default]
    pub on_click: Callback<(f64, f64, &'static str)>,
}

/// Where a mouse event is on the element it targets, from 0 to 1 across it.
fn fraction(e: &MouseEvent) -> Option<(f64, f64)> {
    let el = e.target()?.dyn_into::<web_sys::Element>().ok()?;
    let rect = el.get_bounding_client_rect();
    if rect.width() <= 0.0 || rect.height() <= 0.0 {
        return None;
    }
    let x = (f64::from(e.client_x()) - rect.left()) / rect.width();
    let y = (f64::from(e.client_y()) - rect.top()) / rect.height();
    Some((x.clamp(0.0, 1.0), y.clamp(0.0, 1.0)))
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
    let on_click = props.on_click.clone();
    let onmousedown = Callback::from(move |e: MouseEvent| {
        let button = match e.button() {
            0 => "left",
            1 => "middle",
            2 => "right",
            _ => return,
        };
        if let Some((x, y)) = fraction(&e) {
            e.prevent_default();
            on_click.emit((x, y, button));
        }
    });
    // the right button clicks in the VM, not the page's menu
    let oncontextmenu = Callback::from(|e: MouseEvent| e.prevent_default());
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
                    <img src={src.clone()} alt="the VM's screen" draggable="false"
                         {onmousedown} {oncontextmenu} />
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
