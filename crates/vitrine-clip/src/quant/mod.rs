//! The text tower the page runs from the quantized encoder file (`vitrine_index::qtensors`):
//! int8 linears with one scale per output channel, fed with activations quantized per row at run
//! time (7 or 8 bits, outlier channels kept in f32), the token embedding dequantized only for the
//! rows a query uses, everything else in f32. Tensors are named and laid out as in a Hugging Face
//! `CLIPModel`; the weights stay in the downloaded bytes (no copy, no f32 expansion), so loading
//! takes about the file's size. Native and wasm give bit-identical vectors (see `ops`).

#[cfg(not(target_arch = "wasm32"))]
pub mod export;
pub mod kernels;
mod linear;
pub mod ops;

use std::ops::Range;

use vitrine_index::qtensors::{Layout, QFile, QTensor, stride};

use crate::config::{Activation, ClipConfig, TextConfig};
use crate::{Error, Result};
use kernels::Kernel;
use linear::{Linear, Mat, Run, Scratch};
pub use linear::{QuantLinear, record_maxima};

/// The token embedding: a tensor of the model's bytes, or f32 rows.
#[derive(Debug, Clone)]
pub(crate) enum Embedding {
    Stored {
        layout: Layout,
        rows: usize,
        cols: usize,
        range: Range<usize>,
    },
    /// The first rows in one tensor (`….head`, 8-bit), the others in another (`….tail`, 4-bit).
    Split {
        head: Box<Embedding>,
        head_rows: usize,
        tail: Box<Embedding>,
    },
    /// The exporter's calibration pass: `rows × cols` f32.
    #[cfg(not(target_arch = "wasm32"))]
    F32 {
        values: Vec<f32>,
        rows: usize,
        cols: usize,
    },
}

#[derive(Debug, Clone)]
struct Layer {
    ln1: (Vec<f32>, Vec<f32>),
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln2: (Vec<f32>, Vec<f32>),
    fc1: Linear,
    fc2: Linear,
}

/// Where a model's tensors come from: the quantized file, or (when exporting) a checkpoint.
pub(crate) trait Source {
    /// An f32 tensor.
    fn f32(&self, name: &str) -> Result<Vec<f32>>;
    /// A `[out, cols]` weight matrix.
    fn mat(&self, name: &str, out: usize, cols: usize) -> Result<Mat>;
    /// The token embedding.
    fn embedding(&self, name: &str) -> Result<Embedding>;
}

/// Per-channel largest absolute input of each linear layer (by weight name), gathered while
/// encoding calibration texts: where outliers are.
pub(crate) type InputStats = std::collections::BTreeMap<String, Vec<f32>>;

/// The quantized text tower.
#[derive(Debug, Clone)]
pub struct QuantTextEncoder {
    bytes: Vec<u8>,
    config: TextConfig,
    projection_dim: usize,
    logit_scale: f32,
    bits: u32,
    kernel: Kernel,
    layout: String,
    token: Embedding,
    position: Vec<f32>,
    layers: Vec<Layer>,
    final_ln: (Vec<f32>, Vec<f32>),
    projection: Linear,
}

struct FileSource<'a> {
    file: QFile<'a>,
    base: usize,
}

impl FileSource<'_> {
    fn tensor(&self, name: &str) -> Result<QTensor<'_>> {
        self.file
            .tensor(name)
            .map_err(|e| Error::Checkpoint(e.to_string()))
    }

    fn range(&self, data: &[u8]) -> Range<usize> {
        let start = data.as_ptr() as usize - self.base;
        start..start + data.len()
    }
}

