//! The result grid: thumbnails with title, price, product link, the score on hover and "More like
//! this". Titles and descriptions are text nodes, never HTML. Arrow keys move between results,
//! Enter opens the product, Escape goes back to the search box.

use leptos::html::Input;
use leptos::prelude::*;
use leptos::web_sys::KeyboardEvent;
use vitrine_index::SearchMode;
use vitrine_index::Thumbnail;
use vitrine_protocol::{Found, SearchError};
use wasm_bindgen::JsCast;

use crate::bridge::Answer;

/// What a search resolved to: not run yet (`None`: the index or model it needs is loading) or
/// the answer.
pub type SearchOutcome = Result<Option<Answer>, SearchError>;

/// Whether keyboard focus is on a result card.
pub fn focus_in_results() -> bool {
    let active = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.active_element());
    cards()
        .iter()
        .any(|c| c.is_same_node(active.as_ref().map(|a| a.as_ref())))
}

fn cards() -> Vec<web_sys::HtmlElement> {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return Vec::new();
    };
    let Ok(list) = doc.query_selector_all("[data-testid=result]") else {
        return Vec::new();
    };
    (0..list.length())
        .filter_map(|i| list.item(i))
        .filter_map(|n| n.dyn_into::<web_sys::HtmlElement>().ok())
        .collect()
}

/// Focuses result `i` (clamped), if there are results.
pub fn focus_result(i: usize) {
    let all = cards();
    if let Some(card) = all.get(i.min(all.len().saturating_sub(1))) {
        let _ = card.focus();
    }
}

/// Where arrow key `key` leads from card `i` in a grid whose rows are told apart by their top.
fn neighbour(all: &[web_sys::HtmlElement], i: usize, key: &str) -> Option<usize> {
    let top = |e: &web_sys::HtmlElement| e.get_bounding_client_rect().top().round() as i64;
    let columns = all
        .iter()
        .take_while(|e| top(e) == top(&all[0]))
        .count()
        .max(1);
    match key {
        "ArrowRight" => (i + 1 < all.len()).then_some(i + 1),
        "ArrowLeft" => i.checked_sub(1),
        "ArrowDown" => (i + columns < all.len()).then_some(i + columns),
        "ArrowUp" => i.checked_sub(columns),
        _ => None,
    }
}

/// The results area for a resolved search.
#[component]
pub fn ResultGrid(
    /// The results, best first.
    found: Vec<Found>,
    /// How they were ranked.
    mode: SearchMode,
    /// "More like this" was chosen for an id.
    on_like: Callback<String>,
    /// The search box, for Escape.
    input_ref: NodeRef<Input>,
) -> impl IntoView {
    let on_keydown = move |ev: KeyboardEvent| {
        let all = cards();
        let Some(active) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.active_element())
        else {
            return;
        };
        let Some(i) = all.iter().position(|c| c.is_same_node(Some(&active))) else {
            return;
        };
        match ev.key().as_str() {
            "Escape" => {
                if let Some(input) = input_ref.get() {
                    let _ = input.focus();
                }
            }
            "Enter" => {
                if let Ok(Some(a)) = all[i].query_selector("a.product")
                    && let Ok(a) = a.dyn_into::<web_sys::HtmlElement>()
                {
                    a.click();
                }
            }
            key => {
                if let Some(j) = neighbour(&all, i, key) {
                    ev.prevent_default();
                    let _ = all[j].focus();
                }
            }
        }
    };
    view! {
        <ol class="results" data-testid="results" data-mode=mode.name() on:keydown=on_keydown>
            {found
                .into_iter()
                .map(|f| view! { <ResultCard found=f on_like=on_like/> })
                .collect_view()}
        </ol>
    }
}

#[component]
fn ResultCard(found: Found, on_like: Callback<String>) -> impl IntoView {
    let Found { score, item, pack } = found;
    let id = item.id.clone();
    // Checked again here: the page may be served an index from an older build-index.
    let href = item.link.as_deref().and_then(vitrine_index::safe_link);
    // Packed thumbnails, else the shop's own image (`--thumbnails remote`), checked as links are.
    let remote = item.image.as_deref().and_then(vitrine_index::safe_link);
    let picture = match (item.thumbnail.zip(pack), remote) {
        (Some((thumbnail, pack)), _) => Some(view! { <Thumb pack thumbnail/> }.into_any()),
        (None, Some(src)) => Some(view! { <RemoteImage src/> }.into_any()),
        (None, None) => None,
    };
    let score_text = format!("{score:.3}");
    let hover = format!("score {score_text}");
    let score_attr = score_text.clone();
    let title = item.title.clone();
    view! {
        <li
            class="result"
            data-testid="result"
            data-id=item.id.clone()
            data-score=score_attr
            tabindex="0"
            title=hover
        >
            {picture}
            <div class="meta">
                <h2 class="title">{title}</h2>
                {item.price.map(|p| view! { <p class="price">{p}</p> })}
                <span class="score" aria-hidden="true">{score_text}</span>
            </div>
            <div class="actions">
                {href
                    .map(|h| {
                        view! {
                            <a class="product" href=h target="_blank" rel="noopener noreferrer">
                                "View product"
                            </a>
                        }
                    })}
                <button
                    type="button"
                    class="like"
                    data-testid="more-like-this"
                    on:click=move |_| on_like.run(id.clone())
                >
                    "More like this"
                </button>
            </div>
        </li>
    }
}

/// A picture on the shop's own image host (`--thumbnails remote`); one that cannot be loaded is
/// left out (marked for tests), as a packed thumbnail that cannot be shown is.
#[component]
fn RemoteImage(src: String) -> impl IntoView {
    let failed = RwSignal::new(false);
    move || {
        if failed.get() {
            view! { <span class="no-thumbnail" data-testid="thumbnail-missing"></span> }.into_any()
        } else {
            view! {
                <img
                    src=src.clone()
                    alt=""
                    decoding="async"
                    loading="lazy"
                    data-testid="remote-image"
                    on:error=move |_| failed.set(true)
                />
            }
            .into_any()
        }
    }
}

/// A result's thumbnail, cut from its pack and shown once it arrives; one that cannot be
/// fetched or fails its hash check is left out (marked for tests).
#[component]
fn Thumb(pack: String, thumbnail: Thumbnail) -> impl IntoView {
    // `None` while loading, then the blob URL or `Err` when it cannot be shown.
    let src = RwSignal::new(None::<Result<String, ()>>);
    leptos::task::spawn_local(async move {
        let shown = match crate::thumbnails::bytes(&pack, &thumbnail).await {
            Ok(jpeg) => crate::thumbnails::blob_url(&jpeg).map_err(|_| ()),
            Err(_) => Err(()),
        };
        // The card may be gone by now: then the URL is freed at once.
        if let Some(Ok(url)) = src.try_set(Some(shown)).flatten() {
            crate::thumbnails::revoke(&url);
        }
    });
    on_cleanup(move || {
        if let Some(Some(Ok(url))) = src.try_get_untracked() {
            crate::thumbnails::revoke(&url);
        }
    });
    move || match src.get() {
        None => None,
        Some(Ok(s)) => Some(view! { <img src=s alt="" decoding="async"/> }.into_any()),
        Some(Err(())) => Some(
            view! { <span class="no-thumbnail" data-testid="thumbnail-missing"></span> }.into_any(),
        ),
    }
}
