//! The page's side of the search worker: starts it, turns its messages into signals (opened,
//! load progress, ready, degraded, error) and searches into futures. The only place that talks
//! to the worker.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use futures::channel::oneshot;
use leptos::prelude::*;
use send_wrapper::SendWrapper;
use vitrine_index::SearchMode;
use vitrine_index::filters::Counts;
use vitrine_protocol::{
    Found, LoadError, RELAXED_SIMD_PROBE, Request, Response, SearchError, SearchQuery, SiteInfo,
    WORKER_BOOT, WorkerBuild,
};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, Worker, WorkerOptions};

/// Where loading stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// The worker is starting and reading the manifest and item table.
    Starting,
    /// Keyword search, filters and browsing work; the vectors and the text encoder are
    /// downloading (bytes received of the total; 0 of 0 until the first progress report).
    Opened {
        /// Bytes received.
        loaded: u64,
        /// Bytes in all.
        total: u64,
    },
    /// Every search works.
    Ready,
    /// The vectors or the text encoder failed to load: keyword search still works.
    Degraded(Unavailable),
    /// Loading failed; nothing can be searched.
    Error(Unavailable),
}

impl Status {
    /// Whether keyword search, filters and browsing work.
    pub fn opened(&self) -> bool {
        matches!(
            self,
            Status::Opened { .. } | Status::Ready | Status::Degraded(_)
        )
    }
}

/// A search's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The results, best first.
    pub found: Vec<Found>,
    /// How the query's candidates spread over facets and filters.
    pub counts: Counts,
    /// How the text was ranked (keyword while the encoder loads).
    pub mode: SearchMode,
}

/// Why search is unavailable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unavailable {
    /// The worker could not load the index.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The browser refused to create the worker.
    #[error("cannot start the search worker: {0}")]
    CannotStart(String),
    /// The worker's script or WebAssembly failed before it said anything.
    #[error("the search worker could not start (is {WORKER_BOOT} deployed?)")]
    NotStarted,
    /// The worker failed while loading the index.
    #[error("the search worker failed while loading: {0}")]
    FailedLoading(String),
    /// The worker stopped after the index was loaded.
    #[error("the search worker stopped ({0}); reload the page")]
    Stopped(String),
}

type Waiters = HashMap<u32, oneshot::Sender<Result<Answer, SearchError>>>;

struct Inner {
    worker: Option<Worker>,
    waiters: RefCell<Waiters>,
    next_id: RefCell<u32>,
}

/// A handle to the worker; cheap to clone, usable in views.
#[derive(Clone)]
pub struct Bridge {
    inner: SendWrapper<Rc<Inner>>,
    /// Loading status.
    pub status: RwSignal<Status>,
    /// The opened index.
    pub info: RwSignal<Option<SiteInfo>>,
    /// Whether "More like this" works (the vectors are loaded).
    pub vectors: RwSignal<bool>,
    /// How queries are encoded, once the encoder is loaded (e.g. `q8e4a7 relaxed`).
    pub engine: RwSignal<Option<String>>,
}

/// The worker build to run: the relaxed-SIMD one where the browser validates relaxed SIMD, the
/// `simd128` one elsewhere; `?engine=simd128|relaxed` forces one (diagnostics, tests).
fn worker_build() -> WorkerBuild {
    let forced = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|s| web_sys::UrlSearchParams::new_with_str(&s).ok())
        .and_then(|p| p.get("engine"))
        .and_then(|name| WorkerBuild::from_name(&name));
    forced.unwrap_or_else(|| {
        let probe = js_sys::Uint8Array::from(&RELAXED_SIMD_PROBE[..]);
        match js_sys::WebAssembly::validate(&probe) {
            Ok(true) => WorkerBuild::Relaxed,
            _ => WorkerBuild::Simd128,
        }
    })
}

fn post(worker: Option<&Worker>, request: &Request) {
    if let (Some(worker), Ok(json)) = (worker, serde_json::to_string(request)) {
        let _ = worker.post_message(&JsValue::from_str(&json));
    }
}

