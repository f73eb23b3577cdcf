//! What vitrine's page, its search worker and its service worker say to each other, and the
//! conventions of a deployed site they share (the index folder, the app shell's fixed file
//! names). One definition for all three and for native tests; no engine code, so the page's
//! Cargo graph stays free of models.

mod errors;
mod layout;
mod messages;

pub use errors::{DownloadError, IndexFault, IndexProblem, LoadError, SearchError};
pub use layout::{
    CACHE_IMMUTABLE, CACHE_REVALIDATE, INDEX_DIR, KeepBuild, RELAXED_SIMD_PROBE, SHELL_FILES,
    ServiceWorkerConfig, ServiceWorkerMessage, WORKER_BOOT, WorkerBuild, is_content_addressed,
};
pub use messages::{Found, RESULTS_PER_SEARCH, Request, Response, SearchQuery, SiteInfo};