impl Source for FileSource<'_> {
    fn f32(&self, name: &str) -> Result<Vec<f32>> {
        Ok(self.tensor(name)?.to_f32())
    }

    fn mat(&self, name: &str, out: usize, cols: usize) -> Result<Mat> {
        let t = self.tensor(name)?;
        if (t.rows, t.cols) != (out, cols) {
            return Err(Error::Checkpoint(format!(
                "{name} is {}x{}, the config says {out}x{cols}",
                t.rows, t.cols
            )));
        }
        Ok(match t.layout {
            Layout::Q8Rows => {
                let skip = self
                    .file
                    .header
                    .outliers
                    .get(name)
                    .cloned()
                    .unwrap_or_default();
                let skip_w = if skip.is_empty() {
                    Vec::new()
                } else {
                    self.f32(&format!("{name}.outliers"))?
                };
                if skip_w.len() != skip.len() * out || skip.iter().any(|&c| c as usize >= cols) {
                    return Err(Error::Checkpoint(format!(
                        "{name}: malformed outlier columns"
                    )));
                }
                Mat::Q8 {
                    w: self.range(t.q8_bytes()),
                    scales: (0..out).map(|r| t.q8_scale(r)).collect(),
                    sums: kernels::row_sums(t.q8_bytes(), stride(cols)),
                    skip,
                    skip_w,
                }
            }
            _ => Mat::F32(t.to_f32()),
        })
    }

    fn embedding(&self, name: &str) -> Result<Embedding> {
        let stored = |t: QTensor<'_>| Embedding::Stored {
            layout: t.layout,
            rows: t.rows,
            cols: t.cols,
            range: self.range(t.data),
        };
        match self.tensor(name) {
            Ok(t) => Ok(stored(t)),
            Err(e) => {
                let (Ok(head), Ok(tail)) = (
                    self.tensor(&format!("{name}.head")),
                    self.tensor(&format!("{name}.tail")),
                ) else {
                    return Err(e);
                };
                if head.cols != tail.cols {
                    return Err(Error::Checkpoint(format!(
                        "{name}: head and tail differ in width"
                    )));
                }
                Ok(Embedding::Split {
                    head_rows: head.rows,
                    head: Box::new(stored(head)),
                    tail: Box::new(stored(tail)),
                })
            }
        }
    }
}

impl Embedding {
    /// `(rows, cols)`.
    fn shape(&self) -> (usize, usize) {
        match self {
            Self::Stored { rows, cols, .. } => (*rows, *cols),
            Self::Split {
                head_rows, tail, ..
            } => {
                let (rows, cols) = tail.shape();
                (head_rows + rows, cols)
            }
            #[cfg(not(target_arch = "wasm32"))]
            Self::F32 { rows, cols, .. } => (*rows, *cols),
        }
    }
}

/// Reads a layer norm's weight and bias.
fn norm(src: &dyn Source, prefix: &str) -> Result<(Vec<f32>, Vec<f32>)> {
    Ok((
        src.f32(&format!("{prefix}.weight"))?,
        src.f32(&format!("{prefix}.bias"))?,
    ))
}

fn linear(src: &dyn Source, prefix: &str, out: usize, cols: usize, bias: bool) -> Result<Linear> {
    Ok(Linear {
        name: format!("{prefix}.weight"),
        out,
        cols,
        mat: src.mat(&format!("{prefix}.weight"), out, cols)?,
        bias: if bias {
            Some(src.f32(&format!("{prefix}.bias"))?)
        } else {
            None
        },
    })
}

impl QuantTextEncoder {
    /// Loads the quantized encoder the page downloads: the checkpoint's `config.json` and the
    /// `.vtq` file, whose bytes the model keeps and uses in place.
    pub fn from_bytes(config_json: &[u8], bytes: Vec<u8>) -> Result<Self> {
        let config = ClipConfig::from_json(config_json)?;
        let (header, parts) = {
            let file = QFile::parse(&bytes).map_err(|e| Error::Checkpoint(e.to_string()))?;
            let header = file.header.clone();
            let src = FileSource {
                file,
                base: bytes.as_ptr() as usize,
            };
            (header, Parts::read(&src, &config)?)
        };
        Ok(parts.into_model(bytes, &config, header.activation_bits, header.name))
    }

