//! Why loading or a search failed, as kinds the page can act on (a superseded search is dropped,
//! a redeployed site asks for a reload) and words it can show. The worker converts its errors
//! into these once, where they cross into JavaScript.

use serde::{Deserialize, Serialize};

/// Why a download failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DownloadError {
    /// The request never got an answer (offline, refused, blocked).
    #[error("cannot download {url}: {detail} (offline?)")]
    Unreachable {
        /// The URL.
        url: String,
        /// What the browser said.
        detail: String,
    },
    /// The host answered with an error status.
    #[error("cannot download {url}: HTTP {status} {status_text}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The status text.
        status_text: String,
    },
    /// The connection broke while the body was arriving.
    #[error("download of {url} broke off: {detail}")]
    BrokenOff {
        /// The URL.
        url: String,
        /// What the browser said.
        detail: String,
    },
    /// The body is larger than the manifest announced or than a reader allows.
    #[error("{url} is larger than {limit} bytes; the index is damaged or not a vitrine index")]
    TooLarge {
        /// The URL.
        url: String,
        /// The most bytes accepted.
        limit: u64,
    },
}

/// What is wrong with an index file or the files together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexProblem {
    /// A file is malformed (bad JSON, bad magic, wrong size, out of bounds).
    Malformed,
    /// The index was written in a format version this page does not read.
    Version,
    /// A file's size or hash does not match the manifest.
    Integrity,
    /// The files do not fit together (e.g. from different builds).
    Mismatch,
    /// The text encoder or its tokenizer cannot be loaded or run.
    Encoder,
}

/// An index file, or the files together, that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct IndexFault {
    /// What kind of problem.
    pub problem: IndexProblem,
    /// A sentence naming the file and the fix.
    pub message: String,
}

/// Why an index cannot be loaded: nothing can be searched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum LoadError {
    /// A file could not be downloaded.
    #[error(transparent)]
    Download(DownloadError),
    /// A file, or the files together, are not a usable index.
    #[error(transparent)]
    Index(IndexFault),
    /// The worker got a message it cannot read (a page and worker from different builds).
    #[error("bad request: {0}")]
    BadRequest(String),
}

/// Why one search failed; the index stays loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum SearchError {
    /// A newer search replaced this one before it ran.
    #[error("superseded")]
    Superseded,
    /// No index is loaded.
    #[error("the index is not loaded")]
    NotLoaded,
    /// "More like this" for an id the catalogue does not have.
    #[error("no item has the id {0:?}")]
    UnknownId(String),
    /// A facet, filter or value this catalogue does not have (a link from an older build).
    #[error("{0}")]
    Selection(String),
    /// The search needs the vectors or the text encoder, still downloading.
    #[error("this search needs the visual search model, which is still loading")]
    StillLoading,
    /// A file the results need is gone from the host: the site was redeployed since the page
    /// was opened.
    #[error("the catalogue was updated since this page was opened; reload the page ({0})")]
    Redeployed(DownloadError),
    /// A file the results need could not be downloaded.
    #[error(transparent)]
    Download(DownloadError),
    /// A file the results need is not usable.
    #[error(transparent)]
    Index(IndexFault),
    /// The search worker stopped (crashed or was never started).
    #[error("the search worker stopped")]
    WorkerStopped,
}
