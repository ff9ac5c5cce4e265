//! The command form: JSON / Shell / HMP / Raw modes, the command name (or the qmp-shell
//! line) with completion from the schema, the chosen command's arguments, the JSON editor
//! with live syntax errors and schema problems, and Send / Send anyway.
//!
//! Keys: Ctrl+Enter sends (anywhere in the form), Enter in a one-line input sends (or
//! completes a command name, [`FormMsg::Enter`]), Esc clears, Up/Down in the one-line
//! inputs (Ctrl+Up/Down in the text areas) walk the history, Tab takes the first
//! completion.
//! The form's [`FocusRequest`](crate::editor::FocusRequest)s move the keyboard focus (and
//! the caret) into its fields.

use std::rc::Rc;

use qmp::schema::{Arg, TypeNode};
use web_sys::{HtmlInputElement, HtmlTextAreaElement};
use yew::prelude::*;

use super::RcByPtr;
pub use crate::editor::FormMsg;
use crate::editor::{Check, Field, FocusRequest, Form, Mode};
use crate::hooks::use_toggle;

/// A resolved argument type shared by pointer.
pub type TypeRef = RcByPtr<TypeNode>;

#[derive(Properties, PartialEq)]
pub struct CommandFormProps {
    pub form: Form,
    pub check: Check,
    /// Names completing what was typed.
    #[prop_or_default]
    pub completions: Vec<AttrValue>,
    /// The chosen command's argument type, when the schema knows it.
    #[prop_or_default]
    pub args_type: Option<TypeRef>,
    /// Connected and negotiated: Send is enabled.
    pub ready: bool,
    /// The last Send was refused: why.
    #[prop_or_default]
    pub refused: Option<AttrValue>,
    pub on: Callback<FormMsg>,
}

fn keys(
    on: &Callback<FormMsg>,
    line: bool,
    complete: Option<AttrValue>,
) -> Callback<KeyboardEvent> {
    let on = on.clone();
    Callback::from(move |e: KeyboardEvent| {
        let ctrl = e.ctrl_key() || e.meta_key();
        let msg = match e.key().as_str() {
            "Enter" if ctrl => Some(FormMsg::Send(false)),
            "Enter" if line => Some(FormMsg::Enter),
            "Escape" => Some(FormMsg::Clear),
            "ArrowUp" if line || ctrl => Some(FormMsg::Recall(true)),
            "ArrowDown" if line || ctrl => Some(FormMsg::Recall(false)),
            "Tab" if !e.shift_key() => complete.clone().map(|n| FormMsg::Choose(n.to_string())),
            _ => None,
        };
        if let Some(msg) = msg {
            e.prevent_default();
            on.emit(msg);
        }
    })
}

/// The form's fields, to move the focus into.
#[derive(Default, Clone, PartialEq)]
struct Refs {
    name: NodeRef,
    args: NodeRef,
    shell: NodeRef,
    hmp: NodeRef,
    raw: NodeRef,
}

impl Refs {
    /// Focuses the requested field (once it is on the page) and places the caret.
    fn apply(&self, request: &FocusRequest) {
        let node = match request.field {
            Field::Name => &self.name,
            Field::Args => &self.args,
            Field::Shell => &self.shell,
            Field::Hmp => &self.hmp,
            Field::Raw => &self.raw,
        };
        if let Some(input) = node.cast::<HtmlInputElement>() {
            let _ = input.focus();
            if let Some(c) = request.caret {
                let _ = input.set_selection_range(c as u32, c as u32);
            }
        } else if let Some(area) = node.cast::<HtmlTextAreaElement>() {
            let _ = area.focus();
            if let Some(c) = request.caret {
                let _ = area.set_selection_range(c as u32, c as u32);
            }
        }
    }
}

