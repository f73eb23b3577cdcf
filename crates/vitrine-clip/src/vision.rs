//! The vision tower: preprocessed pixels `[batch, 3, size, size]` → `get_image_features`.
//! The patch embedding is a stride-`patch` convolution without bias; it is computed as one matmul
//! over the image's patches (the same sums as the convolution, without im2col's copies).

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{LayerNorm, VarBuilder};

use crate::Result;
use crate::config::{ClipConfig, VisionConfig};
use crate::transformer::{Encoder, Linear, layer_norm};

/// `vision_model`: patch + class + position embeddings, pre-norm, encoder, post-norm of the class token.
#[derive(Debug, Clone)]
struct VisionTransformer {
    /// `[hidden, channels * patch * patch]`, the conv kernel flattened.
    patch_weight: Tensor,
    class_embedding: Tensor,
    position_embedding: Tensor,
    pre_layrnorm: LayerNorm,
    encoder: Encoder,
    post_layernorm: LayerNorm,
    config: VisionConfig,
}

impl VisionTransformer {
    fn new(vb: VarBuilder, c: &VisionConfig) -> candle_core::Result<Self> {
        let d = c.encoder.hidden_size;
        let (p, ch) = (c.patch_size, c.num_channels);
        let eps = c.encoder.layer_norm_eps;
        let emb = vb.pp("embeddings");
        let patch = emb.pp("patch_embedding").get((d, ch, p, p), "weight")?;
        Ok(Self {
            patch_weight: patch.reshape((d, ch * p * p))?,
            class_embedding: emb.get(d, "class_embedding")?,
            position_embedding: emb
                .pp("position_embedding")
                .get((c.num_positions(), d), "weight")?,
            pre_layrnorm: layer_norm(d, eps, vb.pp("pre_layrnorm"))?,
            encoder: Encoder::new(vb.pp("encoder"), &c.encoder)?,
            post_layernorm: layer_norm(d, eps, vb.pp("post_layernorm"))?,
            config: c.clone(),
        })
    }

    /// `pixels`: `[batch, 3, size, size]` → pooled, post-normed class token `[batch, hidden]`.
    fn forward(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let (b, ch, h, w) = pixels.dims4()?;
        let p = self.config.patch_size;
        let (gh, gw) = (h / p, w / p);
        let d = self.config.encoder.hidden_size;
        // [b, ch, gh, p, gw, p] → [b, gh, gw, ch, p, p]: each row is one patch, in conv order.
        let patches = pixels
            .reshape((b, ch, gh, p, gw, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((b * gh * gw, ch * p * p))?;
        let patch_embeds = patches
            .matmul(&self.patch_weight.t()?)?
            .reshape((b, gh * gw, d))?;
        let class = self.class_embedding.reshape((1, 1, d))?.repeat((b, 1, 1))?;
        let xs = Tensor::cat(&[class, patch_embeds], 1)?.broadcast_add(&self.position_embedding)?;
        let xs = self.pre_layrnorm.forward(&xs)?;
        let xs = self.encoder.forward(&xs, None)?;
        let pooled = xs.narrow(1, 0, 1)?.squeeze(1)?;
        self.post_layernorm.forward(&pooled)
    }
}

/// The image half of a CLIP model: what `build-index` runs over the catalogue.
#[derive(Debug, Clone)]
pub struct ImageEncoder {
    transformer: VisionTransformer,
    projection: Linear,
    device: Device,
}

impl ImageEncoder {
    /// Builds the vision tower from a `VarBuilder` rooted at the checkpoint's top level
    /// (`vision_model.*`, `visual_projection.weight`).
    pub fn new(vb: VarBuilder, config: &ClipConfig) -> Result<Self> {
        let c = &config.vision;
        let transformer = VisionTransformer::new(vb.pp("vision_model"), c)?;
        let projection = vb
            .pp("visual_projection")
            .get((config.projection_dim, c.encoder.hidden_size), "weight")?;
        Ok(Self {
            transformer,
            projection: Linear::new(&projection, None)?,
            device: vb.device().clone(),
        })
    }

    /// Side of the square input in pixels.
    pub fn image_size(&self) -> usize {
        self.transformer.config.image_size
    }

    /// Encodes a batch of preprocessed images, each `3 * size * size` f32 values in CHW order,
    /// to their projected features.
    pub fn encode_pixels(&self, images: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.image_size();
        let per_image = 3 * s * s;
        let mut flat = Vec::with_capacity(images.len() * per_image);
        for (i, img) in images.iter().enumerate() {
            if img.len() != per_image {
                return Err(crate::Error::Input(format!(
                    "image {i} has {} values; the model takes 3x{s}x{s} = {per_image}",
                    img.len()
                )));
            }
            flat.extend_from_slice(img);
        }
        let pixels = Tensor::from_vec(flat, (images.len(), 3, s, s), &self.device)?;
        Ok(self.encode_tensor(&pixels)?.to_vec2()?)
    }

    /// Encodes a `[batch, 3, size, size]` tensor to `[batch, projection_dim]`.
    pub fn encode_tensor(&self, pixels: &Tensor) -> Result<Tensor> {
        let pixels = pixels.to_dtype(DType::F32)?;
        let pooled = self.transformer.forward(&pixels)?;
        Ok(self.projection.forward(&pooled)?)
    }
}
