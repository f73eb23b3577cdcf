//! The page: search box, status, filters, facet chips and results, wired to the worker bridge and
//! the URL. Results are a resource keyed on the URL state, shown inside `Transition` (old results
//! stay while new ones load) and `ErrorBoundary` (a failed search shows its reason). Keyword
//! search, filters and browsing work as soon as the index is opened; the model comes later.

use leptos::html::Input;
use leptos::prelude::*;
use vitrine_index::SearchMode;
use vitrine_index::filters::Counts;
use vitrine_protocol::{RESULTS_PER_SEARCH, SearchQuery, SiteInfo};

use crate::bridge::{Bridge, Status};
use crate::components::facets::FacetChips;
use crate::components::filters::FilterPanel;
use crate::components::results::{ResultGrid, SearchOutcome, focus_in_results};
use crate::components::search_box::SearchBox;
use crate::components::status::StatusBar;
use crate::offline;
use crate::url_state::{self, UrlState};

/// What the state asks for: "More like this", a text query, or the catalogue.
fn query_of(s: &UrlState) -> SearchQuery {
    match (&s.like, s.q.trim()) {
        (Some(id), _) => SearchQuery::Like(id.clone()),
        (None, q) if !q.is_empty() => SearchQuery::Text(q.to_string()),
        _ => SearchQuery::Browse,
    }
}

/// The keys of the opened catalogue's filters.
fn filter_keys(info: RwSignal<Option<SiteInfo>>) -> Vec<String> {
    info.with(|i| {
        i.as_ref()
            .map(|i| i.filters.iter().map(|f| f.key.clone()).collect())
            .unwrap_or_default()
    })
}

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

    // Counts and ranking of the latest answer: chips show the query's counts; an answer ranked
    // by keywords alone while the encoder loaded is refreshed once it is ready.
    let last: RwSignal<Option<(SearchMode, Counts)>> = RwSignal::new(None);
    let refresh = RwSignal::new(0u32);
    let status = bridge.status;
    let vectors = bridge.vectors;
    let info = bridge.info;
    let opened = Memo::new(move |_| status.get().opened());
    let ready = Memo::new(move |_| status.get() == Status::Ready);

    let results: LocalResource<SearchOutcome> = LocalResource::new({
        let bridge = bridge.clone();
        move || {
            let s = state.get();
            refresh.track();
            let query = query_of(&s);
            let waits = !opened.get()
                || match &query {
                    SearchQuery::Like(_) => !vectors.get(),
                    SearchQuery::Text(_) => s.mode == SearchMode::Semantic && !ready.get(),
                    SearchQuery::Browse => false,
                };
            // Only the catalogue's filters are sent; other parameters (utm_…) stay in the URL.
            let keys = filter_keys(info);
            let bridge = bridge.clone();
            async move {
                if waits {
                    return Ok(None);
                }
                let filters = s
                    .filters
                    .into_iter()
                    .filter(|(k, _)| keys.contains(k))
                    .collect();
                let answer = bridge
                    .search(query, RESULTS_PER_SEARCH, s.mode, s.facets, filters)
                    .await?;
                last.set(Some((answer.mode, answer.counts.clone())));
                Ok(Some(answer))
            }
        }
    });

    // Keyword results of a hybrid text search are stale once the encoder is ready: swap them
    // quietly unless the shopper's pointer or focus is on the list; then offer a button.
    let pointer_over = RwSignal::new(false);
    let stale = Memo::new(move |_| {
        ready.get()
            && matches!(last.get(), Some((SearchMode::Keyword, _)))
            && state.with(|s| {
                s.mode == SearchMode::Hybrid && matches!(query_of(s), SearchQuery::Text(_))
            })
    });
    Effect::new(move |_| {
        if stale.get() && !pointer_over.get() && !focus_in_results() {
            refresh.update(|n| *n += 1);
        }
    });
    let counts = Signal::derive(move || last.get().map(|(_, c)| c));

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
    let on_filters = Callback::new(move |next: UrlState| {
        state.set(next);
        typed_entry.set_value(false);
        url_state::write(&state.get_untracked(), true);
    });
    let improve = move |_| refresh.update(|n| *n += 1);
    let clear_like = move |_| {
        state.update(|s| s.like = None);
        typed_entry.set_value(false);
        url_state::write(&state.get_untracked(), true);
    };

    view! {
        <header class="top">
            <h1 class="brand">"vitrine"</h1>
            <SearchBox draft=draft on_commit=on_commit input_ref=input_ref/>
        </header>
        <StatusBar status=status info=info engine=bridge.engine/>
        <FilterPanel info=info state=state counts=counts on_change=on_filters/>
        <FacetChips info=info state=state counts=counts on_toggle=on_toggle/>
        {move || {
            state.get().like.map(|id| view! {
                <p class="like-banner" data-testid="like-banner">
                    "Items that look like " <strong>{id}</strong> " "
                    <button type="button" on:click=clear_like>"Back to text search"</button>
                </p>
            })
        }}
        {move || stale.get().then(|| view! {
            <p class="improve-banner">
                <button type="button" data-testid="improve" on:click=improve>
                    "Visual search is ready: improve these results"
                </button>
            </p>
        })}
        <main
            on:pointerenter=move |_| pointer_over.set(true)
            on:pointerleave=move |_| pointer_over.set(false)
        >
            <Transition fallback=|| view! { <p class="hint">"Searching…"</p> }>
                <ErrorBoundary fallback=|errors| view! {
                    <p class="error" data-testid="search-error" role="alert">
                        {move || errors.get().into_iter().map(|(_, e)| e.to_string()).collect::<Vec<_>>().join("; ")}
                    </p>
                }>
                    {move || Suspend::new(async move {
                        let s = state.get_untracked();
                        let keys = filter_keys(info);
                        let narrowed = s.narrowed(&keys);
                        let text = matches!(query_of(&s), SearchQuery::Text(_));
                        let outcome = results.await;
                        let now = status.get_untracked();
                        outcome.map(move |outcome| match outcome {
                            None if !now.opened() => view! {
                                <p class="hint" data-testid="waiting">"Opening the catalogue…"</p>
                            }.into_any(),
                            None if matches!(now, Status::Degraded(_)) => view! {
                                <p class="hint" data-testid="unavailable">
                                    "This search needs the visual search model, which could not be loaded."
                                </p>
                            }.into_any(),
                            None => view! {
                                <p class="hint" data-testid="waiting">
                                    "This search runs as soon as the visual search model has loaded."
                                </p>
                            }.into_any(),
                            Some(a) if a.found.is_empty() && narrowed => view! {
                                <p class="hint" data-testid="no-results">"Nothing matches these filters."</p>
                            }.into_any(),
                            Some(a) if a.found.is_empty() && text && a.mode == SearchMode::Keyword => view! {
                                <p class="hint" data-testid="no-results">
                                    "No title, brand or keyword matches “" {s.q.trim().to_string()} "”."
                                    {(!now.opened() || matches!(now, Status::Opened { .. }))
                                        .then_some(" Visual search will look too once it has loaded.")}
                                </p>
                            }.into_any(),
                            Some(a) if a.found.is_empty() => view! {
                                <p class="hint" data-testid="no-results">
                                    "Nothing to search for: the terms of this query cancel out. "
                                    "Try fewer “-” terms."
                                </p>
                            }.into_any(),
                            Some(a) => view! {
                                <ResultGrid found=a.found mode=a.mode on_like=on_like input_ref=input_ref/>
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
