//! The text side of a site: the exported encoder (quantized, integer kernels; or f16 through
//! candle) and its tokenizer, turning a query (with arithmetic) into the vector it ranks by.
//! It arrives after the rest of the index, so the engine searches by keywords until then.

use std::collections::HashMap;
use std::sync::Mutex;

use vitrine_clip::{ClipTokenizer, QuantTextEncoder, TextEncoder};
use vitrine_index::{EncoderFiles, EncoderFormat};

use crate::{Error, Result, arithmetic};

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

/// A loaded encoder and tokenizer.
#[derive(Debug)]
pub(crate) struct TextSide {
    encoder: TextModel,
    tokenizer: ClipTokenizer,
    /// Term embeddings already computed: typing "red dress + su…" re-encodes only the last term.
    terms: Mutex<HashMap<String, Vec<f32>>>,
}

impl TextSide {
    /// Loads the encoder files (already checked against the manifest); the weights move into
    /// a quantized model, which computes where they were downloaded.
    pub(crate) fn new(format: EncoderFormat, files: EncoderFiles<Vec<u8>>) -> Result<Self> {
        let EncoderFiles {
            config,
            weights,
            tokenizer,
        } = files;
        let encoder = match format {
            EncoderFormat::F16 => TextModel::F16(TextEncoder::from_bytes(&config, &weights)?),
            EncoderFormat::Quantized => {
                TextModel::Quantized(Box::new(QuantTextEncoder::from_bytes(&config, weights)?))
            }
        };
        let tokenizer = ClipTokenizer::from_bytes(&tokenizer, encoder.max_len())?;
        Ok(Self {
            encoder,
            tokenizer,
            terms: Mutex::default(),
        })
    }

    /// Width of the vectors it makes.
    pub(crate) fn dim(&self) -> usize {
        self.encoder.dim()
    }

    /// The layout and the kernel, for the page's status line (`q8e4a7 relaxed`, `f16`).
    pub(crate) fn describe(&self) -> String {
        match &self.encoder {
            TextModel::F16(_) => "f16".into(),
            TextModel::Quantized(e) => {
                let kernel = match e.kernel() {
                    vitrine_clip::quant::kernels::Kernel::Portable => "portable",
                    vitrine_clip::quant::kernels::Kernel::Simd128 => "simd128",
                    vitrine_clip::quant::kernels::Kernel::Relaxed => "relaxed",
                };
                format!("{} {kernel}", e.layout())
            }
        }
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
    pub(crate) fn query_vector(&self, query: &str) -> Result<Option<Vec<f32>>> {
        let mut parts = Vec::new();
        for term in arithmetic::parse(query) {
            parts.push((term.weight, self.encode_text(&term.text)?));
        }
        Ok(arithmetic::combine(&parts))
    }
}
