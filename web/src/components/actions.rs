//! Quick actions on the VM, and the in-page confirmation the destructive ones ask for
//! (a page element, not `window.confirm`, so it can be scripted and tested).

use yew::prelude::*;

/// A one-click command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuickAction {
    Pause,
    Resume,
    Reset,
    PowerDown,
    Quit,
}

impl QuickAction {
    pub const ALL: [QuickAction; 5] = [
        QuickAction::Pause,
        QuickAction::Resume,
        QuickAction::Reset,
        QuickAction::PowerDown,
        QuickAction::Quit,
    ];

    /// The ones each row of the VM list offers.
    pub const ROW: [QuickAction; 4] = [
        QuickAction::Pause,
        QuickAction::Resume,
        QuickAction::Reset,
        QuickAction::PowerDown,
    ];

    /// A stable name for page hooks (`data-action`).
    pub fn key(self) -> &'static str {
        match self {
            QuickAction::Pause => "pause",
            QuickAction::Resume => "resume",
            QuickAction::Reset => "reset",
            QuickAction::PowerDown => "powerdown",
            QuickAction::Quit => "quit",
        }
    }

    /// The QMP command it sends.
    pub fn command(self) -> &'static str {
        match self {
            QuickAction::Pause => "stop",
            QuickAction::Resume => "cont",
            QuickAction::Reset => "system_reset",
            QuickAction::PowerDown => "system_powerdown",
            QuickAction::Quit => "quit",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            QuickAction::Pause => "Pause",
            QuickAction::Resume => "Resume",
            QuickAction::Reset => "Reset",
            QuickAction::PowerDown => "Power down",
            QuickAction::Quit => "Quit",
        }
    }

    /// Whether the action makes sense in run state `status` (unknown: yes): Pause while
    /// running, Resume while not.
    pub fn fits(self, status: Option<&str>) -> bool {
        match (self, status) {
            (_, None) => true,
            (QuickAction::Pause, Some(s)) => s == "running",
            (QuickAction::Resume, Some(s)) => s != "running",
            _ => true,
        }
    }

    /// Asks before sending: it resets, powers down or ends the VM.
    pub fn destructive(self) -> bool {
        matches!(
            self,
            QuickAction::Reset | QuickAction::PowerDown | QuickAction::Quit
        )
    }

    /// What the confirmation says.
    pub fn question(self) -> &'static str {
        match self {
            QuickAction::Reset => {
                "Reset the VM? The guest restarts at once, unsaved guest data is lost."
            }
            QuickAction::PowerDown => "Power the VM down? The guest is asked to shut down (ACPI).",
            QuickAction::Quit => "Quit QEMU? The VM ends at once and the connection closes.",
            _ => "",
        }
    }
}

#[derive(Properties, PartialEq)]
pub struct QuickActionsProps {
    /// False while not connected: the buttons are disabled.
    pub enabled: bool,
    /// The VM's run state, when known: Pause and Resume are enabled as it fits.
    #[prop_or_default]
    pub vm_status: Option<AttrValue>,
    /// The action waiting for a yes or no.
    #[prop_or_default]
    pub confirming: Option<QuickAction>,
    /// A button was pressed.
    #[prop_or_default]
    pub on_action: Callback<QuickAction>,
    /// The answer to the confirmation.
    #[prop_or_default]
    pub on_confirm: Callback<bool>,
}

#[function_component(QuickActions)]
pub fn quick_actions(props: &QuickActionsProps) -> Html {
    // the question takes the keyboard focus, on its safe answer
    let cancel_ref = use_node_ref();
    {
        let cancel_ref = cancel_ref.clone();
        use_effect_with(props.confirming, move |asking| {
            if asking.is_some() {
                if let Some(b) = cancel_ref.cast::<web_sys::HtmlElement>() {
                    let _ = b.focus();
                }
            }
        });
    }
    let confirm = props.confirming.map(|a| {
        let yes = props.on_confirm.reform(|_: MouseEvent| true);
        let no = props.on_confirm.reform(|_: MouseEvent| false);
        let cancel = props.on_confirm.clone();
        let keys = Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Escape" {
                cancel.emit(false);
            }
        });
        html! {
            <div class="confirm" role="alertdialog" data-testid="confirm" onkeydown={keys}>
                <span>{ a.question() }</span>
                <button class="danger" onclick={yes} data-testid="confirm-yes">{ a.label() }</button>
                <button onclick={no} data-testid="confirm-no" ref={cancel_ref.clone()}>{ "Cancel" }</button>
            </div>
        }
    });
    html! {
        <div class="actions">
            { for QuickAction::ALL.iter().map(|&a| {
                let onclick = props.on_action.reform(move |_: MouseEvent| a);
                let fits = a.fits(props.vm_status.as_deref());
                html! {
                    <button class={classes!(a.destructive().then_some("danger"))} {onclick}
                            disabled={!props.enabled || !fits} data-testid={format!("action-{}", a.command())}
                            title={format!("{} ({})", a.label(), a.command())}>
                        { a.label() }
                    </button>
                }
            }) }
            { for confirm }
        </div>
    }
}