impl Bridge {
    /// Starts the worker (`worker-boot.js` beside the page) and has it load the index at
    /// `base` (absolute URL ending in `/`). `on_ready` runs once every file is loaded (the
    /// service worker then caches them from the HTTP cache instead of downloading them again
    /// while the worker does).
    pub fn start(base: String, on_ready: impl Fn(&SiteInfo) + 'static) -> Self {
        let status = RwSignal::new(Status::Starting);
        let info = RwSignal::new(None);
        let vectors = RwSignal::new(false);
        let engine = RwSignal::new(None);
        // A classic worker: Trunk builds workers for wasm-bindgen's `no-modules` target. Its boot
        // script learns the names of the files to load from the worker's name.
        let build = worker_build();
        let options = WorkerOptions::new();
        options.set_name(&format!(
            r#"{{"glue":"./{}","wasm":"./{}"}}"#,
            build.glue(),
            build.wasm()
        ));
        let worker = match Worker::new_with_options(&format!("./{WORKER_BOOT}"), &options) {
            Ok(w) => w,
            Err(e) => {
                status.set(Status::Error(Unavailable::CannotStart(format!("{e:?}"))));
                return Self::from_parts(None, status, info, vectors, engine);
            }
        };
        let bridge = Self::from_parts(Some(worker.clone()), status, info, vectors, engine);
        let inner = bridge.inner.clone();
        let handler = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return;
            };
            let Ok(response) = serde_json::from_str::<Response>(&text) else {
                return;
            };
            match response {
                Response::Started => {
                    post(inner.worker.as_ref(), &Request::Load { base: base.clone() });
                }
                Response::Opened(site) => {
                    info.set(Some(site));
                    status.set(Status::Opened {
                        loaded: 0,
                        total: 0,
                    });
                }
                Response::VectorsLoaded { on_demand } => {
                    info.update(|site| {
                        if let Some(site) = site {
                            site.offline.on_demand = on_demand;
                        }
                    });
                    vectors.set(true);
                }
                Response::Progress { loaded, total } => {
                    status.set(Status::Opened { loaded, total });
                }
                Response::Ready { engine: name } => {
                    if let Some(site) = info.get_untracked() {
                        on_ready(&site);
                    }
                    engine.set(Some(name));
                    status.set(Status::Ready);
                }
                Response::Failed { error } => {
                    let why = Unavailable::from(error);
                    let opened = status.get_untracked().opened();
                    status.set(if opened {
                        Status::Degraded(why)
                    } else {
                        Status::Error(why)
                    });
                }
                Response::Results {
                    id,
                    found,
                    counts,
                    mode,
                } => {
                    if let Some(tx) = inner.waiters.borrow_mut().remove(&id) {
                        let _ = tx.send(Ok(Answer {
                            found,
                            counts,
                            mode,
                        }));
                    }
                }
                Response::SearchFailed { id, error } => {
                    if let Some(tx) = inner.waiters.borrow_mut().remove(&id) {
                        let _ = tx.send(Err(error));
                    }
                }
            }
        });
        worker.set_onmessage(Some(handler.as_ref().unchecked_ref()));
        handler.forget();
        let inner = bridge.inner.clone();
        let on_error = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let message = js_sys::Reflect::get(&event, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
                .filter(|m| !m.is_empty());
            let started = status.get_untracked().opened();
            status.set(Status::Error(match (message, started) {
                (None, false) => Unavailable::NotStarted,
                (Some(m), false) => Unavailable::FailedLoading(m),
                (m, true) => Unavailable::Stopped(m.unwrap_or_else(|| "no reason given".into())),
            }));
            // Searches waiting for an answer get `SearchError::WorkerStopped`.
            inner.waiters.borrow_mut().clear();
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
        bridge
    }

    fn from_parts(
        worker: Option<Worker>,
        status: RwSignal<Status>,
        info: RwSignal<Option<SiteInfo>>,
        vectors: RwSignal<bool>,
        engine: RwSignal<Option<String>>,
    ) -> Self {
        let inner = Inner {
            worker,
            waiters: RefCell::default(),
            next_id: RefCell::new(0),
        };
        Self {
            inner: SendWrapper::new(Rc::new(inner)),
            status,
            info,
            vectors,
            engine,
        }
    }

    /// Runs a search in the worker.
    pub async fn search(
        &self,
        query: SearchQuery,
        k: usize,
        mode: SearchMode,
        facets: Vec<(String, String)>,
        filters: Vec<(String, String)>,
    ) -> Result<Answer, SearchError> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut next = self.inner.next_id.borrow_mut();
            *next += 1;
            *next
        };
        self.inner.waiters.borrow_mut().insert(id, tx);
        if self.inner.worker.is_none() {
            return Err(SearchError::WorkerStopped);
        }
        post(
            self.inner.worker.as_ref(),
            &Request::Search {
                id,
                query,
                k,
                mode,
                facets,
                filters,
            },
        );
        rx.await.unwrap_or(Err(SearchError::WorkerStopped))
    }
}
