//! Search over a built site: the exported text encoder and tokenizer, the int8 vectors and the
//! item table, each checked against the manifest. `build-index search` and the page's worker
//! both run this, so the command line predicts exactly what shoppers see.

mod arithmetic;

use std::collections::HashMap;
use std::sync::Mutex;

use vitrine_clip::{ClipTokenizer, QuantTextEncoder, TextEncoder};
use vitrine_index::{EncoderFormat, Hit, ItemTable, Manifest, SearchFiles, Vectors};

/// The text tower a site ships: quantized (integer kernels) or f16 (candle, in f32).
#[derive(Debug)]
enum TextModel {
    F16(TextEncoder),
    Quantized(Box<QuantTextEncoder>),
}

impl TextModel {
    fn encode(&self, ids: &[u32]) -> vitrine_clip::Result<Vec<f32>> {
        match self {
            Self::F16(e) => e.encode(ids),
            Self::Quantized(e) => e.encode(ids),
        }
    }

    /// The layout and the kernel, for the page's status line.
    fn describe(&self) -> String {
        match self {
            Self::F16(_) => "f16".into(),
            Self::Quantized(e) => {
                let kernel = match e.kernel() {
                    vitrine_clip::quant::kernels::Kernel::Portable => "portable",
                    vitrine_clip::quant::kernels::Kernel::Simd128 => "simd128",
                    vitrine_clip::quant::kernels::Kernel::Relaxed => "relaxed",
                };
                format!("{} {kernel}", e.layout())
            }
        }
    }

    fn dim(&self) -> usize {
        match self {
            Self::F16(e) => e.dim(),
            Self::Quantized(e) => e.dim(),
        }
    }

    fn max_len(&self) -> usize {
        match self {
            Self::F16(e) => e.max_len(),
            Self::Quantized(e) => e.max_len(),
        }
    }
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
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A loaded site, ready to answer queries.
#[derive(Debug)]
pub struct Engine {
    manifest: Manifest,
    encoder: TextModel,
    tokenizer: ClipTokenizer,
    vectors: Vectors,
    items: ItemTable,
    /// Term embeddings already computed: typing "red dress + su…" re-encodes only the last term.
    terms: Mutex<HashMap<String, Vec<f32>>>,
}

impl Engine {
    /// Checks every file against the manifest (size and SHA-256), then loads them.
    pub fn new(manifest: Manifest, files: SearchFiles<Vec<u8>>) -> Result<Self> {
        for (r, b) in manifest.files.search().zip(files.as_ref()).into_vec() {
            r.check(b)?;
        }
        Self::from_checked(manifest, files)
    }

    /// Loads files the caller has already checked against the manifest (each with
    /// [`FileRef::check`], as they arrived), without hashing them again.
    pub fn from_checked(manifest: Manifest, files: SearchFiles<Vec<u8>>) -> Result<Self> {
        if manifest.quantization.kind != vitrine_index::QUANTIZATION {
            return Err(Error::Mismatch(format!(
                "the vectors are quantized as {:?}, this page reads {:?}; rebuild the index with \
                 this version of build-index or deploy the matching page",
                manifest.quantization.kind,
                vitrine_index::QUANTIZATION
            )));
        }
        let SearchFiles {
            encoder: e,
            vectors,
            items,
        } = files;
        // The weights move into the model: a quantized encoder is used where it was downloaded.
        let encoder = match manifest.encoder.format {
            EncoderFormat::F16 => TextModel::F16(TextEncoder::from_bytes(&e.config, &e.weights)?),
            EncoderFormat::Quantized => TextModel::Quantized(Box::new(
                QuantTextEncoder::from_bytes(&e.config, e.weights)?,
            )),
        };
        let tokenizer = ClipTokenizer::from_bytes(&e.tokenizer, encoder.max_len())?;
        let vectors = Vectors::from_bytes(&vectors)?;
        let count = manifest.count as usize;
        let items = ItemTable::from_json(&items, count)?;
        if vectors.len() != count || vectors.dim() != encoder.dim() {
            return Err(Error::Mismatch(format!(
                "the vectors hold {} items of width {}, the manifest says {count} and the encoder \
                 gives width {}; the files come from different builds",
                vectors.len(),
                vectors.dim(),
                encoder.dim()
            )));
        }
        Ok(Self {
            manifest,
            encoder,
            tokenizer,
            vectors,
            items,
            terms: Mutex::default(),
        })
    }

    /// The manifest this engine was loaded from.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// How queries are encoded: the encoder's layout and kernel (`q8e4a7 relaxed`, `f16`).
    pub fn engine(&self) -> String {
        self.encoder.describe()
    }

    /// Ids in catalogue order, and facet labels.
    pub fn items(&self) -> &ItemTable {
        &self.items
    }

    /// The quantized vectors.
    pub fn vectors(&self) -> &Vectors {
        &self.vectors
    }

    /// Projected features of one text, unpadded (as `get_text_features`).
    fn encode_text(&self, text: &str) -> Result<Vec<f32>> {
        if let Some(hit) = self.terms.lock().ok().and_then(|t| t.get(text).cloned()) {
            return Ok(hit);
        }
        let ids = self.tokenizer.encode(text)?;
        let features = self.encoder.encode(&ids)?;
        if !features.iter().all(|x| x.is_finite()) {
            return Err(Error::NotFinite(text.to_string()));
        }
        if let Ok(mut t) = self.terms.lock() {
            t.insert(text.to_string(), features.clone());
        }
        Ok(features)
    }

    /// The normalised vector a query ranks by, with query arithmetic (`a + b - c`, `2:a`);
    /// `None` for an empty query or one whose terms cancel out.
    fn query_vector(&self, query: &str) -> Result<Option<Vec<f32>>> {
        let mut parts = Vec::new();
        for term in arithmetic::parse(query) {
            parts.push((term.weight, self.encode_text(&term.text)?));
        }
        Ok(arithmetic::combine(&parts))
    }

    /// The `k` best items for a text query, best first; equal scores keep catalogue order.
    pub fn search_text(&self, query: &str, k: usize, filter: Option<&[bool]>) -> Result<Vec<Hit>> {
        Ok(match self.query_vector(query)? {
            Some(v) => self.vectors.search(&self.vectors.query(&v), k, filter),
            None => Vec::new(),
        })
    }

    /// "More like this": the item itself first, then the most similar items.
    pub fn like(&self, id: &str, k: usize, filter: Option<&[bool]>) -> Result<Vec<Hit>> {
        let item = self
            .items
            .position(id)
            .ok_or_else(|| Error::UnknownId(id.to_string()))?;
        Ok(self.vectors.like(item, k, filter))
    }

    /// Items allowed by facet selections (`(facet, label)`; labels of one facet are alternatives,
    /// different facets must all match). `None` when nothing is selected.
    pub fn facet_filter(&self, selected: &[(String, String)]) -> Option<Vec<bool>> {
        if selected.is_empty() {
            return None;
        }
        let mut allowed = vec![true; self.items.ids.len()];
        for facet in &self.manifest.facets {
            let wanted: Vec<u16> = selected
                .iter()
                .filter(|(f, _)| *f == facet.name)
                .filter_map(|(_, l)| facet.labels.iter().position(|x| x == l).map(|p| p as u16))
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let labels = self.items.facets.get(&facet.name);
            for (i, a) in allowed.iter_mut().enumerate() {
                *a &= labels
                    .and_then(|l| l.get(i))
                    .is_some_and(|l| wanted.contains(l));
            }
        }
        Some(allowed)
    }
}
