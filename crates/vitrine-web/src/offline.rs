//! Offline support from the page's side: registers the service worker (`sw.js`) and, once an
//! index is loaded, tells it which files make up the current build so it caches them and drops
//! files no manifest lists any more.

use js_sys::{Array, Object, Reflect};
use vitrine_search::protocol::SiteInfo;
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
    let _ = container.register("./sw.js");
}

/// Sends the current build's file list to the active service worker.
pub fn keep(info: &SiteInfo) {
    let base = crate::url_state::index_base();
    let files: Vec<String> = info.files.iter().map(|f| format!("{base}{f}")).collect();
    // Files needed to search (not thumbnails, which are cached as they are seen).
    let core: Vec<String> = files
        .iter()
        .filter(|f| !f.contains("/thumbs/"))
        .cloned()
        .collect();
    let build = info.build_id.clone();
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
        let msg = Object::new();
        let to_array = |v: &[String]| v.iter().map(JsValue::from).collect::<Array>();
        let _ = Reflect::set(&msg, &"type".into(), &"index".into());
        let _ = Reflect::set(&msg, &"build".into(), &build.into());
        let _ = Reflect::set(&msg, &"index".into(), &base.into());
        let _ = Reflect::set(&msg, &"keep".into(), &to_array(&files));
        let _ = Reflect::set(&msg, &"precache".into(), &to_array(&core));
        let _ = active.post_message(&msg);
    });
}
