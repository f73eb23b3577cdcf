//! The page: search box, status, facet chips and results, wired to the worker bridge and the URL.
//! Results are a resource keyed on the URL state, shown inside `Transition` (old results stay
//! while new ones load) and `ErrorBoundary` (a failed search shows its reason).

use leptos::html::Input;
use leptos::prelude::*;
use vitrine_protocol::SearchQuery;

use crate::bridge::{Bridge, Status};
use crate::components::facets::FacetChips;
use crate::components::results::{ResultGrid, SearchOutcome};
use crate::components::search_box::SearchBox;
use crate::components::status::StatusBar;
use crate::offline;
use crate::url_state;

/// Results per search.
const K: usize = 48;

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let initial = url_state::read();
    let draft = RwSignal::new(initial.q.clone());
    let state = RwSignal::new(initial);
    let input_ref = NodeRef::<Input>::new();
    offline::register();
    let bridge = Bridge::start(url_state::index_base(), offline::keep);

    // Whether typing made the current history entry: more typing replaces it, while the first
    // typed search after any other gets an entry of its own, so Back returns to the earlier one.
    let typed_entry = StoredValue::new(false);

    // Back and forward restore the search of that history entry.
    let listener = window_event_listener(leptos::ev::popstate, move |_| {
        typed_entry.set_value(false);
        let s = url_state::read();
        draft.set(s.q.clone());
        state.set(s);
    });
    on_cleanup(move || listener.remove());

    let results: LocalResource<SearchOutcome> = LocalResource::new({
        let bridge = bridge.clone();
        move || {
            let s = state.get();
            let ready = bridge.status.get() == Status::Ready;
            let bridge = bridge.clone();
            async move {
                let query = match (&s.like, s.q.trim()) {
                    (Some(id), _) => SearchQuery::Like(id.clone()),
                    (None, q) if !q.is_empty() => SearchQuery::Text(q.to_string()),
                    _ => return Ok(None),
                };
                if !ready {
                    return Ok(None);
                }
                bridge.search(query, K, s.facets.clone()).await.map(Some)
            }
        }
    });

    let on_commit = Callback::new(move |(text, enter): (String, bool)| {
        let unchanged = state.with_untracked(|s| s.like.is_none() && s.q.trim() == text.trim());
        if unchanged {
            // Enter after the pause already searched (or a trailing space): nothing new to run.
            if enter {
                typed_entry.set_value(false);
            }
            return;
        }
        state.update(|s| {
            s.q = text;
            s.like = None;
        });
        let wrote = url_state::write(&state.get_untracked(), !typed_entry.get_value());
        if enter {
            typed_entry.set_value(false);
        } else if wrote {
            typed_entry.set_value(true);
        }
    });
    let on_like = Callback::new(move |id: String| {
        draft.set(String::new());
        state.update(|s| {
            s.like = Some(id);
            s.q.clear();
        });
        typed_entry.set_value(false);
        url_state::write(&state.get_untracked(), true);
        if let Some(w) = web_sys::window() {
            w.scroll_to_with_x_and_y(0.0, 0.0);
        }
    });
    let on_toggle = Callback::new(move |pair: (String, String)| {
        state.update(|s| match s.facets.iter().position(|p| *p == pair) {
            Some(i) => {
                s.facets.remove(i);
            }
            None => s.facets.push(pair),
        });
        typed_entry.set_value(false);
        url_state::write(&state.get_untracked(), true);
    });
    let clear_like = move |_| {
        state.update(|s| s.like = None);
        typed_entry.set_value(false);
        url_state::write(&state.get_untracked(), true);
    };

    let status = bridge.status;
    view! {
        <header class="top">
            <h1 class="brand">"vitrine"</h1>
            <SearchBox draft=draft on_commit=on_commit input_ref=input_ref/>
        </header>
        <StatusBar status=bridge.status info=bridge.info/>
        <FacetChips info=bridge.info state=state on_toggle=on_toggle/>
        {move || {
            state.get().like.map(|id| view! {
                <p class="like-banner" data-testid="like-banner">
                    "Items that look like " <strong>{id}</strong> " "
                    <button type="button" on:click=clear_like>"Back to text search"</button>
                </p>
            })
        }}
        <main>
            <Transition fallback=|| view! { <p class="hint">"Searching…"</p> }>
                <ErrorBoundary fallback=|errors| view! {
                    <p class="error" data-testid="search-error" role="alert">
                        {move || errors.get().into_iter().map(|(_, e)| e.to_string()).collect::<Vec<_>>().join("; ")}
                    </p>
                }>
                    {move || Suspend::new(async move {
                        let asked = state.with_untracked(|s| s.like.is_some() || !s.q.trim().is_empty());
                        let filtered = state.with_untracked(|s| !s.facets.is_empty());
                        let loading = matches!(status.get_untracked(), Status::Loading { .. });
                        results.await.map(move |outcome| match outcome {
                            None if asked && loading => view! {
                                <p class="hint" data-testid="waiting">"Your search runs as soon as the model has loaded."</p>
                            }.into_any(),
                            None if asked => ().into_any(),
                            None => view! {
                                <p class="hint" data-testid="empty">"Describe what you are looking for."</p>
                            }.into_any(),
                            Some(found) if found.is_empty() && filtered => view! {
                                <p class="hint" data-testid="no-results">"Nothing matches these filters."</p>
                            }.into_any(),
                            Some(found) if found.is_empty() => view! {
                                <p class="hint" data-testid="no-results">
                                    "Nothing to search for: the terms of this query cancel out. "
                                    "Try fewer “-” terms."
                                </p>
                            }.into_any(),
                            Some(found) => view! {
                                <ResultGrid found=found on_like=on_like input_ref=input_ref/>
                            }.into_any(),
                        })
                    })}
                </ErrorBoundary>
            </Transition>
        </main>
        <footer class="foot">
            "Search runs in your browser with CLIP. Your queries never leave this device."
        </footer>
    }
}
