//! Search over a built site, for `build-index search` and the page's worker alike, so the command
//! line predicts exactly what shoppers see. A site opens from its manifest and item table
//! (keyword search, filters, browsing), then takes the vectors ("More like this") and the text
//! encoder (semantic and hybrid search) as they arrive; every file is checked against the
//! manifest by whoever fetched it.

mod arithmetic;
mod filter;
mod fuse;
mod keyword;
mod text;

pub use arithmetic::keyword_text;
pub use filter::Selection;
pub use fuse::RRF_K;
pub use keyword::{IdShardMissing, KeywordHit, KeywordRanking, Keywords};
use vitrine_index::filters::Counts;
use vitrine_index::lists::{ListIndex, NeedFiles, QueryKind, Root};
use vitrine_index::{EncoderFiles, Hit, ItemTable, Manifest, SearchMode};

/// A part of the site that arrives after the item table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The int8 vectors.
    Vectors,
    /// The text encoder.
    Encoder,
    /// The keyword shard that holds an id ([`Keywords::missing_id`]).
    IdShard,
}

/// Everything that can go wrong loading or searching a site.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text encoder or tokenizer failed to load or run.
    #[error("text encoder: {0}")]
    Clip(#[from] vitrine_clip::Error),
    /// An index file is malformed, of another version, or fails its hash check.
    #[error("{0}")]
    Index(#[from] vitrine_index::Error),
    /// The files do not fit together (e.g. the encoder's width differs from the vectors').
    #[error("{0}")]
    Mismatch(String),
    /// The text encoder gave a vector with NaN or infinite values.
    #[error("the text encoder gave a non-finite vector for {0:?}; the encoder file is damaged")]
    NotFinite(String),
    /// `like` was given an id the catalogue does not have.
    #[error("no item has the id {0:?}")]
    UnknownId(String),
    /// A facet, filter, value or range that this site does not have.
    #[error("{0}")]
    Selection(String),
    /// The search needs a part of the site that has not been loaded yet.
    #[error("{0:?} not loaded yet")]
    NotLoaded(Part),
    /// The search needs these files beside the vectors' root (by [`Engine::vector_file`]
    /// number): add them ([`Engine::add_vector_file`]) and search again.
    #[error("the search needs {} more files of the vectors", .0.len())]
    NeedFiles(Vec<usize>),
}

impl From<NeedFiles> for Error {
    fn from(n: NeedFiles) -> Self {
        Error::NeedFiles(n.0)
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Candidates a semantic ranking contributes to fusion and to the counts.
pub const WINDOW: usize = 1000;

/// What to search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// A text query (query arithmetic for the semantic side).
    Text(String),
    /// "More like this" for an item id.
    Like(String),
    /// Every item, in catalogue order (filters still apply).
    Browse,
}

/// A search's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The best `k`, best first.
    pub hits: Vec<Hit>,
    /// How the query's candidates spread over facets and filters.
    pub counts: Counts,
    /// How the text was ranked (hybrid asked before the encoder arrived runs as keyword).
    pub mode: SearchMode,
}

/// A loaded site.
#[derive(Debug)]
pub struct Engine {
    manifest: Manifest,
    items: ItemTable,
    keywords: Keywords,
    vectors: Option<ListIndex>,
    text: Option<text::TextSide>,
}

impl Engine {
    /// Opens a site from its manifest and item table (checked by the caller).
    pub fn open(manifest: Manifest, items: &[u8]) -> Result<Self> {
        if manifest.quantization.kind != vitrine_index::QUANTIZATION {
            return Err(Error::Mismatch(format!(
                "the vectors are quantized as {:?}, this page reads {:?}; rebuild the index with \
                 this version of build-index or deploy the matching page",
                manifest.quantization.kind,
                vitrine_index::QUANTIZATION
            )));
        }
        let items = ItemTable::from_json(items, manifest.count as usize)?;
        let keywords = Keywords::new(
            manifest.files.keywords.clone(),
            &manifest.keywords,
            manifest.count,
        );
        Ok(Self {
            manifest,
            items,
            keywords,
            vectors: None,
            text: None,
        })
    }

    /// Adds the vectors' root (checked by the caller); its lists and groups follow with
    /// [`Engine::add_vector_file`].
    pub fn add_vectors(&mut self, bytes: &[u8]) -> Result<()> {
        let root = Root::from_bytes(bytes)?;
        let count = self.manifest.count;
        let dim = self.manifest.model.dim as usize;
        if root.count() != count || root.dim() != dim {
            return Err(Error::Mismatch(format!(
                "the vectors hold {} items of width {}, the manifest says {count} of width {dim}; \
                 the files come from different builds",
                root.count(),
                root.dim()
            )));
        }
        self.vectors = Some(ListIndex::new(root));
        Ok(())
    }

    /// Adds file `j` beside the vectors' root ([`Engine::vector_file`], checked by the caller).
    pub fn add_vector_file(&mut self, j: usize, bytes: &[u8]) -> Result<()> {
        let index = self
            .vectors
            .as_mut()
            .ok_or(Error::NotLoaded(Part::Vectors))?;
        Ok(index.add_file(j, bytes)?)
    }

    /// File `j` beside the vectors' root (a list, or a group after the lists), once the root is
    /// added.
    pub fn vector_file(&self, j: usize) -> Option<vitrine_index::FileRef> {
        let root = self.vectors.as_ref()?.root();
        (j < root.file_count()).then(|| root.file(j))
    }

    /// Adds the text encoder (its files checked by the caller).
    pub fn add_encoder(&mut self, files: EncoderFiles<Vec<u8>>) -> Result<()> {
        let text = text::TextSide::new(self.manifest.encoder.format, files)?;
        let dim = self.manifest.model.dim as usize;
        if text.dim() != dim {
            return Err(Error::Mismatch(format!(
                "the text encoder gives vectors of width {}, the index's are {dim}; the files \
                 come from different builds",
                text.dim()
            )));
        }
        self.text = Some(text);
        Ok(())
    }

    /// The keyword shards: which a query needs, and adding them as they arrive.
    pub fn keywords_mut(&mut self) -> &mut Keywords {
        &mut self.keywords
    }

    /// The keyword index.
    pub fn keywords(&self) -> &Keywords {
        &self.keywords
    }

    /// The manifest this engine was opened from.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Ids in catalogue order, facet labels and filter values.
    pub fn items(&self) -> &ItemTable {
        &self.items
    }

    /// The vectors, once their root is added.
    pub fn vectors(&self) -> Option<&ListIndex> {
        self.vectors.as_ref()
    }

    /// How queries are encoded (`q8e4a7 relaxed`, `f16`), once the encoder is added.
    pub fn engine(&self) -> Option<String> {
        self.text.as_ref().map(text::TextSide::describe)
    }

    /// Whether a mode can run now.
    pub fn can(&self, mode: SearchMode) -> bool {
        match mode {
            SearchMode::Keyword => true,
            SearchMode::Hybrid | SearchMode::Semantic => {
                self.text.is_some() && self.vectors.is_some()
            }
        }
    }

    /// Runs a search: the best `k` items allowed by `selection`, and counts over the query's
    /// candidates. `mode` ranks text queries; hybrid runs as keyword until the encoder and
    /// vectors are added.
    pub fn search(
        &self,
        query: &Query,
        mode: SearchMode,
        selection: &Selection,
        k: usize,
    ) -> Result<Outcome> {
        let compiled = filter::Compiled::new(&self.manifest, &self.items, selection)?;
        let allowed = |i: u32| compiled.allows(i);
        let count = self.manifest.count;
        let (hits, candidates, mode) = match query {
            Query::Browse => {
                let all: Vec<u32> = (0..count).collect();
                let hits = all
                    .iter()
                    .copied()
                    .filter(|&i| allowed(i))
                    .take(k)
                    .map(|index| Hit { index, score: 0.0 })
                    .collect();
                (hits, all, mode)
            }
            Query::Like(id) => {
                let vectors = self
                    .vectors
                    .as_ref()
                    .ok_or(Error::NotLoaded(Part::Vectors))?;
                let item = self
                    .keywords
                    .item_with_id(id)
                    .map_err(|_| Error::NotLoaded(Part::IdShard))?
                    .ok_or_else(|| Error::UnknownId(id.clone()))?;
                // One scan when nothing is filtered: the best k are the window's first k (ranks
                // are a total order).
                let window = vectors.like(item, WINDOW.max(k), None)?;
                let hits = match compiled.mask() {
                    None => window.iter().take(k).copied().collect(),
                    Some(mask) => vectors.like(item, k, Some(&mask))?,
                };
                (
                    hits,
                    window.iter().take(WINDOW).map(|h| h.index).collect(),
                    SearchMode::Semantic,
                )
            }
            Query::Text(q) => self.text_search(q, mode, &compiled, k)?,
        };
        Ok(Outcome {
            hits,
            counts: compiled.counts(&candidates),
            mode,
        })
    }

    fn text_search(
        &self,
        q: &str,
        mode: SearchMode,
        compiled: &filter::Compiled<'_>,
        k: usize,
    ) -> Result<(Vec<Hit>, Vec<u32>, SearchMode)> {
        let allowed = |i: u32| compiled.allows(i);
        let mode = match mode {
            SearchMode::Hybrid if !self.can(SearchMode::Hybrid) => SearchMode::Keyword,
            SearchMode::Semantic if self.text.is_none() => {
                return Err(Error::NotLoaded(Part::Encoder));
            }
            SearchMode::Semantic if self.vectors.is_none() => {
                return Err(Error::NotLoaded(Part::Vectors));
            }
            m => m,
        };
        let keywords = (mode != SearchMode::Semantic).then(|| {
            self.keywords
                .search(&arithmetic::keyword_text(q), &self.items.title_terms)
        });
        let semantic = match (&self.text, &self.vectors, mode) {
            (Some(text), Some(vectors), SearchMode::Semantic | SearchMode::Hybrid) => {
                text.query_vector(q)?.map(|v| (vectors, v))
            }
            _ => None,
        };
        let mut candidates: Vec<u32> = Vec::new();
        if let Some(kw) = &keywords {
            candidates.extend(kw.exact_id);
            candidates.extend(&kw.exact_titles);
            // Keywords alone narrow to the items with every word, when there are any.
            let narrow = mode == SearchMode::Keyword && kw.hits.iter().any(fuse::has_every_word);
            candidates.extend(
                kw.hits
                    .iter()
                    .filter(|h| !narrow || fuse::has_every_word(h))
                    .map(|h| h.item),
            );
        }
        // The unfiltered window gives the counts and, when nothing is filtered, the ranking too
        // (one scan; the best k are its first k, ranks being a total order).
        let window: Vec<Hit> = match &semantic {
            Some((vectors, v)) => vectors.search(v, QueryKind::Text, WINDOW.max(k), None)?,
            None => Vec::new(),
        };
        candidates.extend(window.iter().take(WINDOW).map(|h| h.index));
        candidates.sort_unstable();
        candidates.dedup();
        let mask = compiled.mask();
        // Filtered, the lists probed hold at least the k items shown (not the whole window).
        let filtered = |n: usize| -> Result<Vec<Hit>> {
            Ok(match (&semantic, &mask) {
                (Some((vectors, v)), Some(mask)) => {
                    vectors.search_window(v, QueryKind::Text, k, n, Some(mask))?
                }
                _ => window.iter().take(n).copied().collect(),
            })
        };
        let hits = match (mode, &keywords, &semantic) {
            (SearchMode::Semantic, _, Some(_)) => filtered(k)?,
            (SearchMode::Semantic, _, None) => Vec::new(),
            (SearchMode::Hybrid, Some(kw), Some(_)) => fuse::fuse(&filtered(WINDOW)?, kw, &allowed),
            (_, Some(kw), _) => fuse::keywords_only(kw, &allowed),
            (_, None, _) => Vec::new(),
        };
        Ok((hits.into_iter().take(k).collect(), candidates, mode))
    }
}
