//! Thumbnails from their chunk's pack: asked with an HTTP Range request, cut from the whole pack
//! where the host (or the service worker's cache) answers with all of it, checked against the
//! item's hash, and shown through a blob URL. A whole pack is kept in memory, so it downloads once.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use futures::lock::Mutex;
use js_sys::{Array, Uint8Array};
use vitrine_index::Thumbnail;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, BlobPropertyBag, Request, RequestInit, Response, Url};

/// Why a thumbnail is not shown.
#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    /// The request failed or the host answered with an error status.
    #[error("cannot fetch {0}")]
    Fetch(String),
    /// The bytes are not the thumbnail the metadata names.
    #[error(transparent)]
    Index(#[from] vitrine_index::Error),
}

/// A pack's whole bytes once received, behind a lock held while they are being fetched.
type Slot = Rc<Mutex<Option<Rc<Vec<u8>>>>>;

/// Whole packs kept in memory, at most (the oldest is dropped first).
const KEPT_PACKS: usize = 32;

thread_local! {
    /// Whole packs received (from hosts that ignore ranges, or the offline cache), by URL.
    static PACKS: RefCell<HashMap<String, Slot>> = RefCell::default();
    /// The URLs of the packs held whole, oldest first.
    static HELD: RefCell<VecDeque<String>> = RefCell::default();
    /// Whether this host answers Range requests with the part alone (unknown until one answer).
    static RANGES: Cell<Option<bool>> = const { Cell::new(None) };
}

async fn fetch_range(url: &str, range: &str) -> Result<(u16, Vec<u8>), ThumbnailError> {
    let fail = |_| ThumbnailError::Fetch(url.to_string());
    let init = RequestInit::new();
    let request = Request::new_with_str_and_init(url, &init).map_err(fail)?;
    request.headers().set("Range", range).map_err(fail)?;
    let window = web_sys::window().ok_or_else(|| ThumbnailError::Fetch(url.to_string()))?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(fail)?
        .unchecked_into();
    if !response.ok() {
        return Err(ThumbnailError::Fetch(url.to_string()));
    }
    let buffer = JsFuture::from(response.array_buffer().map_err(fail)?)
        .await
        .map_err(fail)?;
    Ok((response.status(), Uint8Array::new(&buffer).to_vec()))
}

/// The JPEG bytes of `thumb` in the pack at `pack` (relative to the index folder), checked.
pub async fn bytes(pack: &str, thumb: &Thumbnail) -> Result<Vec<u8>, ThumbnailError> {
    let url = format!("{}{pack}", crate::url_state::index_base());
    let slot = PACKS.with(|p| p.borrow_mut().entry(url.clone()).or_default().clone());
    // Until the host is known to answer ranges, one request per pack at a time: a host that
    // sends whole packs then sends each pack once.
    let guard = if RANGES.with(Cell::get) == Some(true) {
        None
    } else {
        Some(slot.lock().await)
    };
    if let Some(whole) = guard.as_ref().and_then(|g| g.as_ref().cloned()) {
        return Ok(thumb.cut(&whole)?.to_vec());
    }
    let (status, bytes) = fetch_range(&url, &thumb.range()).await?;
    RANGES.with(|r| r.set(Some(status == 206)));
    let part = thumb.cut(&bytes)?.to_vec();
    if let (false, Some(mut g)) = (status == 206, guard) {
        *g = Some(Rc::new(bytes));
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            h.push_back(url);
            if let Some(old) = (h.len() > KEPT_PACKS).then(|| h.pop_front()).flatten() {
                PACKS.with(|p| p.borrow_mut().remove(&old));
            }
        });
    }
    Ok(part)
}

/// A blob URL showing `jpeg`; revoke it with [`revoke`] when the image goes.
pub fn blob_url(jpeg: &[u8]) -> Result<String, JsValue> {
    let parts = Array::of1(&Uint8Array::from(jpeg));
    let options = BlobPropertyBag::new();
    options.set_type("image/jpeg");
    let blob = Blob::new_with_u8_array_sequence_and_options(&parts, &options)?;
    Url::create_object_url_with_blob(&blob)
}

/// Frees a URL made by [`blob_url`].
pub fn revoke(url: &str) {
    let _ = Url::revoke_object_url(url);
}
