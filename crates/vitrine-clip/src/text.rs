//! The text tower: token ids → `get_text_features` (projected, not normalised).
//! It needs only `text_model.*`, `text_projection` and `logit_scale`, so the browser can load a
//! text-only export from bytes; a single query is encoded unpadded (the causal mask makes padding
//! wasted work), a batch is padded with `<|endoftext|>` and pooled per row.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, VarBuilder};

use crate::config::{ClipConfig, TextConfig};
use crate::transformer::{Encoder, Linear, causal_mask, layer_norm};
use crate::{Error, Result};

/// `text_model`: embeddings, encoder, final layer norm.
#[derive(Debug, Clone)]
struct TextTransformer {
    token_embedding: Embedding,
    position_embedding: Embedding,
    encoder: Encoder,
    final_layer_norm: LayerNorm,
}

impl TextTransformer {
    fn new(vb: VarBuilder, c: &TextConfig) -> candle_core::Result<Self> {
        let d = c.encoder.hidden_size;
        let emb = vb.pp("embeddings");
        let token = emb.pp("token_embedding").get((c.vocab_size, d), "weight")?;
        let position = emb
            .pp("position_embedding")
            .get((c.max_position_embeddings, d), "weight")?;
        Ok(Self {
            token_embedding: Embedding::new(token, d),
            position_embedding: Embedding::new(position, d),
            encoder: Encoder::new(vb.pp("encoder"), &c.encoder)?,
            final_layer_norm: layer_norm(d, c.encoder.layer_norm_eps, vb.pp("final_layer_norm"))?,
        })
    }

    /// `ids`: `[batch, seq]` u32 → last hidden states `[batch, seq, hidden]`.
    fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (_, seq) = ids.dims2()?;
        let positions = self.position_embedding.embeddings().narrow(0, 0, seq)?;
        let xs = self
            .token_embedding
            .forward(ids)?
            .broadcast_add(&positions)?;
        let mask = causal_mask(seq, ids.device())?;
        let xs = self.encoder.forward(&xs, Some(&mask))?;
        self.final_layer_norm.forward(&xs)
    }
}

/// The text half of a CLIP model: what the browser downloads and runs.
#[derive(Debug, Clone)]
pub struct TextEncoder {
    transformer: TextTransformer,
    projection: Linear,
    logit_scale: f32,
    config: TextConfig,
    projection_dim: usize,
    device: Device,
}

impl TextEncoder {
    /// Builds the text tower from a `VarBuilder` rooted at the checkpoint's top level
    /// (`text_model.*`, `text_projection.weight`, `logit_scale`).
    pub fn new(vb: VarBuilder, config: &ClipConfig) -> Result<Self> {
        let c = &config.text;
        let transformer = TextTransformer::new(vb.pp("text_model"), c)?;
        let projection = vb
            .pp("text_projection")
            .get((config.projection_dim, c.encoder.hidden_size), "weight")?;
        let logit_scale = read_logit_scale(&vb)?;
        Ok(Self {
            transformer,
            projection: Linear::new(&projection, None)?,
            logit_scale,
            config: c.clone(),
            projection_dim: config.projection_dim,
            device: vb.device().clone(),
        })
    }

    /// Loads the text-only path from bytes: a `config.json` and a safetensors file holding at least
    /// the text tensors, in f32, f16 or bf16 (computation is always f32). This is what the page does.
    pub fn from_bytes(config_json: &[u8], safetensors: &[u8]) -> Result<Self> {
        let config = ClipConfig::from_json(config_json)?;
        let vb = VarBuilder::from_slice_safetensors(safetensors, DType::F32, &Device::Cpu)?;
        Self::new(vb, &config)
    }

    /// Width of the output features.
    pub fn dim(&self) -> usize {
        self.projection_dim
    }

    /// Longest input in tokens (77 for OpenAI CLIP), special tokens included.
    pub fn max_len(&self) -> usize {
        self.config.max_position_embeddings
    }

    /// The trained temperature: `exp(logit_scale)`, 100 for OpenAI CLIP.
    pub fn logit_scale(&self) -> f32 {
        self.logit_scale
    }

    /// Encodes one tokenized query (no padding) to its projected features.
    pub fn encode(&self, ids: &[u32]) -> Result<Vec<f32>> {
        Ok(self.encode_batch(&[ids])?.remove(0))
    }

    /// Encodes several tokenized texts, padding to the longest with `<|endoftext|>`.
    pub fn encode_batch(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let Some(len) = batch.iter().map(|ids| ids.len()).max() else {
            return Ok(Vec::new());
        };
        if let Some(bad) = batch
            .iter()
            .find(|ids| ids.is_empty() || ids.len() > self.max_len())
        {
            return Err(Error::Input(format!(
                "a tokenized text has {} tokens; the model takes 1 to {}",
                bad.len(),
                self.max_len()
            )));
        }
        let mut flat = Vec::with_capacity(batch.len() * len);
        let mut pooled_at = Vec::with_capacity(batch.len());
        for (row, ids) in batch.iter().enumerate() {
            if let Some(bad) = ids
                .iter()
                .find(|&&id| id as usize >= self.config.vocab_size)
            {
                return Err(Error::Input(format!(
                    "token id {bad} is outside the vocabulary of {}",
                    self.config.vocab_size
                )));
            }
            // Pad with the row's last id (`<|endoftext|>`): the causal mask keeps padding out of
            // the pooled position, which is computed from the unpadded ids.
            flat.extend_from_slice(ids);
            flat.resize((row + 1) * len, ids[ids.len() - 1]);
            pooled_at.push((row * len + pool_index(&self.config, ids)) as u32);
        }
        let ids = Tensor::from_vec(flat, (batch.len(), len), &self.device)?;
        let hidden = self.transformer.forward(&ids)?;
        let d = self.config.encoder.hidden_size;
        let hidden = hidden.reshape((batch.len() * len, d))?;
        let idx = Tensor::from_vec(pooled_at, batch.len(), &self.device)?;
        let pooled = hidden.index_select(&idx, 0)?;
        let features = self.projection.forward(&pooled)?;
        Ok(features.to_vec2()?)
    }
}

/// The position whose hidden state is the text's summary, as `CLIPTextTransformer` picks it:
/// the (first) largest id when `eos_token_id` is the legacy 2, else the first `eos_token_id`.
pub(crate) fn pool_index(config: &TextConfig, ids: &[u32]) -> usize {
    let eos = config.eos_token_id;
    if eos == 2 {
        let max = ids.iter().copied().max().unwrap_or(0);
        ids.iter().position(|&id| id == max).unwrap_or(0)
    } else {
        ids.iter()
            .position(|&id| id == eos)
            .unwrap_or(ids.len() - 1)
    }
}

/// Reads the scalar `logit_scale` and returns `exp(logit_scale)`.
pub(crate) fn read_logit_scale(vb: &VarBuilder) -> Result<f32> {
    let t = vb
        .get((), "logit_scale")
        .or_else(|_| vb.get(1, "logit_scale"))?;
    Ok(t.flatten_all()?.to_vec1::<f32>()?[0].exp())
}
