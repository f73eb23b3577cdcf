//! Offline support from the page's side: registers the service worker (`sw.js`, handed the site's
//! conventions in its URL) and, once an index is loaded, tells it which files make up the current
//! build so it caches them (thumbnails too, within a budget) and drops files no manifest lists.

use js_sys::Reflect;
use vitrine_protocol::{KeepBuild, ServiceWorkerConfig, ServiceWorkerMessage, SiteInfo};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::ServiceWorkerRegistration;

/// Registers `sw.js` (beside the page) when the browser has service workers.
pub fn register() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let container = window.navigator().service_worker();
    if JsValue::from(container.clone()).is_undefined() {
        return;
    }
    let Ok(config) = serde_json::to_string(&ServiceWorkerConfig::current()) else {
        return;
    };
    let url = format!("./sw.js?config={}", js_sys::encode_uri_component(&config));
    let _ = container.register(&url);
}

/// Thumbnails are all kept offline (fetched in the background after the files needed to search)
/// when they total at most this much and the visitor has not asked to save data; otherwise only
/// those seen are kept.
const OFFLINE_THUMBNAILS_BUDGET: u64 = 32 << 20;

/// Whether the browser says the visitor wants to save data (`navigator.connection.saveData`).
fn save_data(window: &web_sys::Window) -> bool {
    Reflect::get(&window.navigator(), &"connection".into())
        .and_then(|c| Reflect::get(&c, &"saveData".into()))
        .is_ok_and(|v| v.is_truthy())
}

/// Sends the current build's files to the active service worker.
pub fn keep(info: &SiteInfo) {
    let base = crate::url_state::index_base();
    let absolute = |files: &[String]| files.iter().map(|f| format!("{base}{f}")).collect();
    let offline = &info.offline;
    let all_thumbnails: Vec<String> = absolute(&offline.thumbnails);
    let fetch_thumbnails = offline.thumbnail_bytes <= OFFLINE_THUMBNAILS_BUDGET
        && web_sys::window().is_some_and(|w| !save_data(&w));
    let message = ServiceWorkerMessage::KeepBuild(KeepBuild {
        build: info.build_id.clone(),
        index: base.clone(),
        manifest: format!("{base}{}", vitrine_index::MANIFEST),
        core: absolute(&offline.core),
        thumbnails: if fetch_thumbnails {
            all_thumbnails.clone()
        } else {
            Vec::new()
        },
        all_thumbnails,
        on_demand: absolute(&offline.on_demand),
    });
    let Ok(json) = serde_json::to_string(&message) else {
        return;
    };
    wasm_bindgen_futures::spawn_local(async move {
        let Some(window) = web_sys::window() else {
            return;
        };
        let container = window.navigator().service_worker();
        if JsValue::from(container.clone()).is_undefined() {
            return;
        }
        let Ok(ready) = container.ready() else { return };
        let Ok(reg) = JsFuture::from(ready).await else {
            return;
        };
        let reg: ServiceWorkerRegistration = reg.unchecked_into();
        let Some(active) = reg.active() else { return };
        let _ = active.post_message(&JsValue::from_str(&json));
    });
}
