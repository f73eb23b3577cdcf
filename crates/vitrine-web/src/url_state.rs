//! What is searched lives in the URL (`?q=…`, `?like=ID`, `&f=facet:label`), so a link reproduces
//! the results and back/forward walk through earlier searches. Only the query string changes, so
//! this works under any sub-path.

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
        Self {
            q: params.get("q").unwrap_or_default(),
            like: params.get("like").filter(|l| !l.is_empty()),
            facets,
        }
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