    /// Builds the tower from another source (the exporter's f32 calibration model).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn from_source(
        src: &dyn Source,
        config: &ClipConfig,
        bits: u32,
        name: &str,
    ) -> Result<Self> {
        Ok(Parts::read(src, config)?.into_model(Vec::new(), config, bits, name.to_string()))
    }

    /// The layout name recorded in the file (`q8e4`, …).
    pub fn layout(&self) -> &str {
        &self.layout
    }

    /// The integer kernel this build runs.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Width of the output features.
    pub fn dim(&self) -> usize {
        self.projection_dim
    }

    /// Longest input in tokens.
    pub fn max_len(&self) -> usize {
        self.config.max_position_embeddings
    }

    /// `exp(logit_scale)`.
    pub fn logit_scale(&self) -> f32 {
        self.logit_scale
    }

    /// Encodes one tokenized query (no padding) to its projected features.
    pub fn encode(&self, ids: &[u32]) -> Result<Vec<f32>> {
        self.forward(ids, None)
    }

    /// [`QuantTextEncoder::encode`], recording each linear layer's largest input per channel.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn encode_recording(&self, ids: &[u32], stats: &mut InputStats) -> Result<Vec<f32>> {
        self.forward(ids, Some(stats))
    }

    fn forward(&self, ids: &[u32], mut stats: Option<&mut InputStats>) -> Result<Vec<f32>> {
        let c = &self.config;
        if ids.is_empty() || ids.len() > c.max_position_embeddings {
            return Err(Error::Input(format!(
                "a tokenized text has {} tokens; the model takes 1 to {}",
                ids.len(),
                c.max_position_embeddings
            )));
        }
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= c.vocab_size) {
            return Err(Error::Input(format!(
                "token id {bad} is outside the vocabulary of {}",
                c.vocab_size
            )));
        }
        let d = c.encoder.hidden_size;
        let t_n = ids.len();
        let pool = crate::text::pool_index(c, ids);
        let mut x = Vec::with_capacity(t_n * d);
        for (t, &id) in ids.iter().enumerate() {
            let row = self.token_row(id as usize);
            x.extend(
                row.iter()
                    .zip(&self.position[t * d..(t + 1) * d])
                    .map(|(a, b)| a + b),
            );
        }
        let mut scratch = Scratch::default();
        let last = self.layers.len().saturating_sub(1);
        for (l, layer) in self.layers.iter().enumerate() {
            // The last layer's output is needed at the pooled position only.
            let only = (l == last).then_some(pool);
            self.layer(layer, &mut x, t_n, only, &mut scratch, stats.as_deref_mut())?;
        }
        let mut pooled = x[pool * d..(pool + 1) * d].to_vec();
        ops::layer_norm(
            &mut pooled,
            d,
            &self.final_ln.0,
            &self.final_ln.1,
            c.encoder.layer_norm_eps as f32,
        );
        Ok(self.apply(&self.projection, &pooled, &mut scratch, stats))
    }

    /// The f32 embedding of one token.
    fn token_row(&self, id: usize) -> Vec<f32> {
        self.row_of(&self.token, id)
    }

    fn row_of(&self, embedding: &Embedding, id: usize) -> Vec<f32> {
        match embedding {
            Embedding::Split {
                head,
                head_rows,
                tail,
            } => {
                if id < *head_rows {
                    self.row_of(head, id)
                } else {
                    self.row_of(tail, id - head_rows)
                }
            }
            Embedding::Stored {
                layout,
                rows,
                cols,
                range,
            } => QTensor {
                layout: *layout,
                rows: *rows,
                cols: *cols,
                data: &self.bytes[range.clone()],
            }
            .row(id),
            #[cfg(not(target_arch = "wasm32"))]
            Embedding::F32 { values, cols, .. } => values[id * cols..(id + 1) * cols].to_vec(),
        }
    }

    fn layer(
        &self,
        layer: &Layer,
        x: &mut [f32],
        t_n: usize,
        only: Option<usize>,
        s: &mut Scratch,
        mut stats: Option<&mut InputStats>,
    ) -> Result<()> {
        let c = &self.config.encoder;
        let (d, heads) = (c.hidden_size, c.num_attention_heads);
        let hd = d / heads;
        let eps = c.layer_norm_eps as f32;
        let mut h = x.to_vec();
        ops::layer_norm(&mut h, d, &layer.ln1.0, &layer.ln1.1, eps);
        let [q, k, v] = Linear::apply_shared(
            [&layer.q, &layer.k, &layer.v],
            &h,
            self.run(),
            s,
            stats.as_deref_mut(),
        );
        let rows: Vec<usize> = match only {
            Some(p) => vec![p],
            None => (0..t_n).collect(),
        };
        let scale = 1.0 / (hd as f32).sqrt();
        let mut attn = vec![0f32; rows.len() * d];
        let mut scores = vec![0f32; t_n];
        for (r, &t) in rows.iter().enumerate() {
            for head in 0..heads {
                let qh = &q[t * d + head * hd..t * d + (head + 1) * hd];
                let visible = &mut scores[..=t];
                for (sidx, sc) in visible.iter_mut().enumerate() {
                    let kh = &k[sidx * d + head * hd..sidx * d + (head + 1) * hd];
                    *sc = qh.iter().zip(kh).map(|(a, b)| a * b).sum::<f32>() * scale;
                }
                ops::softmax(visible);
                let out = &mut attn[r * d + head * hd..r * d + (head + 1) * hd];
                for (sidx, p) in visible.iter().enumerate() {
                    let vh = &v[sidx * d + head * hd..sidx * d + (head + 1) * hd];
                    for (o, vv) in out.iter_mut().zip(vh) {
                        *o += p * vv;
                    }
                }
            }
        }
        let a = self.apply(&layer.o, &attn, s, stats.as_deref_mut());
        let mut res: Vec<f32> = rows
            .iter()
            .enumerate()
            .flat_map(|(r, &t)| {
                x[t * d..(t + 1) * d]
                    .iter()
                    .zip(&a[r * d..(r + 1) * d])
                    .map(|(x, a)| x + a)
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut h2 = res.clone();
        ops::layer_norm(&mut h2, d, &layer.ln2.0, &layer.ln2.1, eps);
        let mut f = self.apply(&layer.fc1, &h2, s, stats.as_deref_mut());
        match c.activation {
            Activation::QuickGelu => ops::quick_gelu(&mut f),
            Activation::Gelu => ops::gelu(&mut f),
        }
        let f2 = self.apply(&layer.fc2, &f, s, stats);
        for (r, v) in res.iter_mut().zip(&f2) {
            *r += v;
        }
        for (r, &t) in rows.iter().enumerate() {
            x[t * d..(t + 1) * d].copy_from_slice(&res[r * d..(r + 1) * d]);
        }
        Ok(())
    }

    /// `y = W x + b` with this model's bytes, bits and kernel.
    fn apply(
        &self,
        l: &Linear,
        x: &[f32],
        s: &mut Scratch,
        stats: Option<&mut InputStats>,
    ) -> Vec<f32> {
        l.apply(x, self.run(), s, stats)
    }

    /// How this model's linears run.
    fn run(&self) -> Run<'_> {
        Run {
            bytes: &self.bytes,
            bits: self.bits,
            kernel: self.kernel,
        }
    }
}

