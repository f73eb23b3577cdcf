//! What the browser tests read from vitrine's page, through the `data-testid` hooks it renders:
//! `status` (with `data-state` = `loading` | `keyword` | `ready` | `degraded` | `error`), `result`
//! cards (with `data-id`, in rank order, inside `results` with `data-mode`), `search-input`,
//! `facet-chip`, `filter-chip`, `range-min`/`range-max` and `improve`.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use serde_json::Value;

use crate::webdriver::Browser;

/// How long the first load may take: the worker's WebAssembly, the tokenizer and the text encoder
/// (a few MB on the tiny model) on a busy two-core machine.
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a search may take to show once the index is loaded.
pub const SEARCH_TIMEOUT: Duration = Duration::from_secs(30);

/// The status line: `(data-state, text)`.
pub fn status(b: &Browser) -> Result<(String, String)> {
    let v = b.execute(
        "const s = document.querySelector('[data-testid=status]');\
         return s ? [s.dataset.state || '', s.textContent] : null;",
        vec![],
    )?;
    match v.as_array().map(Vec::as_slice) {
        Some([state, text]) => Ok((
            state.as_str().unwrap_or_default().to_string(),
            text.as_str().unwrap_or_default().to_string(),
        )),
        _ => bail!("no [data-testid=status] on the page yet"),
    }
}

/// Waits for `data-state="ready"` and returns the status text; fails at once on `error`.
pub fn wait_ready(b: &Browser) -> Result<String> {
    let ready = b.wait_until("the status to be ready", LOAD_TIMEOUT, || {
        let (state, text) = status(b)?;
        match state.as_str() {
            "ready" => Ok(Some(Ok(text))),
            "error" => Ok(Some(Err(text))),
            _ => Ok(None),
        }
    })?;
    ready.map_err(|text| {
        anyhow!(
            "the page shows an error instead of ready: {text}{}",
            b.describe()
        )
    })
}

/// Waits for `data-state="error"` and returns the status text; fails if it becomes ready.
pub fn wait_error(b: &Browser) -> Result<String> {
    wait_failure(b, "error")
}

/// Waits for `data-state="degraded"` (keyword search only: the vectors or the text encoder
/// failed) and returns the status text; fails if it becomes ready or shows an error.
pub fn wait_degraded(b: &Browser) -> Result<String> {
    wait_failure(b, "degraded")
}

fn wait_failure(b: &Browser, expected: &str) -> Result<String> {
    let state = b.wait_until(
        &format!("the status to be {expected}"),
        LOAD_TIMEOUT,
        || {
            let (state, text) = status(b)?;
            Ok((!matches!(state.as_str(), "loading" | "keyword")).then_some((state, text)))
        },
    )?;
    match state {
        (s, text) if s == expected => Ok(text),
        (s, text) => bail!("expected the {expected} state, the page is {s:?}: {text}"),
    }
}

/// Waits for `data-state="keyword"` or later (keyword search works) and returns the state.
pub fn wait_opened(b: &Browser) -> Result<String> {
    let opened = b.wait_until("keyword search to be ready", LOAD_TIMEOUT, || {
        let (state, text) = status(b)?;
        match state.as_str() {
            "loading" => Ok(None),
            "error" => Ok(Some(Err(text))),
            _ => Ok(Some(Ok(state))),
        }
    })?;
    opened.map_err(|text| anyhow!("the page shows an error: {text}{}", b.describe()))
}

/// The results list's `data-mode` (how they were ranked), if results are shown.
pub fn result_mode(b: &Browser) -> Result<Option<String>> {
    let v = b.execute(
        "const r = document.querySelector('[data-testid=results]');\
         return r ? r.dataset.mode : null;",
        vec![],
    )?;
    Ok(v.as_str().map(str::to_string))
}

/// The `data-id`s of the result cards, in page order.
pub fn result_ids(b: &Browser) -> Result<Vec<String>> {
    let v = b.execute(
        "return Array.from(document.querySelectorAll('[data-testid=result]'), e => e.dataset.id);",
        vec![],
    )?;
    strings(&v)
}

/// Waits until the first `expected.len()` results are `expected`, in order; the failure shows
/// what the page had instead.
pub fn wait_top(b: &Browser, what: &str, expected: &[String]) -> Result<Vec<String>> {
    b.wait_until(
        &format!(
            "the top {} results of {what} to be {expected:?}",
            expected.len()
        ),
        SEARCH_TIMEOUT,
        || {
            let ids = result_ids(b)?;
            let n = expected.len().min(ids.len());
            if ids.len() >= expected.len() && ids[..n] == *expected {
                Ok(Some(ids))
            } else {
                Err(anyhow!("the page shows {:?}", &ids[..ids.len().min(12)]))
            }
        },
    )
}

/// Runs `script` as an async function body (`await` allowed) and returns what it returns.
pub fn run_async(b: &Browser, script: &str) -> Result<Value> {
    let wrapped = format!(
        "const done = arguments[arguments.length - 1];\
         (async () => {{ {script} }})().then(v => done({{ok: v}}), e => done({{err: String(e)}}));"
    );
    let v = b.execute_async(&wrapped, vec![])?;
    if let Some(e) = v.get("err") {
        bail!("script failed: {e}");
    }
    Ok(v.get("ok").cloned().unwrap_or(Value::Null))
}

/// The URLs in the service worker's cache `vitrine-v1` (empty if it does not exist yet).
pub fn cached_urls(b: &Browser) -> Result<Vec<String>> {
    let v = run_async(
        b,
        "if (!(await caches.has('vitrine-v1'))) return [];\
         const c = await caches.open('vitrine-v1');\
         return (await c.keys()).map(r => r.url);",
    )?;
    strings(&v)
}

/// Whether a service worker controls the page.
pub fn sw_controls(b: &Browser) -> Result<bool> {
    Ok(b.execute(
        "return !!(navigator.serviceWorker && navigator.serviceWorker.controller);",
        vec![],
    )?
    .as_bool()
    .unwrap_or(false))
}

fn strings(v: &Value) -> Result<Vec<String>> {
    v.as_array()
        .ok_or_else(|| anyhow!("expected a list, got {v}"))?
        .iter()
        .map(|s| {
            s.as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("expected strings, got {v}"))
        })
        .collect()
}
