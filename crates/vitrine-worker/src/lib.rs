//! The search worker: everything heavy runs here, off the page's thread, so typing never freezes.
//! It opens the index (manifest, item table: keyword search works at once), then downloads the
//! vectors and the text encoder (reporting bytes), fetches keyword shards and metadata chunks as
//! searches need them, checks every file against the manifest, and ranks with `vitrine-search`;
//! only the latest pending search is run.

mod errors;
mod fetch;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use vitrine_index::chunks::ChunkTable;
use vitrine_index::filters::Counts;
use vitrine_index::{EncoderFiles, Manifest, MetadataChunk, SearchMode};
use vitrine_protocol::{
    DownloadError, Found, IndexFault, IndexProblem, LoadError, Request, Response, SearchError,
    SearchQuery, SiteInfo,
};
use vitrine_search::{Engine, Query, Selection};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

/// The worker's state between messages.
#[derive(Default)]
struct State {
    base: String,
    /// The opened site; the vectors, encoder and keyword shards are added as they arrive.
    engine: Option<Rc<RefCell<Engine>>>,
    /// Where each item's metadata chunk and thumbnail pack are.
    table: Rc<ChunkTable>,
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

/// Opens the site (manifest and item table: keyword search works), then adds the vectors and
/// the text encoder, telling the page at each step.
async fn load(state: Rc<RefCell<State>>, base: String) {
    let (engine, table) = match open(&base).await {
        Ok(opened) => opened,
        Err(error) => return post(&Response::Failed { error }),
    };
    let m = engine.manifest();
    let info = SiteInfo {
        build_id: m.build_id.clone(),
        count: m.count,
        model: m.model.id.clone(),
        facets: m.facets.clone(),
        filters: m.filters.clone(),
        offline: m.files.offline(&table, None),
    };
    let files = m.files.clone();
    let engine = Rc::new(RefCell::new(engine));
    let table = Rc::new(table);
    {
        let mut s = state.borrow_mut();
        s.base = base.clone();
        s.engine = Some(engine.clone());
        s.table = table.clone();
        s.chunks.clear();
    }
    post(&Response::Opened(info));
    match add_models(&engine, &base, &files, &table).await {
        Ok(name) => post(&Response::Ready { engine: name }),
        Err(error) => post(&Response::Failed { error }),
    }
}

/// Downloads and checks one file of the manifest.
async fn checked(base: &str, r: &vitrine_index::FileRef) -> Result<Vec<u8>, LoadError> {
    let bytes = fetch::fetch_all(&format!("{base}{}", r.path), false)
        .await
        .map_err(LoadError::Download)?;
    r.check(&bytes)
        .map_err(|e| LoadError::Index(errors::index_fault(&e)))?;
    Ok(bytes)
}

/// The manifest, the item table and the chunk table.
async fn open(base: &str) -> Result<(Engine, ChunkTable), LoadError> {
    let manifest_url = format!("{base}{}", vitrine_index::MANIFEST);
    let bytes = fetch::fetch_all(&manifest_url, true)
        .await
        .map_err(LoadError::Download)?;
    let manifest =
        Manifest::from_json(&bytes).map_err(|e| LoadError::Index(errors::index_fault(&e)))?;
    let items = checked(base, &manifest.files.items).await?;
    let table = checked(base, &manifest.files.chunks).await?;
    let table = ChunkTable::from_bytes(&table, manifest.count)
        .map_err(|e| LoadError::Index(errors::index_fault(&e)))?;
    let engine = Engine::open(manifest, &items).map_err(errors::load_error)?;
    Ok((engine, table))
}

/// The vectors, then the text encoder (largest file first, for early progress); returns how
/// queries are encoded.
async fn add_models(
    engine: &RefCell<Engine>,
    base: &str,
    files: &vitrine_index::Files,
    table: &ChunkTable,
) -> Result<String, LoadError> {
    let e = &files.encoder;
    let refs = [&files.vectors, &e.weights, &e.tokenizer, &e.config];
    let total = refs
        .iter()
        .chain(&files.lists.iter().collect::<Vec<_>>())
        .map(|r| r.size)
        .sum();
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
        if got.is_empty() {
            engine
                .borrow_mut()
                .add_vectors(&b)
                .map_err(errors::load_error)?;
            // An index of one list comes whole (the list and its group), as before
            // partitioning; a partitioned one fetches its groups and lists as queries need them.
            for (j, list) in files.lists.iter().enumerate() {
                let bytes = down
                    .fetch(&format!("{base}{}", list.path), list.size)
                    .await
                    .map_err(LoadError::Download)?;
                list.check(&bytes)
                    .map_err(|e| LoadError::Index(errors::index_fault(&e)))?;
                engine
                    .borrow_mut()
                    .add_vector_file(j, &bytes)
                    .map_err(errors::load_error)?;
            }
            // The lists of a partitioned index are kept offline once a search fetched them.
            let on_demand = {
                let e = engine.borrow();
                files
                    .offline(table, e.vectors().map(|v| v.root()))
                    .on_demand
            };
            post(&Response::VectorsLoaded { on_demand });
        }
        got.push(b);
    }
    let [_, weights, tokenizer, config]: [Vec<u8>; 4] =
        got.try_into().expect("one download per file");
    let mut engine = engine.borrow_mut();
    engine
        .add_encoder(EncoderFiles {
            config,
            weights,
            tokenizer,
        })
        .map_err(errors::load_error)?;
    Ok(engine.engine().unwrap_or_default())
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
            mode,
            facets,
            filters,
        } = request
        else {
            continue;
        };
        let selection = Selection { facets, filters };
        let response = match search(&state, &engine, &base, &query, mode, &selection, k).await {
            Ok((found, counts, mode)) => Response::Results {
                id,
                found,
                counts,
                mode,
            },
            Err(error) => Response::SearchFailed { id, error },
        };
        post(&response);
        // Let newer messages in before the next search.
        fetch::yield_now().await;
    }
}

