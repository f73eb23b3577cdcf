//! vitrine's static index format, shared by the writer (`build-index`) and every reader (the page,
//! `build-index search`): the manifest, the int8 vectors, item metadata, and the ranking over them,
//! so a search from the command line and one in the browser give the same results.

mod manifest;
mod metadata;
pub mod query;
mod rank;
mod vectors;

pub use manifest::{
    Chunk, EncoderFiles, FORMAT, FORMAT_VERSION, Facet, FileRef, Files, MANIFEST, Manifest,
    ModelInfo, Quantization, Recall, sha256_hex,
};
pub use metadata::{CHUNK_SIZE, Catalog, FacetValue, Item, MetadataChunk, safe_link};
pub use rank::{Hit, Query};
pub use vectors::{Vectors, normalize};

/// The quantization kind this crate writes.
pub const QUANTIZATION: &str = "int8-centred";

/// Everything that can be wrong with an index.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file is malformed (bad JSON, bad magic, wrong size).
    #[error("{0}")]
    Format(String),
    /// The index was written in a format version this reader does not understand.
    #[error("{0}")]
    Version(String),
    /// A file's size or hash does not match the manifest.
    #[error("{0}")]
    Integrity(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