#[function_component(CommandForm)]
pub fn command_form(props: &CommandFormProps) -> Html {
    let form = &props.form;
    let on = &props.on;
    let refs = use_memo((), |()| Refs::default());
    {
        let refs = refs.clone();
        use_effect_with(form.focus, move |request| {
            if let Some(r) = request {
                refs.apply(r);
            }
        });
    }
    let tabs = Mode::ALL.iter().map(|&m| {
        let onclick = on.reform(move |_: MouseEvent| FormMsg::Mode(m));
        html! {
            <button role="tab" aria-selected={(form.mode == m).to_string()}
                    class={classes!("tab", (form.mode == m).then_some("active"))}
                    data-testid={format!("mode-{}", m.label().to_ascii_lowercase())} {onclick}>
                { m.label() }
            </button>
        }
    });
    let value_of_input = |f: fn(String) -> FormMsg| {
        on.reform(move |e: InputEvent| f(e.target_unchecked_into::<HtmlInputElement>().value()))
    };
    let value_of_area = |f: fn(String) -> FormMsg| {
        on.reform(move |e: InputEvent| f(e.target_unchecked_into::<HtmlTextAreaElement>().value()))
    };
    // Tab takes the first completion
    let complete = props.completions.first().cloned();
    let chips = || {
        html! {
            <div class="completions">
                { for props.completions.iter().map(|c| {
                    let onclick = on.reform({
                        let c = c.to_string();
                        move |_: MouseEvent| FormMsg::Choose(c.clone())
                    });
                    html! { <button class="completion" {onclick}>{ c.clone() }</button> }
                }) }
            </div>
        }
    };
    // (each optional part is one node, present or not: a list whose length changes
    // makes the nodes before it be made anew, and the focus lost)
    let hints = props
        .args_type
        .as_ref()
        .map(|t| html! { <ArgsView ty={t.clone()} /> });
    // arguments kept from another command: say so, and offer this one's template
    let kept = form.kept_from.as_ref().map(|old| {
        let name = form.name.trim().to_owned();
        let onclick = on.reform({
            let name = name.clone();
            move |_: MouseEvent| FormMsg::Choose(name.clone())
        });
        html! {
            <div class="hint kept" data-testid="args-kept">
                { format!("These arguments were written for {old}; kept as you edited them. ") }
                <button {onclick} data-testid="use-template">{ format!("Use {name}'s template") }</button>
            </div>
        }
    });
    let body = match form.mode {
        Mode::Json => {
            html! {
                <>
                    <div class="row">
                        <label for="command-name">{ "command" }</label>
                        <input id="command-name" class="mono" data-testid="command-name" autocomplete="off" ref={refs.name.clone()}
                               spellcheck="false" placeholder="query-status" value={form.name.clone()}
                               oninput={value_of_input(FormMsg::Name)} onkeydown={keys(on, true, complete.clone())} />
                    </div>
                    { chips() }
                    { hints.clone().unwrap_or_default() }
                    { kept.unwrap_or_default() }
                    <textarea class="mono args" data-testid="command-args" spellcheck="false" rows="8" ref={refs.args.clone()}
                              placeholder="arguments as JSON, e.g. {\"id\": \"net0\"} (empty: none)"
                              value={form.args.clone()} oninput={value_of_area(FormMsg::Args)}
                              onkeydown={keys(on, false, None)} />
                </>
            }
        }
        Mode::Shell => html! {
            <>
                <div class="row">
                    <label for="shell-line" title="qmp-shell's syntax: COMMAND key=value ... (JSON values, dotted keys nest)">{ "(qmp)" }</label>
                    <input id="shell-line" class="mono" data-testid="shell-line" autocomplete="off" spellcheck="false" ref={refs.shell.clone()}
                           placeholder="device_add driver=virtio-net-pci netdev=n1 id=nic1" value={form.shell.clone()}
                           oninput={value_of_input(FormMsg::Shell)} onkeydown={keys(on, true, complete.clone())} />
                </div>
                { chips() }
                { hints.clone().unwrap_or_default() }
            </>
        },
        Mode::Hmp => html! {
            <div class="row">
                <label for="hmp-line">{ "(hmp)" }</label>
                <input id="hmp-line" class="mono" data-testid="hmp-line" autocomplete="off" spellcheck="false" ref={refs.hmp.clone()}
                       placeholder="info status" value={form.hmp.clone()}
                       oninput={value_of_input(FormMsg::Hmp)} onkeydown={keys(on, true, None)} />
            </div>
        },
        Mode::Raw => html! {
            <textarea class="mono args" data-testid="raw-text" spellcheck="false" rows="8" ref={refs.raw.clone()}
                      placeholder="{\"exec-oob\": \"migrate-pause\", \"id\": \"p1\"}" value={form.raw.clone()}
                      oninput={value_of_area(FormMsg::Raw)} onkeydown={keys(on, false, None)} />
        },
    };
    let (syntax, problems) = match &props.check {
        Check::Syntax(e) => (Some(e.to_string()), Vec::new()),
        Check::Shell(e) => (Some(e.clone()), Vec::new()),
        Check::Request {
            problems,
            placeholders,
            ..
        } => (
            None,
            placeholders
                .iter()
                .map(|p| format!("{}: empty placeholder, to fill in", p.path))
                .chain(problems.iter().cloned())
                .collect(),
        ),
        Check::Empty => (None, Vec::new()),
    };
    let raw_hint = (form.mode == Mode::Raw)
        .then(|| crate::editor::parse_args(&form.raw).err())
        .flatten()
        .map(|e| format!("not JSON ({e}): it is sent as typed anyway"));
    let can_send = props.ready && matches!(props.check, Check::Request { .. });
    let json_tools = (form.mode == Mode::Json).then(|| html! {
        <>
            <button onclick={on.reform(|_: MouseEvent| FormMsg::Format)} data-testid="format">{ "Format" }</button>
            <button onclick={on.reform(|_: MouseEvent| FormMsg::Minify)} data-testid="minify">{ "Minify" }</button>
        </>
    });
    html! {
        <section class="form" aria-label="Command">
            <div class="tabs" role="tablist">{ for tabs }</div>
            { body }
            if let Some(s) = syntax {
                <div class="syntax-error" data-testid="syntax-error">{ s }</div>
            }
            if let Some(h) = raw_hint {
                <div class="hint">{ h }</div>
            }
            if !problems.is_empty() {
                <ul class="problems" data-testid="problems">
                    { for problems.iter().map(|p| html! { <li>{ p.clone() }</li> }) }
                </ul>
            }
            <div class="buttons">
                { json_tools.unwrap_or_default() }
                <span class="spacer"></span>
                if let Some(r) = props.refused.clone() {
                    <span class="refused" data-testid="refused">{ r }</span>
                }
                if !problems.is_empty() {
                    <button onclick={on.reform(|_: MouseEvent| FormMsg::Send(true))} disabled={!can_send}
                            class="danger" data-testid="send-anyway">{ "Send anyway" }</button>
                }
                <button class="primary" onclick={on.reform(|_: MouseEvent| FormMsg::Send(false))}
                        disabled={!props.ready} data-testid="send" title="Ctrl+Enter">{ "Send" }</button>
            </div>
        </section>
    }
}