/// Fetches the keyword shards a query needs that are not loaded yet: a text query's words (and
/// the text as an id), or the id of a "More like this".
async fn fetch_shards(
    engine: &RefCell<Engine>,
    base: &str,
    query: &SearchQuery,
) -> Result<(), SearchError> {
    let missing: Vec<(usize, vitrine_index::FileRef)> = {
        let e = engine.borrow();
        let missing = match query {
            SearchQuery::Text(text) => e.keywords().missing(&vitrine_search::keyword_text(text)),
            SearchQuery::Like(id) => e.keywords().missing_id(id),
            SearchQuery::Browse => Vec::new(),
        };
        missing.into_iter().map(|(n, r)| (n, r.clone())).collect()
    };
    for (n, r) in missing {
        let bytes = fetch_result_file(base, &r).await?;
        engine
            .borrow_mut()
            .keywords_mut()
            .insert(n, &bytes)
            .map_err(|e| SearchError::Index(errors::index_fault(&e)))?;
    }
    Ok(())
}

/// Fetches the groups or lists of the vectors a search needs, all at once, and adds them.
async fn fetch_vector_files(
    engine: &RefCell<Engine>,
    base: &str,
    lists: &[usize],
) -> Result<(), SearchError> {
    let refs: Vec<(usize, vitrine_index::FileRef)> = {
        let e = engine.borrow();
        lists
            .iter()
            .filter_map(|&j| Some((j, e.vector_file(j)?)))
            .collect()
    };
    if refs.len() != lists.len() {
        return Err(SearchError::Index(IndexFault {
            problem: IndexProblem::Malformed,
            message: format!("the vectors' root has no files {lists:?}"),
        }));
    }
    let fetched =
        futures::future::join_all(refs.iter().map(|(_, r)| fetch_result_file(base, r))).await;
    for ((j, _), bytes) in refs.iter().zip(fetched) {
        engine
            .borrow_mut()
            .add_vector_file(*j, &bytes?)
            .map_err(errors::search_error)?;
    }
    Ok(())
}

/// Downloads and checks a file a search needs.
async fn fetch_result_file(base: &str, r: &vitrine_index::FileRef) -> Result<Vec<u8>, SearchError> {
    let bytes = fetch::fetch_all(&format!("{base}{}", r.path), false)
        .await
        .map_err(|e| match e {
            // Shards and chunks are fetched as searches need them: after a redeploy, a page
            // opened earlier finds its build's files gone.
            DownloadError::Status { status: 404, .. } => SearchError::Redeployed(e),
            e => SearchError::Download(e),
        })?;
    r.check(&bytes)
        .map_err(|e| SearchError::Index(errors::index_fault(&e)))?;
    Ok(bytes)
}

async fn search(
    state: &Rc<RefCell<State>>,
    engine: &RefCell<Engine>,
    base: &str,
    query: &SearchQuery,
    mode: SearchMode,
    selection: &Selection,
    k: usize,
) -> Result<(Vec<Found>, Counts, SearchMode), SearchError> {
    fetch_shards(engine, base, query).await?;
    let query = match query {
        SearchQuery::Text(text) => Query::Text(text.clone()),
        SearchQuery::Like(id) => Query::Like(id.clone()),
        SearchQuery::Browse => Query::Browse,
    };
    let outcome = loop {
        let result = engine.borrow().search(&query, mode, selection, k);
        match result {
            Err(vitrine_search::Error::NeedFiles(files)) => {
                fetch_vector_files(engine, base, &files).await?
            }
            r => break r.map_err(errors::search_error)?,
        }
    };
    let table = state.borrow().table.clone();
    let mut found = Vec::with_capacity(outcome.hits.len());
    for h in outcome.hits {
        let Some((n, entry)) = table.chunk_of(h.index) else {
            return Err(SearchError::Index(IndexFault {
                problem: IndexProblem::Malformed,
                message: format!("no metadata chunk holds item {}", h.index),
            }));
        };
        let cached = state.borrow().chunks.get(&n).cloned();
        let chunk = match cached {
            Some(c) => c,
            None => {
                let bytes = fetch_result_file(base, &entry.metadata).await?;
                let c = MetadataChunk::from_json(&bytes, entry.first)
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
            pack: entry.pack.as_ref().map(|p| p.path.clone()),
        });
    }
    Ok((found, outcome.counts, outcome.mode))
}
