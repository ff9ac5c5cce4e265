//! The console page: owns the socket and the [`Console`] state, reconnects with backoff,
//! keeps the form (its edits are [`Form::update`]'s) and its history in localStorage,
//! does the page's other I/O (clipboard, export download, `pagehide`/`pageshow`), and
//! lays the page out from views that only take props and callbacks.

use std::rc::Rc;

use gloo_storage::{LocalStorage, Storage};
use gloo_timers::callback::Timeout;
use qmp::schema::TypeNode;
use serde_json::Value;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use crate::components::{
    CommandForm, EntryActions, EntryRef, EventPanel, EventRef, FormMsg, Header, QuickAction,
    QuickActions, RcByPtr, Transcript, TypeRef,
};
use crate::editor::{Check, Field, Form, History, COMPLETIONS_SHOWN};
use crate::screen_panel::ScreenPanel;
use crate::socket::{now_ms, Socket};
use crate::state::{backoff_ms, Console, Input, Phase, Request};

const HISTORY_KEY: &str = "qmp-console.history";
const OOB_KEY: &str = "qmp-console.oob";
/// Automatic reconnect attempts after a close, before waiting for the user.
const MAX_RETRIES: u32 = 10;

/// Root component messages.
pub enum Msg {
    Socket(Input),
    Form(FormMsg),
    /// Connect (true) or disconnect (false), from the button.
    Connect(bool),
    /// The page was hidden for navigation (`pagehide`) or shown again (`pageshow`): a
    /// page kept in the back/forward cache must not keep holding its QMP session.
    PageVisible(bool),
    /// The backoff timer fired.
    Retry,
    Oob(bool),
    Action(QuickAction),
    Confirm(bool),
    Rerun(Request),
    Edit(Request),
    Copy(String),
    /// Something to tell the user (e.g. a copy that failed).
    Notice(String),
    DismissNotices,
    EventFilter(String),
    ClearEvents,
    ExportEvents,
}

/// The page's callbacks, made once: a callback made anew in every `view` would never
/// compare equal, and every component would render again at every message.
struct Links {
    oob: Callback<bool>,
    connect: Callback<bool>,
    action: Callback<QuickAction>,
    confirm: Callback<bool>,
    form: Callback<FormMsg>,
    entry: EntryActions,
    filter: Callback<String>,
    clear: Callback<()>,
    export: Callback<()>,
    dismiss: Callback<MouseEvent>,
}

impl Links {
    fn new(link: &yew::html::Scope<App>) -> Links {
        Links {
            oob: link.callback(Msg::Oob),
            connect: link.callback(Msg::Connect),
            action: link.callback(Msg::Action),
            confirm: link.callback(Msg::Confirm),
            form: link.callback(Msg::Form),
            entry: EntryActions {
                rerun: link.callback(Msg::Rerun),
                edit: link.callback(Msg::Edit),
                copy: link.callback(Msg::Copy),
            },
            filter: link.callback(Msg::EventFilter),
            clear: link.callback(|()| Msg::ClearEvents),
            export: link.callback(|()| Msg::ExportEvents),
            dismiss: link.callback(|_| Msg::DismissNotices),
        }
    }
}

#[derive(Properties, PartialEq)]
pub struct AppProps {
    /// The websocket to connect to (read at creation), e.g.
    /// [`PageUrl::websocket_url`](crate::endpoint::PageUrl::websocket_url).
    pub url: AttrValue,
    /// Where the VM's screen is read and its keys sent
    /// ([`PageUrl::screen_urls`](crate::endpoint::PageUrl::screen_urls)); none: no screen.
    #[prop_or_default]
    pub screen: Option<crate::endpoint::ScreenUrls>,
    /// The bridge's name for the VM (its `/vm/NAME`, or the one VM it serves), shown when
    /// QEMU has no `-name`.
    #[prop_or_default]
    pub vm: Option<AttrValue>,
}

/// The console page.
pub struct App {
    links: Links,
    console: Console,
    socket: Option<Socket>,
    form: Form,
    /// Why the last Send was refused (syntax error, schema problems).
    refused: Option<AttrValue>,
    /// The resolved argument type of the command named in the form.
    args_type: Option<(String, TypeRef)>,
    /// What pressing Send would do, and the name completions: derived from the form and
    /// the schema, recomputed when either changes (not at every render).
    check: Check,
    completions: Vec<AttrValue>,
    confirming: Option<QuickAction>,
    event_filter: String,
    /// Reconnect automatically after a close (off after Disconnect).
    auto: bool,
    attempt: u32,
    retry: Option<(Timeout, u32)>,
    /// The last export's object URL, kept until the next export so the download can read it.
    export_url: Option<gloo_file::ObjectUrl>,
    /// `pagehide` and `pageshow` listeners, removed with the component.
    _page_listeners: Vec<PageListener>,
    /// The document's title as last set.
    title: String,
}

