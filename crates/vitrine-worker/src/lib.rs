//! The search worker: everything heavy runs here, off the page's thread, so typing never freezes.
//! It downloads the index (reporting bytes), has `vitrine-search` check every file against the
//! manifest, encodes queries with CLIP and ranks; only the latest pending search is run.

mod errors;
mod fetch;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use vitrine_index::{Manifest, MetadataChunk, SearchFiles};
use vitrine_protocol::{
    DownloadError, Found, IndexFault, IndexProblem, LoadError, Request, Response, SearchError,
    SearchQuery, SiteInfo,
};
use vitrine_search::Engine;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

/// The worker's state between messages.
#[derive(Default)]
struct State {
    base: String,
    engine: Option<Rc<Engine>>,
    chunks: HashMap<usize, Rc<MetadataChunk>>,
    /// The newest search not yet started; one it replaces is answered "superseded".
    pending: Option<Request>,
    busy: bool,
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn post(response: &Response) {
    // Only non-finite scores fail to encode, and the engine clamps every score.
    if let Ok(json) = serde_json::to_string(response) {
        let _ = scope().post_message(&JsValue::from_str(&json));
    }
}

/// Installs the message handler and tells the page the worker is listening.
pub fn start() {
    console_error_panic_hook::set_once();
    let state = Rc::new(RefCell::new(State::default()));
    let handler = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let Some(text) = event.data().as_string() else {
            return;
        };
        match serde_json::from_str::<Request>(&text) {
            Ok(Request::Load { base }) => {
                let state = state.clone();
                wasm_bindgen_futures::spawn_local(async move { load(state, base).await });
            }
            Ok(search @ Request::Search { .. }) => {
                let start = {
                    let mut s = state.borrow_mut();
                    if let Some(Request::Search { id, .. }) = s.pending.replace(search) {
                        post(&Response::SearchFailed {
                            id,
                            error: SearchError::Superseded,
                        });
                    }
                    !std::mem::replace(&mut s.busy, true)
                };
                if start {
                    let state = state.clone();
                    wasm_bindgen_futures::spawn_local(async move { drain(state).await });
                }
            }
            Err(e) => post(&Response::Failed {
                error: LoadError::BadRequest(e.to_string()),
            }),
        }
    });
    scope().set_onmessage(Some(handler.as_ref().unchecked_ref()));
    handler.forget();
    post(&Response::Started);
}

async fn load(state: Rc<RefCell<State>>, base: String) {
    match load_engine(&base).await {
        Ok(engine) => {
            let m = engine.manifest();
            let info = SiteInfo {
                build_id: m.build_id.clone(),
                count: m.count,
                model: m.model.id.clone(),
                facets: m.facets.clone(),
                offline: m.files.offline(),
                engine: engine.engine(),
            };
            let mut s = state.borrow_mut();
            s.base = base;
            s.engine = Some(Rc::new(engine));
            s.chunks.clear();
            drop(s);
            post(&Response::Ready(info));
        }
        Err(error) => post(&Response::Failed { error }),
    }
}

async fn load_engine(base: &str) -> Result<Engine, LoadError> {
    let manifest_url = format!("{base}{}", vitrine_index::MANIFEST);
    let bytes = fetch::fetch_all(&manifest_url, true)
        .await
        .map_err(LoadError::Download)?;
    let manifest =
        Manifest::from_json(&bytes).map_err(|e| LoadError::Index(errors::index_fault(&e)))?;
    let refs = manifest.files.search().into_vec();
    let total = refs.iter().map(|r| r.size).sum();
    let mut down = fetch::Downloader::new(total, |loaded, total| {
        post(&Response::Progress { loaded, total })
    });
    let mut got = Vec::with_capacity(refs.len());
    for r in refs {
        let b = down
            .fetch(&format!("{base}{}", r.path), r.size)
            .await
            .map_err(LoadError::Download)?;
        // Check each file as it arrives, so a bad one is named before the rest downloads.
        r.check(&b)
            .map_err(|e| LoadError::Index(errors::index_fault(&e)))?;
        got.push(b);
    }
    let files = SearchFiles::from_vec(got).expect("one download per search file");
    Engine::from_checked(manifest, files).map_err(errors::load_error)
}

/// Runs pending searches until none is left, newest first (older ones were superseded).
async fn drain(state: Rc<RefCell<State>>) {
    loop {
        let (request, engine, base) = {
            let mut s = state.borrow_mut();
            match (s.pending.take(), s.engine.clone()) {
                (Some(r), Some(e)) => (r, e, s.base.clone()),
                (Some(Request::Search { id, .. }), None) => {
                    post(&Response::SearchFailed {
                        id,
                        error: SearchError::NotLoaded,
                    });
                    continue;
                }
                _ => {
                    s.busy = false;
                    return;
                }
            }
        };
        let Request::Search {
            id,
            query,
            k,
            facets,
        } = request
        else {
            continue;
        };
        let response = match search(&state, &engine, &base, &query, k, &facets).await {
            Ok(found) => Response::Results { id, found },
            Err(error) => Response::SearchFailed { id, error },
        };
        post(&response);
        // Let newer messages in before the next search.
        fetch::yield_now().await;
    }
}

async fn search(
    state: &Rc<RefCell<State>>,
    engine: &Engine,
    base: &str,
    query: &SearchQuery,
    k: usize,
    facets: &[(String, String)],
) -> Result<Vec<Found>, SearchError> {
    let filter = engine.facet_filter(facets);
    let hits = match query {
        SearchQuery::Text(text) => engine.search_text(text, k, filter.as_deref()),
        SearchQuery::Like(id) => engine.like(id, k, filter.as_deref()),
    }
    .map_err(errors::search_error)?;
    let files = &engine.manifest().files;
    let mut found = Vec::with_capacity(hits.len());
    for h in hits {
        let Some((n, chunk_ref)) = files.chunk_of(h.index) else {
            return Err(SearchError::Index(IndexFault {
                problem: IndexProblem::Malformed,
                message: format!("no metadata chunk holds item {}", h.index),
            }));
        };
        let cached = state.borrow().chunks.get(&n).cloned();
        let chunk = match cached {
            Some(c) => c,
            None => {
                let r = &chunk_ref.file;
                let bytes = fetch::fetch_all(&format!("{base}{}", r.path), false)
                    .await
                    .map_err(|e| match e {
                        // Chunks are fetched as results need them: after a redeploy, a page
                        // opened earlier finds its build's files gone.
                        DownloadError::Status { status: 404, .. } => SearchError::Redeployed(e),
                        e => SearchError::Download(e),
                    })?;
                r.check(&bytes)
                    .map_err(|e| SearchError::Index(errors::index_fault(&e)))?;
                let c = MetadataChunk::from_json(&bytes)
                    .map_err(|e| SearchError::Index(errors::index_fault(&e)))?;
                let c = Rc::new(c);
                state.borrow_mut().chunks.insert(n, c.clone());
                c
            }
        };
        let item = chunk
            .item(h.index)
            .map_err(|e| SearchError::Index(errors::index_fault(&e)))?
            .clone();
        found.push(Found {
            score: h.score,
            item,
        });
    }
    Ok(found)
}
