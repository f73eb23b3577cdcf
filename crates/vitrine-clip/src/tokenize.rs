//! CLIP's tokenizer from the checkpoint's `tokenizer.json`, behaving as
//! `CLIPTokenizerFast(truncation=True, max_length=77)`: `<|startoftext|>` … `<|endoftext|>`, cut to
//! the model's positions with `<|endoftext|>` kept last, and never padded.

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::{Error, Result};

/// A text tokenizer that yields ids ready for [`crate::TextEncoder::encode`].
#[derive(Clone)]
pub struct ClipTokenizer {
    inner: Tokenizer,
}

impl std::fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipTokenizer").finish_non_exhaustive()
    }
}

impl ClipTokenizer {
    /// Reads a `tokenizer.json` and truncates to `max_len` tokens (the model's
    /// `max_position_embeddings`), special tokens included.
    pub fn from_bytes(json: &[u8], max_len: usize) -> Result<Self> {
        let mut inner = Tokenizer::from_bytes(json)
            .map_err(|e| Error::Tokenizer(format!("tokenizer.json cannot be read: {e}")))?;
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| Error::Tokenizer(format!("cannot truncate to {max_len} tokens: {e}")))?;
        Ok(Self { inner })
    }

    /// Tokenizes one text: start token, the text's tokens, end token; at most `max_len` ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::Tokenizer(format!("cannot tokenize {text:?}: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }
}