#[derive(Properties, PartialEq)]
pub struct ArgsViewProps {
    pub ty: TypeRef,
}

/// The arguments a command takes: name, type, required or optional, enum values, nested
/// members and union variants (opened on demand).
#[function_component(ArgsView)]
pub fn args_view(props: &ArgsViewProps) -> Html {
    match &*props.ty.0 {
        TypeNode::Object {
            members, variants, ..
        } if members.is_empty() && variants.is_empty() => {
            html! { <div class="args-view muted" data-testid="args-view">{ "no arguments" }</div> }
        }
        _ => html! {
            <div class="args-view" data-testid="args-view">
                <TypeView node={props.ty.0.clone()} />
            </div>
        },
    }
}

#[derive(Properties, PartialEq)]
struct TypeViewProps {
    node: Rc<TypeNode>,
}

/// The members (and variants) of an object type, one line each.
#[function_component(TypeView)]
fn type_view(props: &TypeViewProps) -> Html {
    let TypeNode::Object {
        members,
        tag,
        variants,
    } = &*props.node
    else {
        return html! {};
    };
    html! {
        <ul class="args">
            { for members.iter().map(|a| html! { <ArgLine arg={Rc::new(a.clone())} /> }) }
            { for tag.iter().flat_map(|tag| variants.iter().map(move |(case, own)| {
                let node = TypeNode::Object { members: own.clone(), tag: None, variants: vec![] };
                html! { <Variant tag={tag.clone()} case={case.clone()} node={Rc::new(node)} /> }
            })) }
        </ul>
    }
}

#[derive(Properties, PartialEq)]
struct VariantProps {
    tag: AttrValue,
    case: AttrValue,
    node: Rc<TypeNode>,
}

#[function_component(Variant)]
fn variant(props: &VariantProps) -> Html {
    let (open, toggle) = use_toggle(false);
    let empty = matches!(&*props.node, TypeNode::Object { members, .. } if members.is_empty());
    html! {
        <li class="variant">
            <button class="toggle" onclick={toggle} disabled={empty}>
                { if empty { "  " } else if open { "▾ " } else { "▸ " } }
                { format!("when {} = {}", props.tag, props.case) }
            </button>
            if open { <TypeView node={props.node.clone()} /> }
        </li>
    }
}

#[derive(Properties, PartialEq)]
struct ArgLineProps {
    arg: Rc<Arg>,
}

fn nested(ty: &TypeNode) -> Option<&TypeNode> {
    match ty {
        TypeNode::Object { .. } => Some(ty),
        TypeNode::Array(e) => nested(e),
        TypeNode::Alternate(alts) => alts.iter().find_map(nested),
        _ => None,
    }
}

#[function_component(ArgLine)]
fn arg_line(props: &ArgLineProps) -> Html {
    let a = &props.arg;
    let (open, toggle) = use_toggle(false);
    let inner = nested(&a.ty).cloned();
    let values = a.ty.enum_values().map(|v| {
        let shown: Vec<&str> = v.iter().take(40).map(String::as_str).collect();
        let more = if v.len() > shown.len() {
            format!(" … ({} in all)", v.len())
        } else {
            String::new()
        };
        html! { <span class="enum">{ format!("{}{more}", shown.join(" | ")) }</span> }
    });
    html! {
        <li class="arg" data-name={a.name.clone()}>
            if inner.is_some() {
                <button class="toggle" onclick={toggle}>{ if open { "▾" } else { "▸" } }</button>
            }
            <span class="name mono">{ a.name.clone() }</span>
            <span class="type">{ a.ty.label() }</span>
            <span class={if a.required { "req" } else { "opt" }}>{ if a.required { "required" } else { "optional" } }</span>
            { for values }
            if let Some(d) = a.description.clone() {
                <span class="desc">{ d }</span>
            }
            if open {
                if let Some(node) = inner { <TypeView node={Rc::new(node)} /> }
            }
        </li>
    }
}
