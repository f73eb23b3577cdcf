//! The status line: "keyword search ready · visual search loading" with download progress on
//! first load, a short summary once ready, keyword-only when the model failed, or what went
//! wrong. `data-state` is `loading`, `keyword`, `ready`, `degraded` or `error` for tests.

use leptos::prelude::*;
use vitrine_protocol::SiteInfo;

use crate::bridge::Status;

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Shows where loading stands.
#[component]
pub fn StatusBar(
    /// Loading status.
    status: RwSignal<Status>,
    /// The opened index.
    info: RwSignal<Option<SiteInfo>>,
    /// How queries are encoded, once the encoder is loaded.
    engine: RwSignal<Option<String>>,
) -> impl IntoView {
    let state = move || match status.get() {
        Status::Starting => "loading",
        Status::Opened { .. } => "keyword",
        Status::Ready => "ready",
        Status::Degraded(_) => "degraded",
        Status::Error(_) => "error",
    };
    let count = move || info.get().map(|i| i.count).unwrap_or_default();
    let body = move || {
        match status.get() {
        Status::Starting => view! { <span>"Starting…"</span> }.into_any(),
        Status::Opened { loaded, total } => view! {
            <span>{format!("{} items · keyword search ready · visual search loading", count())}</span>
            {(total > 0).then(|| view! {
                <progress max=total.to_string() value=loaded.to_string()></progress>
                <span class="bytes">
                    {megabytes(loaded)} " of " {megabytes(total)} " (once; it then works offline)"
                </span>
            })}
        }
        .into_any(),
        Status::Ready => view! {
            <span>{format!("{} items · searching on your device", count())}</span>
        }
        .into_any(),
        Status::Degraded(why) => view! {
            <span role="alert">
                {format!("{} items · keyword search only: visual search is unavailable: ", count())}
                {why.to_string()}
            </span>
        }
        .into_any(),
        Status::Error(why) => view! {
            <span role="alert">"Search is unavailable: " {why.to_string()}</span>
        }
        .into_any(),
    }
    };
    let engine = move || engine.get().unwrap_or_default();
    view! {
        <div class="status" data-testid="status" data-state=state data-engine=engine aria-live="polite">
            {body}
        </div>
    }
}
