//! Page ↔ search worker: JSON over `postMessage`. The page asks the worker to load an index and
//! to run searches; the worker reports progress, readiness and results, each failure as a typed
//! error the page can tell apart without reading its text.

use serde::{Deserialize, Serialize};
use vitrine_index::{Facet, Item, OfflineFiles};

use crate::errors::{LoadError, SearchError};

/// What to search for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum SearchQuery {
    /// A text query, with query arithmetic.
    Text(String),
    /// "More like this" for an item id.
    Like(String),
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
    /// The index's files to keep for offline use (relative to the index folder).
    pub offline: OfflineFiles,
    /// How queries are encoded: the encoder's layout and the kernel running it (e.g.
    /// `q8e4a7 relaxed`, `f16`).
    pub engine: String,
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
        /// Why.
        error: LoadError,
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
            facets: vec![("color".into(), "red".into())],
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), request);
    }
}
