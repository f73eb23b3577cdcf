//! `manifest.json`, the one fixed-name file of a site index: format version, build id, model,
//! quantization, measured recall, facets, and every other file with its size and SHA-256. All
//! other files are named by their content hash, so a redeploy never mixes two builds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::files::{Files, sha256_hex};
use crate::filters::Filter;
use crate::keywords::KeywordInfo;
use crate::{Error, Result};

/// The manifest's file name, fixed so the page can find it.
pub const MANIFEST: &str = "manifest.json";
/// The `format` field of every vitrine manifest.
pub const FORMAT: &str = "vitrine-index";
/// The index format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 7;
/// The most items an index may hold.
pub const MAX_ITEMS: u32 = 100_000_000;

/// The model that embedded the catalogue; the page's text encoder must be the same one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// `--model` as given (hub id or folder name).
    pub id: String,
    /// Hash of the checkpoint's config, preprocessing and weights.
    pub fingerprint: String,
    /// Embedding width.
    pub dim: u32,
    /// Longest query in tokens (special tokens included).
    pub max_tokens: u32,
    /// `exp(logit_scale)`, the temperature of zero-shot classification.
    pub logit_scale: f32,
}

/// How vectors are stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantization {
    /// `int8-centred`: see `vectors.rs` for the layout.
    pub kind: String,
    /// Bytes per catalogue item.
    pub bytes_per_vector: u32,
}

/// Recall@k of the int8 ranking against exact f32 ranking, measured at build time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recall {
    /// The k of recall@k.
    pub k: u32,
    /// Queries taken from catalogue images.
    pub image_queries: u32,
    /// Queries from text prompts.
    pub text_queries: u32,
    /// Mean recall@k over all queries.
    pub value: f64,
    /// The build fails below this.
    pub threshold: f64,
}

/// How the vectors are split into lists ([`crate::lists`]) and what probing costs: recall@10 of
/// the probed search against scanning every list, measured at build time for image queries
/// ("More like this") and text queries (titles and everyday queries, shipped encoder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionInfo {
    /// Number of lists with a centroid, patches not counted (1: one list, scanned whole, kept
    /// offline).
    pub lists: u32,
    /// Number of groups of lists (each group file holds its lists' centroids).
    pub groups: u32,
    /// Lists an image query ("More like this") scans, at most.
    pub image_probes: u32,
    /// Lists a text query scans, at most.
    pub text_probes: u32,
    /// Groups whose lists an image query ranks.
    pub image_group_probes: u32,
    /// Groups whose lists a text query ranks.
    pub text_group_probes: u32,
    /// An image query skips lists whose centroid's cosine trails the nearest list's by more
    /// than this (2: never; see `lists::Probes`).
    pub image_gap: f64,
    /// The same for text queries.
    pub text_gap: f64,
    /// Image queries measured.
    pub image_queries: u32,
    /// Their recall@10 at `image_probes`.
    pub image_recall: f64,
    /// Text queries measured.
    pub text_queries: u32,
    /// Their recall@10 at `text_probes`.
    pub text_recall: f64,
    /// The gate: for each kind, the smallest probe count reaching it is chosen.
    pub min_recall: f64,
}

/// How the page's text encoder file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderFormat {
    /// The text tower as f16 safetensors, computed in f32 (candle).
    F16,
    /// The quantized encoder file (`qtensors`), computed with integer kernels.
    Quantized,
}

/// How close the exported text encoder, run as the page runs it, comes to the f32 checkpoint
/// on this build's prompts (facet prompts, everyday shopping queries, catalogue titles).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderQuality {
    /// Prompts measured.
    pub prompts: u32,
    /// Mean cosine between the exported and the f32 query vectors.
    pub mean_cosine: f64,
    /// The lowest cosine.
    pub min_cosine: f64,
    /// Mean overlap of the top 10 items of this catalogue ranked by each query vector.
    pub recall_at_10: f64,
    /// The gate: the smallest layout at or above these is shipped.
    pub min_mean_cosine: f64,
    /// The gate's recall threshold.
    pub min_recall: f64,
}

/// The page's text encoder: its format, layout and measured quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderInfo {
    /// The file's format.
    pub format: EncoderFormat,
    /// The layout: `f16`, or a quantized one such as `q8e4a7`.
    pub layout: String,
    /// Measured against the f32 checkpoint.
    pub quality: EncoderQuality,
}

/// A zero-shot facet: each item was given its most probable label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facet {
    /// Facet name, e.g. `color`.
    pub name: String,
    /// Prompt template with `{}` for the label.
    pub template: String,
    /// Labels, in the order given.
    pub labels: Vec<String>,
    /// Items per label.
    pub counts: Vec<u32>,
}

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`] for files this crate writes.
    pub version: u32,
    /// Identifies the build: a hash of everything below, so equal inputs give equal ids.
    pub build_id: String,
    /// The embedding model.
    pub model: ModelInfo,
    /// The page's text encoder.
    pub encoder: EncoderInfo,
    /// Number of items.
    pub count: u32,
    /// Vector storage.
    pub quantization: Quantization,
    /// Measured int8 recall.
    pub recall: Recall,
    /// The lists of the vectors and the measured probe count.
    pub partition: PartitionInfo,
    /// Zero-shot facets.
    pub facets: Vec<Facet>,
    /// Filters from the catalogue's columns.
    pub filters: Vec<Filter>,
    /// The keyword index (its shards are in `files`).
    pub keywords: KeywordInfo,
    /// Extra build facts for humans (catalogue file name, row counts…).
    #[serde(default)]
    pub info: BTreeMap<String, serde_json::Value>,
    /// The other files.
    pub files: Files,
}

impl Manifest {
    /// Parses a manifest and refuses other formats and versions.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct Head {
            format: Option<String>,
            version: Option<u32>,
        }
        let head: Head = serde_json::from_slice(bytes)
            .map_err(|e| Error::Format(format!("manifest.json is not valid JSON: {e}")))?;
        if head.format.as_deref() != Some(FORMAT) {
            return Err(Error::Format(
                "manifest.json is not a vitrine index manifest".into(),
            ));
        }
        match head.version {
            Some(FORMAT_VERSION) => {}
            Some(v) if v > FORMAT_VERSION => {
                return Err(Error::Version(format!(
                    "the index is format version {v}, newer than this page understands \
                     ({FORMAT_VERSION}); redeploy the site together with the index"
                )));
            }
            v => {
                return Err(Error::Version(format!(
                    "the index is format version {}, this page reads {FORMAT_VERSION}; rebuild \
                     the index with the matching build-index",
                    v.map_or("unknown".into(), |v| v.to_string())
                )));
            }
        }
        let manifest: Self = serde_json::from_slice(bytes)
            .map_err(|e| Error::Format(format!("manifest.json is malformed: {e}")))?;
        if manifest.count > MAX_ITEMS {
            return Err(Error::Format(format!(
                "manifest.json counts {} items, more than an index may hold ({MAX_ITEMS})",
                manifest.count
            )));
        }
        manifest.files.check_bounds()?;
        Ok(manifest)
    }

    /// Pretty JSON with a trailing newline; deterministic for equal manifests.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("manifests always serialise");
        out.push(b'\n');
        out
    }

    /// Sets `build_id` from the content of everything else.
    pub fn seal(&mut self) {
        self.build_id = String::new();
        self.build_id = sha256_hex(&self.to_json())[..16].to_string();
    }
}
