//! The search worker: everything heavy runs here, off the page's thread, so typing never freezes.
//! It downloads the index (reporting bytes), has `vitrine-search` check every file against the
//! manifest, encodes queries with CLIP and ranks; only the latest pending search is run.

mod fetch;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use vitrine_index::{Manifest, MetadataChunk};
use vitrine_search::protocol::{Found, Query, Request, Response, SiteInfo};
use vitrine_search::{Engine, SiteFiles, required_files};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use fetch::Downloader;

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
    let json = serde_json::to_string(response).unwrap_or_else(|e| {
        format!(r#"{{"type":"failed","message":"cannot encode a response: {e}"}}"#)
    });
    let _ = scope().post_message(&JsValue::from_str(&json));
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
                            message: "superseded".into(),
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
                message: format!("bad request: {e}"),
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
            let mut files: Vec<String> = m.files.all().iter().map(|f| f.path.clone()).collect();
            files.push(vitrine_index::MANIFEST.to_string());
            let info = SiteInfo {
                build_id: m.build_id.clone(),
                count: m.count,
                model: m.model.id.clone(),
                facets: m.facets.clone(),
                files,
                thumbnail_bytes: m.files.thumbnails.iter().map(|f| f.size).sum(),
            };
            let mut s = state.borrow_mut();
            s.base = base;
            s.engine = Some(Rc::new(engine));
            s.chunks.clear();
            drop(s);
            post(&Response::Ready(info));
        }
        Err(message) => post(&Response::Failed { message }),
    }
}

async fn load_engine(base: &str) -> Result<Engine, String> {
    let manifest_url = format!("{base}{}", vitrine_index::MANIFEST);
    let bytes = fetch::fetch_all(&manifest_url, true).await?;
    let manifest = Manifest::from_json(&bytes).map_err(|e| e.to_string())?;
    let refs = required_files(&manifest);
    let total = refs.iter().map(|r| r.size).sum();
    let mut down = Downloader::new(total);
    let mut got = Vec::with_capacity(refs.len());
    for r in refs {
        let b = down.fetch(&format!("{base}{}", r.path), r.size).await?;
        // Check each file as it arrives, so a bad one is named before the rest downloads.
        r.check(&b).map_err(|e| e.to_string())?;
        got.push(b);
    }
    let mut it = got.into_iter();
    let mut next = || it.next().unwrap_or_default();
    let files = SiteFiles {
        config: next(),
        weights: next(),
        tokenizer: next(),
        vectors: next(),
        catalog: next(),
    };
    Engine::from_checked(manifest, files).map_err(|e| e.to_string())
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
                        message: "the index is not loaded".into(),
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
            Err(message) => Response::SearchFailed { id, message },
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
    query: &Query,
    k: usize,
    facets: &[(String, String)],
) -> Result<Vec<Found>, String> {
    let filter = engine.facet_filter(facets);
    let hits = match query {
        Query::Text(text) => engine.search_text(text, k, filter.as_deref()),
        Query::Like(id) => engine.like(id, k, filter.as_deref()),
    }
    .map_err(|e| e.to_string())?;
    let chunks = &engine.manifest().files.metadata;
    let mut found = Vec::with_capacity(hits.len());
    for h in hits {
        let Some(n) = chunks
            .iter()
            .position(|c| (c.first..c.first + c.count).contains(&h.index))
        else {
            return Err(format!("no metadata chunk holds item {}", h.index));
        };
        let cached = state.borrow().chunks.get(&n).cloned();
        let chunk = match cached {
            Some(c) => c,
            None => {
                let r = &chunks[n].file;
                let bytes = fetch::fetch_all(&format!("{base}{}", r.path), false)
                    .await
                    .map_err(|e| {
                        // Chunks are fetched as results need them: after a redeploy, a page
                        // opened earlier finds its build's files gone.
                        if e.contains("HTTP 404") {
                            format!("the catalogue was updated since this page was opened; reload the page ({e})")
                        } else {
                            e
                        }
                    })?;
                r.check(&bytes).map_err(|e| e.to_string())?;
                let c = Rc::new(MetadataChunk::from_json(&bytes).map_err(|e| e.to_string())?);
                state.borrow_mut().chunks.insert(n, c.clone());
                c
            }
        };
        let item = chunk.items[(h.index - chunk.first) as usize].clone();
        found.push(Found {
            score: h.score,
            item,
        });
    }
    Ok(found)
}
