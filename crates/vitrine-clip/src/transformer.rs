//! The pre-norm transformer encoder both CLIP towers share, following
//! `candle_transformers::models::clip` and its tensor names (`layers.N.self_attn.q_proj`, …).
//! It differs where Hugging Face checkpoints need it: `layer_norm_eps` and `hidden_act` come from
//! the config (candle fixes 1e-5 and QuickGELU), and q/k/v are fused into one matmul for speed.

use candle_core::{Module, Result, Tensor};
use candle_nn::{LayerNorm, VarBuilder};

use crate::config::{Activation, EncoderConfig};

/// A layer norm whose epsilon comes from the config.
pub(crate) fn layer_norm(size: usize, eps: f64, vb: VarBuilder) -> Result<LayerNorm> {
    let weight = vb.get(size, "weight")?;
    let bias = vb.get(size, "bias")?;
    Ok(LayerNorm::new(weight, bias, eps))
}

/// A linear layer. PyTorch stores the weight `[out, in]`; it is kept transposed and contiguous
/// (`[in, out]`), which makes the matmul of a few rows (a text query) about 1.5x faster than
/// multiplying by a transposed view, and flattens the batch so there is one matmul per layer.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    weight_t: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// From a PyTorch-layout `[out, in]` weight.
    pub(crate) fn new(weight: &Tensor, bias: Option<Tensor>) -> Result<Self> {
        Ok(Self {
            weight_t: weight.t()?.contiguous()?,
            bias,
        })
    }

    /// `[out]` rows of the weight as stored by PyTorch, for fusing layers.
    fn weight(&self) -> Result<Tensor> {
        self.weight_t.t()
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let dims = xs.dims().to_vec();
        let inner = dims[dims.len() - 1];
        let rows = xs.elem_count() / inner;
        let out = xs.reshape((rows, inner))?.matmul(&self.weight_t)?;
        let out = match &self.bias {
            Some(b) => out.broadcast_add(b)?,
            None => out,
        };
        let mut shape = dims;
        let last = shape.len() - 1;
        shape[last] = self.weight_t.dim(1)?;
        out.reshape(shape)
    }
}

/// A linear layer with bias, `[out, in]` weight as PyTorch stores it.
pub(crate) fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let weight = vb.get((out_dim, in_dim), "weight")?;
    let bias = vb.get(out_dim, "bias")?;
    Linear::new(&weight, Some(bias))
}

impl Module for Activation {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Self::QuickGelu => crate::fast::quick_gelu(xs),
            Self::Gelu => xs.gelu_erf(),
        }
    }
}

/// Multi-head self-attention with the three input projections fused into one matmul.
#[derive(Debug, Clone)]
struct Attention {
    qkv_proj: Linear,
    out_proj: Linear,
    num_heads: usize,
    head_dim: usize,
    scale: f64,
}

impl Attention {
    fn new(vb: VarBuilder, c: &EncoderConfig) -> Result<Self> {
        let d = c.hidden_size;
        let q = linear(d, d, vb.pp("q_proj"))?;
        let k = linear(d, d, vb.pp("k_proj"))?;
        let v = linear(d, d, vb.pp("v_proj"))?;
        let bias = |l: &Linear| l.bias.clone().expect("linear() always loads a bias");
        let weight = Tensor::cat(&[q.weight()?, k.weight()?, v.weight()?], 0)?;
        let bias = Tensor::cat(&[bias(&q), bias(&k), bias(&v)], 0)?;
        let head_dim = d / c.num_attention_heads;
        Ok(Self {
            qkv_proj: Linear::new(&weight, Some(bias))?,
            out_proj: linear(d, d, vb.pp("out_proj"))?,
            num_heads: c.num_attention_heads,
            head_dim,
            scale: (head_dim as f64).powf(-0.5),
        })
    }

    /// `xs`: `[batch, seq, hidden]`; `mask`: additive `[seq, seq]` mask, if causal.
    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, s, d) = xs.dims3()?;
        let (h, hd) = (self.num_heads, self.head_dim);
        let qkv = self.qkv_proj.forward(xs)?.reshape((b, s, 3, h, hd))?;
        // [3, b, h, s, hd]: one copy serves all three.
        let qkv = qkv.permute((2, 0, 3, 1, 4))?.contiguous()?;
        let q = (qkv.get(0)? * self.scale)?;
        let k = qkv.get(1)?;
        let v = qkv.get(2)?;
        let scores = q.matmul(&k.t()?)?;
        let scores = match mask {
            Some(mask) => scores.broadcast_add(mask)?,
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, d))?;
        self.out_proj.forward(&out)
    }
}

#[derive(Debug, Clone)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl Mlp {
    fn new(vb: VarBuilder, c: &EncoderConfig) -> Result<Self> {
        Ok(Self {
            fc1: linear(c.hidden_size, c.intermediate_size, vb.pp("fc1"))?,
            fc2: linear(c.intermediate_size, c.hidden_size, vb.pp("fc2"))?,
            activation: c.activation,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let xs = self.fc1.forward(xs)?;
        self.fc2.forward(&self.activation.forward(&xs)?)
    }
}

#[derive(Debug, Clone)]
struct EncoderLayer {
    self_attn: Attention,
    layer_norm1: LayerNorm,
    mlp: Mlp,
    layer_norm2: LayerNorm,
}

impl EncoderLayer {
    fn new(vb: VarBuilder, c: &EncoderConfig) -> Result<Self> {
        let eps = c.layer_norm_eps;
        Ok(Self {
            self_attn: Attention::new(vb.pp("self_attn"), c)?,
            layer_norm1: layer_norm(c.hidden_size, eps, vb.pp("layer_norm1"))?,
            mlp: Mlp::new(vb.pp("mlp"), c)?,
            layer_norm2: layer_norm(c.hidden_size, eps, vb.pp("layer_norm2"))?,
        })
    }

    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let attn = self
            .self_attn
            .forward(&self.layer_norm1.forward(xs)?, mask)?;
        let xs = (attn + xs)?;
        let mlp = self.mlp.forward(&self.layer_norm2.forward(&xs)?)?;
        mlp + xs
    }
}

/// The stack of encoder layers (`encoder.layers.*`).
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    layers: Vec<EncoderLayer>,
}

impl Encoder {
    pub(crate) fn new(vb: VarBuilder, c: &EncoderConfig) -> Result<Self> {
        let vb = vb.pp("layers");
        let layers = (0..c.num_hidden_layers)
            .map(|i| EncoderLayer::new(vb.pp(i), c))
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    pub(crate) fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let mut xs = xs.clone();
        for layer in &self.layers {
            xs = layer.forward(&xs, mask)?;
        }
        Ok(xs)
    }
}

/// The additive causal mask `[seq, seq]`: 0 on and below the diagonal, -inf above.
pub(crate) fn causal_mask(seq: usize, device: &candle_core::Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..seq)
        .flat_map(|i| (0..seq).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (seq, seq), device)
}
