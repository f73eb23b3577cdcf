//! CLIP on candle for vitrine: Hugging Face `CLIPModel` checkpoints, their tokenizer and their image
//! preprocessing, giving the same features as `transformers`' `get_text_features` and
//! `get_image_features`. Compiles for the host (`build-index`) and `wasm32` (the page's text path).

mod config;
mod decode;
mod fast;
mod preprocess;
pub mod quant;
mod resample;
mod shapes;
pub mod synthetic;
mod text;
mod tokenize;
mod transformer;
mod vision;

#[cfg(not(target_arch = "wasm32"))]
mod checkpoint;
#[cfg(not(target_arch = "wasm32"))]
mod hub;

#[cfg(not(target_arch = "wasm32"))]
pub use checkpoint::{Checkpoint, DEFAULT_MODEL, Weights};
pub use config::{
    Activation, ClipConfig, EncoderConfig, PreprocessConfig, TextConfig, VisionConfig,
};
pub use decode::{DEFAULT_MAX_PIXELS, Probe, decode_image, probe};
pub use preprocess::{PREPROCESS_VERSION, Preprocessor, to_rgb};
pub use quant::QuantTextEncoder;
#[cfg(not(target_arch = "wasm32"))]
pub use quant::export::{EmbeddingBits, QuantLayout};
pub use resample::resize_rgb8;
pub use shapes::tensor_shapes;
pub use text::TextEncoder;
pub use tokenize::ClipTokenizer;
pub use vision::ImageEncoder;

/// Everything that can go wrong loading or running CLIP.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `config.json` or `preprocessor_config.json` is malformed or asks for something unsupported.
    #[error("{0}")]
    Config(String),
    /// The checkpoint cannot be found, downloaded or read.
    #[error("{0}")]
    Checkpoint(String),
    /// A tensor is missing, misnamed or has the wrong shape, or a computation failed.
    #[error("{0}")]
    Tensor(#[from] candle_core::Error),
    /// `tokenizer.json` cannot be read or a text cannot be tokenized.
    #[error("{0}")]
    Tokenizer(String),
    /// Image bytes that cannot be used: empty, damaged, not an image, unsupported or too large.
    #[error("{0}")]
    Image(String),
    /// An image cut short (a download broken off, a file copied in part).
    #[error("{0}")]
    Truncated(String),
    /// Input of the wrong size for the model (token count, vocabulary, pixel count).
    #[error("{0}")]
    Input(String),
    /// An I/O error while reading a file.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// An error attributed to the file it came from.
    #[error("{file}: {source}")]
    InFile {
        /// The file being read.
        file: String,
        /// What was wrong with it.
        source: Box<Error>,
    },
}

impl Error {
    /// Names the file this error concerns.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn in_file(self, file: &std::path::Path) -> Self {
        Self::InFile {
            file: file.display().to_string(),
            source: Box::new(self),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
