//! vitrine's static index format, shared by the writer (`build-index`) and every reader (the page,
//! `build-index search`): the manifest, the int8 vectors, item metadata, the keyword index and
//! filters, and the ranking over them, so a search from the command line and one in the browser
//! give the same results.

pub mod chunks;
pub mod extend;
mod files;
pub mod filters;
pub mod groups;
pub mod keywords;
pub mod lists;
mod manifest;
mod metadata;
pub mod partition;
pub mod probing;
pub mod qtensors;
mod rank;
mod varint;
mod vectors;

pub use files::{
    EncoderFiles, FileRef, Files, HASHED_NAME_PATTERN, MAX_FILE_BYTES, NAME_HASH_BYTES,
    OfflineFiles, SearchFiles, hashed_name, hex, name_hash, name_hash_of, sha256_hex,
};
pub use manifest::{
    EncoderFormat, EncoderInfo, EncoderQuality, FORMAT, FORMAT_VERSION, Facet, MANIFEST, MAX_ITEMS,
    Manifest, ModelInfo, PartitionInfo, Quantization, Recall,
};
pub use metadata::{CHUNK_SIZE, FacetValue, Item, ItemTable, MetadataChunk, Thumbnail, safe_link};
pub use rank::{Hit, ScanQuery, SearchMode};
pub use vectors::{Quantizer, Vectors, normalize};

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
