//! Offline support from the page's side: registers the service worker (`sw.js`) and, once an
//! index is loaded, tells it which files make up the current build so it caches them (thumbnails
//! too, within a budget) and drops files no manifest lists any more.

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

/// Sends the current build's file list to the active service worker.
pub fn keep(info: &SiteInfo) {
    let base = crate::url_state::index_base();
    let files: Vec<String> = info.files.iter().map(|f| format!("{base}{f}")).collect();
    let (thumbs, core): (Vec<String>, Vec<String>) = files
        .iter()
        .cloned()
        .partition(|f| f[base.len()..].starts_with("thumbs/"));
    let all_thumbs = info.thumbnail_bytes <= OFFLINE_THUMBNAILS_BUDGET
        && web_sys::window().is_some_and(|w| !save_data(&w));
    let thumbs = if all_thumbs { thumbs } else { Vec::new() };
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
        let _ = Reflect::set(&msg, &"thumbnails".into(), &to_array(&thumbs));
        let _ = active.post_message(&msg);
    });
}