/// The model's parts, read from a source before the bytes move into the model.
struct Parts {
    token: Embedding,
    position: Vec<f32>,
    layers: Vec<Layer>,
    final_ln: (Vec<f32>, Vec<f32>),
    projection: Linear,
    logit_scale: f32,
}

impl Parts {
    fn read(src: &dyn Source, config: &ClipConfig) -> Result<Self> {
        let c = &config.text;
        let (d, f) = (c.encoder.hidden_size, c.encoder.intermediate_size);
        let layers = (0..c.encoder.num_hidden_layers)
            .map(|i| {
                let p = format!("text_model.encoder.layers.{i}");
                let a = format!("{p}.self_attn");
                Ok(Layer {
                    ln1: norm(src, &format!("{p}.layer_norm1"))?,
                    q: linear(src, &format!("{a}.q_proj"), d, d, true)?,
                    k: linear(src, &format!("{a}.k_proj"), d, d, true)?,
                    v: linear(src, &format!("{a}.v_proj"), d, d, true)?,
                    o: linear(src, &format!("{a}.out_proj"), d, d, true)?,
                    ln2: norm(src, &format!("{p}.layer_norm2"))?,
                    fc1: linear(src, &format!("{p}.mlp.fc1"), f, d, true)?,
                    fc2: linear(src, &format!("{p}.mlp.fc2"), d, f, true)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let position = src.f32("text_model.embeddings.position_embedding.weight")?;
        if position.len() != c.max_position_embeddings * d {
            return Err(Error::Checkpoint(
                "position embedding of the wrong size".into(),
            ));
        }
        let logit = src.f32("logit_scale")?;
        let token = src.embedding("text_model.embeddings.token_embedding.weight")?;
        if token.shape() != (c.vocab_size, d) {
            return Err(Error::Checkpoint(format!(
                "the token embedding is {:?}, the config says {}x{d}",
                token.shape(),
                c.vocab_size
            )));
        }
        Ok(Self {
            token,
            position,
            layers,
            final_ln: norm(src, "text_model.final_layer_norm")?,
            projection: linear(src, "text_projection", config.projection_dim, d, false)?,
            logit_scale: logit.first().copied().unwrap_or(0.0).exp(),
        })
    }

    fn into_model(
        self,
        bytes: Vec<u8>,
        config: &ClipConfig,
        bits: u32,
        layout: String,
    ) -> QuantTextEncoder {
        QuantTextEncoder {
            bytes,
            config: config.text.clone(),
            projection_dim: config.projection_dim,
            logit_scale: self.logit_scale,
            bits,
            kernel: Kernel::best(bits),
            layout,
            token: self.token,
            position: self.position,
            layers: self.layers,
            final_ln: self.final_ln,
            projection: self.projection,
        }
    }
}