/// A window event listener, removed when dropped.
struct PageListener {
    event: &'static str,
    closure: wasm_bindgen::closure::Closure<dyn FnMut(web_sys::Event)>,
}

impl PageListener {
    fn new(event: &'static str, on: yew::Callback<()>) -> Option<PageListener> {
        use wasm_bindgen::JsCast;
        let closure = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::Event)>::new(
            move |_: web_sys::Event| on.emit(()),
        );
        web_sys::window()?
            .add_event_listener_with_callback(event, closure.as_ref().unchecked_ref())
            .ok()?;
        Some(PageListener { event, closure })
    }
}

impl Drop for PageListener {
    fn drop(&mut self) {
        use wasm_bindgen::JsCast;
        if let Some(w) = web_sys::window() {
            let _ = w.remove_event_listener_with_callback(
                self.event,
                self.closure.as_ref().unchecked_ref(),
            );
        }
    }
}

impl App {
    /// The VM's name: QEMU's `-name`, else the bridge's.
    fn vm_name(&self, ctx: &Context<Self>) -> Option<AttrValue> {
        match self.console.qemu_name() {
            Some(n) => Some(AttrValue::from(n.to_owned())),
            None => ctx.props().vm.clone(),
        }
    }

    fn connect(&mut self, ctx: &Context<Self>) {
        self.retry = None;
        self.socket = None;
        self.console.connecting();
        match Socket::open(self.console.url(), ctx.link().callback(Msg::Socket)) {
            Ok(s) => self.socket = Some(s),
            Err(e) => self.on_closed(ctx, 0, e),
        }
    }

    fn on_closed(&mut self, ctx: &Context<Self>, code: u16, reason: String) {
        self.socket = None;
        self.console.handle(Input::Closed { code, reason });
        if self.auto && self.attempt < MAX_RETRIES {
            let ms = backoff_ms(self.attempt);
            self.attempt += 1;
            let link = ctx.link().clone();
            self.retry = Some((
                Timeout::new(ms, move || link.send_message(Msg::Retry)),
                ms.div_ceil(1000),
            ));
        }
    }

    fn transmit(&mut self, frames: Vec<String>) {
        for frame in frames {
            let result = match &self.socket {
                Some(s) => s.send(&frame).map(|_| ()),
                None => Err("not connected".into()),
            };
            if let Err(e) = result {
                self.console.notify(e);
            }
        }
    }

    /// Sends a request the user made; records it in the history.
    fn dispatch(&mut self, request: Request) {
        match self.console.send(request.clone(), now_ms()) {
            Ok(frame) => {
                self.transmit(vec![frame]);
                self.form.history.push(request);
                let _ = LocalStorage::set(HISTORY_KEY, self.form.history.to_json());
                self.refused = None;
            }
            Err(e) => self.refused = Some(format!("not sent: {e}").into()),
        }
    }

    /// Recomputes what the form shows from the form and the schema.
    fn refresh_form(&mut self) {
        let schema = self.console.schema().cloned();
        self.check = self.form.check(schema.as_deref());
        self.completions = self
            .form
            .completions(schema.as_deref(), COMPLETIONS_SHOWN)
            .into_iter()
            .map(AttrValue::from)
            .collect();
        self.refresh_args_type();
        self.ask_device();
    }

    /// `device_add` naming a driver: asks QEMU for its properties (once), so they complete,
    /// show and validate as the schema's members do.
    fn ask_device(&mut self) {
        if let Some(frame) = self
            .form
            .device_driver()
            .and_then(|d| self.console.ask_device(&d))
        {
            self.transmit(vec![frame]);
        }
    }

    /// Keeps `args_type` in step with the command named in the form.
    fn refresh_args_type(&mut self) {
        let name = self.form.command_name();
        if self.args_type.as_ref().is_some_and(|(n, _)| n == name) {
            return;
        }
        self.args_type = self.console.schema().and_then(|s| {
            let ty: TypeNode = s.argument_type(name).ok()?;
            Some((name.to_owned(), RcByPtr(Rc::new(ty))))
        });
    }

