//! Filter chips for the zero-shot facets `build-index` computed (e.g. colour). Labels of one facet
//! are alternatives; different facets must all match. Counts follow the current query.

use leptos::prelude::*;
use vitrine_index::filters::Counts;
use vitrine_protocol::SiteInfo;

use crate::url_state::UrlState;

/// One row of chips per facet.
#[component]
pub fn FacetChips(
    /// The loaded index (facets come from its manifest).
    info: RwSignal<Option<SiteInfo>>,
    /// The current search state (selected chips).
    state: RwSignal<UrlState>,
    /// Counts of the latest answer (the catalogue's own counts until one arrives).
    counts: Signal<Option<Counts>>,
    /// Toggles `(facet, label)`.
    on_toggle: Callback<(String, String)>,
) -> impl IntoView {
    let facets = move || info.get().map(|i| i.facets).unwrap_or_default();
    view! {
        <div class="facets" data-testid="facets">
            {move || {
                facets()
                    .into_iter()
                    .map(|facet| {
                        let name = facet.name.clone();
                        let live = counts.get().and_then(|c| c.facets.get(&name).cloned());
                        let chips = facet
                            .labels
                            .iter()
                            .zip(&facet.counts)
                            .enumerate()
                            .filter(|(_, (_, n))| **n > 0)
                            .map(|(i, (label, n))| {
                                let n = live.as_ref().and_then(|l| l.get(i).copied()).unwrap_or(*n);
                                let pair = (name.clone(), label.clone());
                                let on = {
                                    let pair = pair.clone();
                                    move || state.get().facets.contains(&pair)
                                };
                                view! {
                                    <button
                                        type="button"
                                        class="chip"
                                        data-testid="facet-chip"
                                        data-facet=pair.0.clone()
                                        data-label=pair.1.clone()
                                        data-count=n.to_string()
                                        aria-pressed=move || on().to_string()
                                        on:click=move |_| on_toggle.run(pair.clone())
                                    >
                                        {label.clone()}
                                        <span class="count">{n.to_string()}</span>
                                    </button>
                                }
                            })
                            .collect_view();
                        view! {
                            <fieldset class="facet">
                                <legend>{name.clone()}</legend>
                                {chips}
                            </fieldset>
                        }
                    })
                    .collect_view()
            }}
        </div>
    }
}
