//! Filters from the catalogue's columns: value chips (brand, product type, availability…) with
//! the current query's counts, and min/max boxes for ranges (price, sale price). Values of one
//! filter are alternatives; different filters must all match. Selections live in the URL.

use leptos::prelude::*;
use vitrine_index::filters::{Counts, Filter, FilterKind, RangeSelection};
use vitrine_protocol::SiteInfo;

use crate::url_state::UrlState;

/// Chips beyond this many per filter stay behind "more".
const SHOWN_VALUES: usize = 12;

/// One group per filter.
#[component]
pub fn FilterPanel(
    /// The opened index (filters come from its manifest).
    info: RwSignal<Option<SiteInfo>>,
    /// The current search state (selected values and ranges).
    state: RwSignal<UrlState>,
    /// Counts of the latest answer (the catalogue's own counts until one arrives).
    counts: Signal<Option<Counts>>,
    /// Applies a change to the state (and the URL).
    on_change: Callback<UrlState>,
) -> impl IntoView {
    let filters = move || info.get().map(|i| i.filters).unwrap_or_default();
    view! {
        <div class="filters" data-testid="filters">
            {move || {
                filters()
                    .into_iter()
                    .map(|filter| match &filter.kind {
                        FilterKind::Values { .. } => {
                            view! { <ValueFilter filter=filter state=state counts=counts on_change=on_change/> }
                                .into_any()
                        }
                        FilterKind::Range { .. } => {
                            view! { <RangeFilter filter=filter state=state counts=counts on_change=on_change/> }
                                .into_any()
                        }
                    })
                    .collect_view()
            }}
        </div>
    }
}

#[component]
fn ValueFilter(
    filter: Filter,
    state: RwSignal<UrlState>,
    counts: Signal<Option<Counts>>,
    on_change: Callback<UrlState>,
) -> impl IntoView {
    let FilterKind::Values {
        values,
        counts: all,
    } = filter.kind
    else {
        return ().into_any();
    };
    let key = filter.key.clone();
    let expanded = RwSignal::new(false);
    let many = values.len() > SHOWN_VALUES;
    let chips = move || {
        let live = counts.get().and_then(|c| c.values.get(&key).cloned());
        let shown = if expanded.get() {
            values.len()
        } else {
            SHOWN_VALUES
        };
        values
            .iter()
            .enumerate()
            .filter(|(i, v)| {
                *i < shown || state.with(|s| s.selected(&key).any(|x| x == v.as_str()))
            })
            .map(|(i, value)| {
                let n = live.as_ref().unwrap_or(&all).get(i).copied().unwrap_or(0);
                let pair = (key.clone(), value.clone());
                let on = {
                    let pair = pair.clone();
                    move || state.with(|s| s.filters.contains(&pair))
                };
                let toggle = {
                    let pair = pair.clone();
                    move |_| {
                        let mut s = state.get_untracked();
                        s.toggle_filter(pair.clone());
                        on_change.run(s);
                    }
                };
                view! {
                    <button
                        type="button"
                        class="chip"
                        class:empty=n == 0
                        data-testid="filter-chip"
                        data-filter=pair.0.clone()
                        data-value=pair.1.clone()
                        data-count=n.to_string()
                        aria-pressed=move || on().to_string()
                        on:click=toggle
                    >
                        {value.clone()}
                        <span class="count">{n.to_string()}</span>
                    </button>
                }
            })
            .collect_view()
    };
    view! {
        <fieldset class="facet" data-testid="filter" data-filter=filter.key.clone()>
            <legend>{filter.label.clone()}</legend>
            {chips}
            {many.then(|| view! {
                <button type="button" class="more" on:click=move |_| expanded.update(|e| *e = !*e)>
                    {move || if expanded.get() { "fewer" } else { "more…" }}
                </button>
            })}
        </fieldset>
    }
    .into_any()
}

#[component]
fn RangeFilter(
    filter: Filter,
    state: RwSignal<UrlState>,
    counts: Signal<Option<Counts>>,
    on_change: Callback<UrlState>,
) -> impl IntoView {
    let FilterKind::Range { min, max, currency } = filter.kind else {
        return ().into_any();
    };
    let key = StoredValue::new(filter.key.clone());
    let selection = move || {
        state.with(|s| key.with_value(|k| s.selected(k).next().and_then(RangeSelection::parse)))
    };
    let bound = move |pick: fn(RangeSelection) -> Option<f64>| {
        move || {
            selection()
                .and_then(pick)
                .map(|v| v.to_string())
                .unwrap_or_default()
        }
    };
    // Either box changed: the range is what both boxes now hold.
    let apply = move |lo: String, hi: String| {
        let num = |t: &str| t.trim().parse::<f64>().ok().filter(|v| v.is_finite());
        let (lo, hi) = (num(&lo), num(&hi));
        let value = (lo.is_some() || hi.is_some()).then(|| {
            let (lo, hi) = match (lo, hi) {
                (Some(a), Some(b)) if a > b => (Some(b), Some(a)),
                pair => pair,
            };
            RangeSelection { min: lo, max: hi }.to_param()
        });
        let mut s = state.get_untracked();
        key.with_value(|k| s.set_range(k, value));
        on_change.run(s);
    };
    let current = move |pick: fn(RangeSelection) -> Option<f64>| {
        selection()
            .and_then(pick)
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    let summary = move || {
        let live = counts
            .get()
            .and_then(|c| key.with_value(|k| c.ranges.get(k).copied()));
        match live {
            Some(r) => match (r.min, r.max) {
                (Some(a), Some(b)) => format!("{} items · {a}–{b}", r.items),
                _ => "no items".to_string(),
            },
            None => format!("{min}–{max}"),
        }
    };
    let unit = currency.map(|c| format!(" ({c})")).unwrap_or_default();
    view! {
        <fieldset class="facet range" data-testid="filter" data-filter=filter.key.clone()>
            <legend>{filter.label.clone()}{unit}</legend>
            <input
                type="number"
                inputmode="decimal"
                data-testid="range-min"
                data-filter=filter.key.clone()
                placeholder=min.to_string()
                aria-label=format!("{} from", filter.label)
                prop:value=bound(|r| r.min)
                on:change=move |ev| apply(event_target_value(&ev), current(|r| r.max))
            />
            "–"
            <input
                type="number"
                inputmode="decimal"
                data-testid="range-max"
                data-filter=filter.key.clone()
                placeholder=max.to_string()
                aria-label=format!("{} to", filter.label)
                prop:value=bound(|r| r.max)
                on:change=move |ev| apply(current(|r| r.min), event_target_value(&ev))
            />
            <span class="count" data-testid="range-summary">{summary}</span>
        </fieldset>
    }
    .into_any()
}