    fn form_msg(&mut self, msg: FormMsg) {
        if !msg.keeps_refusal() {
            self.refused = None;
        }
        let schema = self.console.schema().cloned();
        match self.form.update(msg, schema.as_deref()) {
            Ok(Some(request)) => self.dispatch(request),
            Ok(None) => {}
            Err(e) => self.refused = Some(e.into()),
        }
        self.refresh_form();
    }

    fn export_events(&mut self) {
        let text = self.console.events().export_jsonl();
        let blob = gloo_file::Blob::new_with_options(text.as_str(), Some("application/x-ndjson"));
        let url = gloo_file::ObjectUrl::from(blob);
        let anchor = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.create_element("a").ok())
            .and_then(|a| a.dyn_into::<web_sys::HtmlElement>().ok());
        if let Some(a) = anchor {
            let _ = a.set_attribute("href", &url);
            let _ = a.set_attribute("download", "qmp-events.jsonl");
            a.click();
        }
        self.export_url = Some(url);
    }
}

/// Puts `text` on the clipboard; a refusal comes back through `done` as a message. The
/// clipboard exists only in secure contexts (https, localhost): elsewhere it says so.
fn copy_to_clipboard(text: String, done: Callback<String>) {
    let Some(navigator) = web_sys::window().map(|w| w.navigator()) else {
        return;
    };
    let has_clipboard =
        js_sys::Reflect::get(&navigator, &"clipboard".into()).is_ok_and(|c| !c.is_undefined());
    if !has_clipboard {
        done.emit(
            "copy failed: no clipboard here (browsers offer it on https and localhost only)".into(),
        );
        return;
    }
    let promise = navigator.clipboard().write_text(&text);
    yew::platform::spawn_local(async move {
        if let Err(e) = wasm_bindgen_futures::JsFuture::from(promise).await {
            done.emit(format!(
                "copy failed: {}",
                e.as_string().unwrap_or_else(|| format!("{e:?}"))
            ));
        }
    });
}

impl Component for App {
    type Message = Msg;
    type Properties = AppProps;

