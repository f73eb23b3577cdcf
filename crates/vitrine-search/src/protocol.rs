//! The messages between the page and its search worker (JSON over `postMessage`). They live here,
//! beside the engine they drive, so both wasm crates and native tests share one definition.

use serde::{Deserialize, Serialize};
use vitrine_index::{Facet, Item};

/// What to search for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Query {
    /// A text query, with query arithmetic.
    Text(String),
    /// "More like this" for an item id.
    Like(String),
}

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Load the index whose `manifest.json` is at `base` + `manifest.json` (an absolute URL).
    Load {
        /// Absolute URL of the index folder, ending in `/`.
        base: String,
    },
    /// Run a query; answered by [`Response::Results`] or [`Response::SearchFailed`] with this id.
    Search {
        /// Chosen by the page; newer searches have larger ids.
        id: u32,
        /// The query.
        query: Query,
        /// How many results.
        k: usize,
        /// Facet selections `(facet, label)`.
        facets: Vec<(String, String)>,
    },
}

/// One search result with the item's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Found {
    /// Cosine similarity (from the int8 vector).
    pub score: f32,
    /// The item.
    pub item: Item,
}

/// What the page needs to know about a loaded index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteInfo {
    /// The manifest's build id.
    pub build_id: String,
    /// Number of items.
    pub count: u32,
    /// The model id.
    pub model: String,
    /// Facets for filter chips.
    pub facets: Vec<Facet>,
    /// Every file of the index relative to its folder (manifest included), for the offline cache.
    pub files: Vec<String>,
    /// The thumbnails' total size in bytes, to decide whether to keep them all offline.
    pub thumbnail_bytes: u64,
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// The worker is listening.
    Started,
    /// Bytes of the index downloaded so far, of `total`.
    Progress {
        /// Bytes received.
        loaded: u64,
        /// Bytes to receive in all.
        total: u64,
    },
    /// The index is loaded and checked.
    Ready(SiteInfo),
    /// Loading failed; nothing can be searched.
    Failed {
        /// Why, for the page to show.
        message: String,
    },
    /// Results of search `id`, best first.
    Results {
        /// The request's id.
        id: u32,
        /// The results.
        found: Vec<Found>,
    },
    /// Search `id` failed.
    SearchFailed {
        /// The request's id.
        id: u32,
        /// Why.
        message: String,
    },
}
