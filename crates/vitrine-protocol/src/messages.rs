//! Page ↔ search worker: JSON over `postMessage`. The page asks the worker to load an index and
//! to run searches; the worker reports progress, readiness and results, each failure as a typed
//! error the page can tell apart without reading its text.

use serde::{Deserialize, Serialize};
use vitrine_index::filters::{Counts, Filter};
use vitrine_index::{Facet, Item, OfflineFiles, SearchMode};

use crate::errors::{LoadError, SearchError};

/// Results the page asks for per search: a filtered partitioned query plans its lists to hold
/// this many allowed items (the partition benchmark measures what that fetches).
pub const RESULTS_PER_SEARCH: usize = 48;

/// What to search for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum SearchQuery {
    /// A text query, with query arithmetic.
    Text(String),
    /// "More like this" for an item id.
    Like(String),
    /// Every item in catalogue order (filters apply).
    Browse,
}

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Load the index whose manifest is in the folder `base` (an absolute URL ending in `/`).
    Load {
        /// Absolute URL of the index folder, ending in `/`.
        base: String,
    },
    /// Run a query; answered by [`Response::Results`] or [`Response::SearchFailed`] with this id.
    Search {
        /// Chosen by the page; newer searches have larger ids.
        id: u32,
        /// The query.
        query: SearchQuery,
        /// How many results.
        k: usize,
        /// How text is ranked (hybrid runs as keyword until the encoder has loaded).
        mode: SearchMode,
        /// Facet selections `(facet, label)`.
        facets: Vec<(String, String)>,
        /// Filter selections `(key, value or range)`.
        filters: Vec<(String, String)>,
    },
}

/// One search result with the item's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Found {
    /// The ranking's score: cosine similarity (semantic, More like this), fused score
    /// (hybrid), keyword score, or 0 (browsing).
    pub score: f32,
    /// The item.
    pub item: Item,
    /// The thumbnail pack holding the item's thumbnail (relative to the index folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack: Option<String>,
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
    /// Filters from the catalogue's columns.
    pub filters: Vec<Filter>,
    /// The index's files to keep for offline use (relative to the index folder).
    pub offline: OfflineFiles,
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// The worker is listening.
    Started,
    /// The manifest and item table are loaded and checked: keyword search, filters and
    /// browsing work; the vectors and the text encoder follow.
    Opened(SiteInfo),
    /// The vectors are loaded and checked: "More like this" works.
    VectorsLoaded {
        /// Files to keep offline once fetched (the lists and groups of a partitioned index), relative to
        /// the index folder.
        on_demand: Vec<String>,
    },
    /// Bytes of the vectors and text encoder downloaded so far, of `total`.
    Progress {
        /// Bytes received.
        loaded: u64,
        /// Bytes to receive in all.
        total: u64,
    },
    /// The vectors and text encoder are loaded and checked: every search works.
    Ready {
        /// How queries are encoded: the encoder's layout and the kernel running it (e.g.
        /// `q8e4a7 relaxed`, `f16`).
        engine: String,
    },
    /// Loading failed; nothing can be searched.
    Failed {
        /// Why.
        error: LoadError,
    },
    /// Results of search `id`, best first.
    Results {
        /// The request's id.
        id: u32,
        /// The results.
        found: Vec<Found>,
        /// How the query's candidates spread over facets and filters.
        counts: Counts,
        /// How the text was ranked.
        mode: SearchMode,
    },
    /// Search `id` failed.
    SearchFailed {
        /// The request's id.
        id: u32,
        /// Why.
        error: SearchError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::DownloadError;

    #[test]
    fn messages_round_trip_through_json_with_typed_errors() {
        let messages = [
            Response::Failed {
                error: LoadError::Download(DownloadError::Status {
                    url: "http://x/search/manifest.json".into(),
                    status: 404,
                    status_text: "Not Found".into(),
                }),
            },
            Response::SearchFailed {
                id: 7,
                error: SearchError::Superseded,
            },
            Response::Progress {
                loaded: 1,
                total: 2,
            },
        ];
        for m in messages {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(
                serde_json::from_str::<Response>(&json).unwrap(),
                m,
                "{json}"
            );
        }
        let request = Request::Search {
            id: 1,
            query: SearchQuery::Like("sku-1".into()),
            k: 10,
            mode: SearchMode::Hybrid,
            facets: vec![("color".into(), "red".into())],
            filters: vec![("price".into(), "10-50".into())],
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), request);
    }
}