    fn create(ctx: &Context<Self>) -> Self {
        let mut console = Console::new(ctx.props().url.to_string());
        console.set_want_oob(LocalStorage::get::<bool>(OOB_KEY).unwrap_or(false));
        let history = LocalStorage::get::<Value>(HISTORY_KEY)
            .map(|v| History::from_json(&v))
            .unwrap_or_default();
        let mut app = App {
            links: Links::new(ctx.link()),
            console,
            socket: None,
            form: Form {
                history,
                ..Form::default()
            },
            refused: None,
            args_type: None,
            check: Check::Empty,
            completions: Vec::new(),
            confirming: None,
            event_filter: String::new(),
            auto: true,
            attempt: 0,
            retry: None,
            export_url: None,
            _page_listeners: [
                PageListener::new(
                    "pagehide",
                    ctx.link().callback(|()| Msg::PageVisible(false)),
                ),
                PageListener::new("pageshow", ctx.link().callback(|()| Msg::PageVisible(true))),
            ]
            .into_iter()
            .flatten()
            .collect(),
            title: String::new(),
        };
        // keyboard first: the command name takes the keys from the start
        app.form.focus_on(Field::Name, None);
        app.connect(ctx);
        app
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Socket(Input::Closed { code, reason }) => self.on_closed(ctx, code, reason),
            Msg::Socket(input) => {
                let schema_before = self.console.schema().cloned();
                let frames = self.console.handle(input);
                self.transmit(frames);
                if self.console.is_ready() {
                    self.attempt = 0;
                }
                let same_schema = match (schema_before.as_ref(), self.console.schema()) {
                    (Some(a), Some(b)) => Rc::ptr_eq(a, b),
                    (None, None) => true,
                    _ => false,
                };
                if !same_schema {
                    // a (new) QEMU's schema: everything read from the old one goes
                    self.args_type = None;
                    self.refresh_form();
                }
            }
            Msg::Form(m) => self.form_msg(m),
            Msg::Connect(true) => {
                self.auto = true;
                self.attempt = 0;
                self.connect(ctx);
            }
            Msg::Connect(false) => {
                self.auto = false;
                self.retry = None;
                self.socket = None;
                self.console.handle(Input::Closed {
                    code: 1000,
                    reason: "disconnected by you".into(),
                });
            }
            Msg::PageVisible(false) => {
                self.retry = None;
                self.socket = None;
            }
            Msg::PageVisible(true) => {
                if self.socket.is_none() && self.auto {
                    self.attempt = 0;
                    self.connect(ctx);
                }
            }
            Msg::Retry => self.connect(ctx),
            Msg::Oob(on) => {
                let _ = LocalStorage::set(OOB_KEY, on);
                if self.console.set_want_oob(on) {
                    self.auto = true;
                    self.connect(ctx);
                }
            }
            Msg::Action(a) if a.destructive() => self.confirming = Some(a),
            Msg::Action(a) => self.dispatch(Request::command(a.command())),
            Msg::Confirm(yes) => {
                if let (true, Some(a)) = (yes, self.confirming) {
                    self.dispatch(Request::command(a.command()));
                }
                self.confirming = None;
            }
            Msg::Rerun(r) => self.dispatch(r),
            Msg::Edit(r) => {
                self.form.load(&r);
                self.refresh_form();
            }
            Msg::Copy(text) => {
                copy_to_clipboard(text, ctx.link().callback(Msg::Notice));
                return false;
            }
            Msg::Notice(text) => self.console.notify(text),
            Msg::DismissNotices => self.console.dismiss_notices(),
            Msg::EventFilter(f) => self.event_filter = f,
            Msg::ClearEvents => self.console.clear_events(),
            Msg::ExportEvents => {
                self.export_events();
                return false;
            }
        }
        true
    }

    fn rendered(&mut self, ctx: &Context<Self>, _first: bool) {
        // the tab says which VM it is
        let title = match self.vm_name(ctx) {
            Some(name) => format!("{name} · qmp-console"),
            None => "qmp-console".to_owned(),
        };
        if title != self.title {
            if let Some(d) = web_sys::window().and_then(|w| w.document()) {
                d.set_title(&title);
            }
            self.title = title;
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let c = &self.console;
        let l = &self.links;
        let schema = c.schema();
        let check = self.check.clone();
        let completions = self.completions.clone();
        let shown: Vec<EventRef> = c
            .events()
            .shown(&self.event_filter)
            .into_iter()
            .map(RcByPtr)
            .collect();
        let counts: Vec<(AttrValue, u64)> = c
            .events()
            .counts()
            .map(|(n, k)| (AttrValue::from(n.to_owned()), k))
            .collect();
        let entries: Vec<EntryRef> = c.transcript().iter().cloned().map(RcByPtr).collect();
        let ready = c.is_ready();
        let retry_in = self.retry.as_ref().map(|(_, s)| *s);
        let schema_note = match (c.phase(), schema) {
            (Phase::Ready, None) => Some("reading QEMU's schema…"),
            _ => None,
        };
        html! {
            <div class="console">
                <Header url={c.url().to_owned()} phase={c.phase().clone()} greeting={c.greeting().cloned()}
                        vm_name={self.vm_name(ctx)}
                        vm_status={c.vm_status().map(|s| AttrValue::from(s.to_owned()))}
                        enabled={c.enabled().iter().cloned().map(AttrValue::from).collect::<Vec<_>>()}
                        want_oob={c.want_oob()} on_oob={l.oob.clone()}
                        {retry_in} on_connect={l.connect.clone()} />
                <QuickActions enabled={ready} confirming={self.confirming}
                              vm_status={c.vm_status().map(|s| AttrValue::from(s.to_owned()))}
                              on_action={l.action.clone()} on_confirm={l.confirm.clone()} />
                if !c.notices().is_empty() || schema_note.is_some() {
                    <ul class="notices">
                        { for schema_note.map(|n| html! { <li class="muted">{ n }</li> }) }
                        { for c.notices().iter().rev().take(4).map(|n| html! { <li class="notice">{ n.0.clone() }</li> }) }
                        if !c.notices().is_empty() {
                            <li><button onclick={l.dismiss.clone()} data-testid="dismiss-notices">{ "Dismiss" }</button></li>
                        }
                    </ul>
                }
                <main class="panes">
                    <div class="left">
                        <CommandForm form={self.form.clone()} {check} {completions}
                                     args_type={self.args_type.as_ref().map(|(_, t)| t.clone())}
                                     {ready} refused={self.refused.clone()} on={l.form.clone()} />
                        <Transcript {entries} actions={l.entry.clone()} />
                    </div>
                    <div class="right">
                        if let Some(urls) = &ctx.props().screen {
                            <ScreenPanel urls={urls.clone()} />
                        }
                        <EventPanel {shown} {counts} total={c.events().total()} dropped={c.events().dropped()} filter={AttrValue::from(self.event_filter.clone())}
                                    on_filter={l.filter.clone()}
                                    on_clear={l.clear.clone()}
                                    on_export={l.export.clone()} />
                    </div>
                </main>
            </div>
        }
    }
}
