//! Downloads from the worker: whole bodies, streamed so the caller can report bytes received of
//! the total the manifest announced. Goes through the page's service worker, which serves cached
//! files offline. Failures are [`DownloadError`]s, told apart by kind (an HTTP status is a number).

use js_sys::{Reflect, Uint8Array};
use vitrine_protocol::DownloadError;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, RequestCache, RequestInit};

fn js_error(e: JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Starts a GET; `revalidate` asks the HTTP cache to check with the server first (the manifest).
async fn start(url: &str, revalidate: bool) -> Result<web_sys::Response, DownloadError> {
    let init = RequestInit::new();
    if revalidate {
        init.set_cache(RequestCache::NoCache);
    }
    let promise = super::scope().fetch_with_str_and_init(url, &init);
    let resp: web_sys::Response = JsFuture::from(promise)
        .await
        .map_err(|e| DownloadError::Unreachable {
            url: url.to_string(),
            detail: js_error(e),
        })?
        .unchecked_into();
    if !resp.ok() {
        return Err(DownloadError::Status {
            url: url.to_string(),
            status: resp.status(),
            status_text: resp.status_text(),
        });
    }
    Ok(resp)
}

/// Downloads a whole body.
pub(crate) async fn fetch_all(url: &str, revalidate: bool) -> Result<Vec<u8>, DownloadError> {
    let broke = |e: JsValue| DownloadError::BrokenOff {
        url: url.to_string(),
        detail: js_error(e),
    };
    let resp = start(url, revalidate).await?;
    let buf = JsFuture::from(resp.array_buffer().map_err(broke)?)
        .await
        .map_err(broke)?;
    Ok(Uint8Array::new(&buf).to_vec())
}

/// The most a download sets aside before its bytes arrive: the manifest's sizes are checked
/// ([`vitrine_index::MAX_FILE_BYTES`]), but a reader still does not trust them with all its memory.
const RESERVE_AT_MOST: u64 = 256 << 20;

/// Downloads several files, reporting bytes received over all of them to `progress`
/// (`loaded`, `total`) at most every 100 ms and after each file.
pub(crate) struct Downloader<P: FnMut(u64, u64)> {
    loaded: u64,
    total: u64,
    reported: f64,
    progress: P,
}

impl<P: FnMut(u64, u64)> Downloader<P> {
    /// Progress will be reported against `total` bytes.
    pub(crate) fn new(total: u64, mut progress: P) -> Self {
        progress(0, total);
        Self {
            loaded: 0,
            total,
            reported: 0.0,
            progress,
        }
    }

    /// Downloads one file of `size` bytes (as the manifest says) chunk by chunk, into a buffer
    /// reserved up front (up to [`RESERVE_AT_MOST`]) so a large model is rarely copied while the
    /// buffer grows; a body longer than `size` is refused as it arrives.
    pub(crate) async fn fetch(&mut self, url: &str, size: u64) -> Result<Vec<u8>, DownloadError> {
        let resp = start(url, false).await?;
        let Some(body) = resp.body() else {
            return fetch_all(url, false).await;
        };
        let broke = |e: JsValue| DownloadError::BrokenOff {
            url: url.to_string(),
            detail: js_error(e),
        };
        let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
        let reserve = size.min(RESERVE_AT_MOST);
        let mut out = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
        loop {
            let chunk = JsFuture::from(reader.read()).await.map_err(broke)?;
            let done = Reflect::get(&chunk, &"done".into())
                .map(|d| d.is_truthy())
                .unwrap_or(true);
            if done {
                break;
            }
            let value: Uint8Array = Reflect::get(&chunk, &"value".into())
                .map_err(broke)?
                .unchecked_into();
            let start = out.len();
            if start as u64 + u64::from(value.length()) > size {
                return Err(DownloadError::TooLarge {
                    url: url.to_string(),
                    limit: size,
                });
            }
            out.resize(start + value.length() as usize, 0);
            value.copy_to(&mut out[start..]);
            self.loaded += u64::from(value.length());
            let now = js_sys::Date::now();
            if now - self.reported > 100.0 {
                self.reported = now;
                (self.progress)(self.loaded, self.total);
            }
        }
        (self.progress)(self.loaded, self.total);
        Ok(out)
    }
}

/// Gives the event loop a turn (so queued messages are handled between searches).
pub(crate) async fn yield_now() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = super::scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
    });
    let _ = JsFuture::from(promise).await;
}
