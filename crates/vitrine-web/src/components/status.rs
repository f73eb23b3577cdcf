//! The status line: download progress (bytes of total) on first load, a short summary once
//! ready, or what went wrong. `data-state` is `loading`, `ready` or `error` for tests.

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
    /// The loaded index.
    info: RwSignal<Option<SiteInfo>>,
) -> impl IntoView {
    let state = move || match status.get() {
        Status::Loading { .. } => "loading",
        Status::Ready => "ready",
        Status::Error(_) => "error",
    };
    let body = move || match status.get() {
        Status::Loading { loaded, total } if total > 0 => view! {
            <progress max=total.to_string() value=loaded.to_string()></progress>
            <span>
                "Downloading the search model: " {megabytes(loaded)} " of " {megabytes(total)}
                " (once; it then works offline)"
            </span>
        }
        .into_any(),
        Status::Loading { .. } => view! { <span>"Starting…"</span> }.into_any(),
        Status::Ready => {
            let summary = info
                .get()
                .map(|i| format!("{} items · searching on your device", i.count))
                .unwrap_or_default();
            view! { <span>{summary}</span> }.into_any()
        }
        Status::Error(why) => view! {
            <span role="alert">"Search is unavailable: " {why.to_string()}</span>
        }
        .into_any(),
    };
    let engine = move || info.get().map(|i| i.engine).unwrap_or_default();
    view! {
        <div class="status" data-testid="status" data-state=state data-engine=engine aria-live="polite">
            {body}
        </div>
    }
}
