//! The search box: searches as you type (debounced; one history entry per run of typing) and on
//! Enter (which ends the run: more typing makes a new entry); ArrowDown moves to the results. The
//! help popover explains query arithmetic.

use std::time::Duration;

use leptos::html::Input;
use leptos::prelude::*;
use leptos::web_sys::KeyboardEvent;

/// Typing pauses longer than this start a search.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// The query input. `on_commit(text, push)` runs a search.
#[component]
pub fn SearchBox(
    /// The text in the box.
    draft: RwSignal<String>,
    /// Commits a query; `true` for Enter, `false` for a pause in typing.
    on_commit: Callback<(String, bool)>,
    /// Lets others focus the box (Escape from the results).
    input_ref: NodeRef<Input>,
) -> impl IntoView {
    let pending = StoredValue::new(None::<TimeoutHandle>);
    let cancel = move || {
        if let Some(h) = pending.get_value() {
            h.clear();
        }
        pending.set_value(None);
    };
    let on_input = move |ev| {
        let text = event_target_value(&ev);
        draft.set(text.clone());
        cancel();
        // Runs only if the box still holds this text ("More like this", Back or a facet may have
        // replaced the search meanwhile).
        let handle = set_timeout_with_handle(
            move || {
                if draft.get_untracked() == text {
                    on_commit.run((text, false));
                }
            },
            DEBOUNCE,
        );
        pending.set_value(handle.ok());
    };
    let on_keydown = move |ev: KeyboardEvent| match ev.key().as_str() {
        // Enter that ends an input-method composition (Chinese, Japanese…) only picks the text.
        "Enter" if !ev.is_composing() => {
            ev.prevent_default();
            cancel();
            on_commit.run((draft.get_untracked(), true));
        }
        "ArrowDown" => {
            ev.prevent_default();
            crate::components::results::focus_result(0);
        }
        _ => {}
    };
    view! {
        <form class="search" role="search" on:submit=|ev| ev.prevent_default()>
            <input
                node_ref=input_ref
                type="search"
                data-testid="search-input"
                placeholder="Search the shop — try “a fluffy pink cat on a tv”"
                aria-label="Search"
                autocomplete="off"
                spellcheck="false"
                autofocus
                prop:value=move || draft.get()
                on:input=on_input
                on:keydown=on_keydown
            />
            <Help/>
        </form>
    }
}

/// The "?" button and its popover on query arithmetic.
#[component]
fn Help() -> impl IntoView {
    let open = RwSignal::new(false);
    view! {
        <button
            type="button"
            class="help-toggle"
            data-testid="help-toggle"
            aria-expanded=move || open.get().to_string()
            aria-controls="help"
            title="How to search"
            on:click=move |_| open.update(|o| *o = !*o)
        >
            "?"
        </button>
        <div id="help" class="help" data-testid="help" role="dialog" hidden=move || !open.get()>
            <p>"Describe what you want in your own words: " <q>"red running shoes"</q> "."</p>
            <p>
                "Combine ideas with " <code>"+"</code> " and " <code>"-"</code> " (spaces around them): "
                <code>"red dress + summer - floral"</code>
                " finds summery red dresses without flowers."
            </p>
            <p>"Weigh a part with a number and a colon: " <code>"2:red dress + summer"</code> "."</p>
            <p>"“More like this” under a result finds items that look like it."</p>
            <p>
                "Arrow keys move through results, Enter opens one, Escape returns here. "
                "Searches run on your device; nothing you type is sent anywhere."
            </p>
        </div>
    }
}
