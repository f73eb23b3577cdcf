//! What is searched lives in the URL (`?q=…`, `?like=ID`, `&f=facet:label`, `&brand=…`,
//! `&price=10-50`, `&mode=keyword`), so a link reproduces the results and back/forward walk through
//! earlier searches. Only the query string changes, so this works under any sub-path.

use vitrine_index::SearchMode;
use vitrine_index::filters::RESERVED_KEYS;
use vitrine_protocol::INDEX_DIR;
use wasm_bindgen::JsValue;
use web_sys::{Url, UrlSearchParams};

/// The searchable state of the page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UrlState {
    /// The text query (`q`).
    pub q: String,
    /// "More like this" item id (`like`); takes precedence over `q`.
    pub like: Option<String>,
    /// Facet selections (`f=facet:label`, repeatable).
    pub facets: Vec<(String, String)>,
    /// Filter selections (`key=value`, repeatable; `key=min-max` for ranges) and any other
    /// parameter the page was linked with (e.g. `utm_source`), kept in the URL as they came.
    pub filters: Vec<(String, String)>,
    /// How text is ranked (`mode`; hybrid when absent).
    pub mode: SearchMode,
    /// `engine` as linked (a diagnostic that forces a worker build), kept in the URL.
    pub engine: Option<String>,
}

impl UrlState {
    /// Parses a query string such as `?q=red+dress&f=color:red`.
    pub fn parse(search: &str) -> Self {
        let Ok(params) = UrlSearchParams::new_with_str(search) else {
            return Self::default();
        };
        let facets = params
            .get_all("f")
            .iter()
            .filter_map(|v| v.as_string())
            .filter_map(|v| {
                v.split_once(':')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
            })
            .collect();
        let mut filters = Vec::new();
        if let Ok(Some(entries)) = js_sys::try_iter(&params.entries()) {
            for pair in entries.flatten() {
                let pair = js_sys::Array::from(&pair);
                if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string())
                    && !RESERVED_KEYS.contains(&k.as_str())
                    && !v.is_empty()
                {
                    filters.push((k, v));
                }
            }
        }
        Self {
            q: params.get("q").unwrap_or_default(),
            like: params.get("like").filter(|l| !l.is_empty()),
            facets,
            filters,
            mode: params
                .get("mode")
                .and_then(|m| SearchMode::from_name(&m))
                .unwrap_or_default(),
            engine: params.get("engine").filter(|e| !e.is_empty()),
        }
    }

    /// Whether a filter or facet narrows the results.
    pub fn narrowed(&self, keys: &[String]) -> bool {
        !self.facets.is_empty() || self.filters.iter().any(|(k, _)| keys.contains(k))
    }

    /// Selects or clears `(key, value)` of a value filter.
    pub fn toggle_filter(&mut self, pair: (String, String)) {
        match self.filters.iter().position(|p| *p == pair) {
            Some(i) => {
                self.filters.remove(i);
            }
            None => self.filters.push(pair),
        }
    }

    /// Sets (or, with `None`, clears) the one selection of range filter `key`.
    pub fn set_range(&mut self, key: &str, value: Option<String>) {
        let at = self.filters.iter().position(|(k, _)| k == key);
        match (at, value) {
            (Some(i), Some(v)) => self.filters[i].1 = v,
            (Some(i), None) => {
                self.filters.remove(i);
            }
            (None, Some(v)) => self.filters.push((key.to_string(), v)),
            (None, None) => {}
        }
    }

    /// The selected value(s) of filter `key`.
    pub fn selected<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.filters
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The query string for this state (empty when there is nothing to search).
    pub fn to_search(&self) -> String {
        let Ok(params) = UrlSearchParams::new() else {
            return String::new();
        };
        if let Some(like) = &self.like {
            params.append("like", like);
        } else if !self.q.trim().is_empty() {
            params.append("q", &self.q);
        }
        for (f, l) in &self.facets {
            params.append("f", &format!("{f}:{l}"));
        }
        for (k, v) in &self.filters {
            params.append(k, v);
        }
        if self.mode != SearchMode::default() {
            params.append("mode", self.mode.name());
        }
        if let Some(engine) = &self.engine {
            params.append("engine", engine);
        }
        let s: String = params.to_string().into();
        if s.is_empty() { s } else { format!("?{s}") }
    }
}

/// The current page's state.
pub fn read() -> UrlState {
    let search = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    UrlState::parse(&search)
}

/// Puts `state` in the address bar: a new history entry (`push`) or in place of the current one.
/// Returns whether the address changed (it is left alone when it already shows `state`).
pub fn write(state: &UrlState, push: bool) -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let Ok(href) = window.location().href() else {
        return false;
    };
    let Ok(url) = Url::new(&href) else {
        return false;
    };
    let search = state.to_search();
    if url.search() == search {
        return false;
    }
    url.set_search(&search);
    let target: String = url.href();
    let Ok(history) = window.history() else {
        return false;
    };
    let done = if push {
        history.push_state_with_url(&JsValue::NULL, "", Some(&target))
    } else {
        history.replace_state_with_url(&JsValue::NULL, "", Some(&target))
    };
    done.is_ok()
}

/// The absolute URL of the index folder ([`INDEX_DIR`] beside the page).
pub fn index_base() -> String {
    let href = web_sys::window()
        .and_then(|w| w.location().href().ok())
        .unwrap_or_default();
    Url::new_with_base(INDEX_DIR, &href)
        .map(|u| u.href())
        .unwrap_or_else(|_| INDEX_DIR.into())
}
