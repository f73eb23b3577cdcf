//! A BERT encoder (post-LN, mean pooling, as all-MiniLM-L6-v2) written with the quantized text
//! tower's own pieces: its `QuantLinear` layers, its 8- and 4-bit embedding rows and its float
//! ops, so real trained weights go through exactly the arithmetic the page runs.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use vitrine_clip::quant::ops;
use vitrine_clip::quant::{QuantLinear, record_maxima};
use vitrine_index::qtensors::{Layout, QTensor, quantize_q4_blocks, quantize_q8_rows};

pub(crate) type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How one variant stores and runs the linears.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Linears {
    /// f32 weights.
    F32,
    /// int8 weights per output channel, dequantized; f32 activations (the study's "a").
    WeightsOnly,
    /// The page's layers: int8 weights, activations quantized per row to `bits`, outlier
    /// channels in f32 unless `outliers` is false.
    Quant { bits: u32, outliers: bool },
}

/// How one variant stores the token embedding.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rows {
    F32,
    Eight,
    Four,
    /// The first `head` rows in 8 bits, the others in 4.
    FourWithEightBitHead(usize),
}

enum Lin {
    F32 {
        w: Vec<f32>,
        b: Vec<f32>,
        out: usize,
    },
    Q(QuantLinear),
}

impl Lin {
    fn forward(&self, x: &[f32]) -> Vec<f32> {
        match self {
            Self::F32 { w, b, out } => {
                let cols = w.len() / out;
                let mut y = Vec::with_capacity(x.len() / cols * out);
                for row in x.chunks_exact(cols) {
                    y.extend(
                        w.chunks_exact(cols)
                            .zip(b)
                            .map(|(w, b)| ops::dot_f32(row, w) + b),
                    );
                }
                y
            }
            Self::Q(q) => q.forward(x),
        }
    }
}

struct Layer {
    q: Lin,
    k: Lin,
    v: Lin,
    o: Lin,
    ln1: (Vec<f32>, Vec<f32>),
    f1: Lin,
    f2: Lin,
    ln2: (Vec<f32>, Vec<f32>),
}

/// The model's f32 tensors, read once.
pub(crate) struct Weights {
    tensors: HashMap<String, (Vec<f32>, Vec<usize>)>,
    pub(crate) hidden: usize,
    pub(crate) heads: usize,
    pub(crate) layers: usize,
    pub(crate) eps: f32,
}

/// The linears' names inside `encoder.layer.{i}.`.
const LINEARS: [&str; 6] = [
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
];

impl Weights {
    pub(crate) fn load(
        vb: &VarBuilder<'_>,
        config: &candle_transformers::models::bert::Config,
    ) -> Result<Self> {
        let (d, f) = (config.hidden_size, config.intermediate_size);
        let mut shapes: Vec<(String, Vec<usize>)> = vec![
            (
                "embeddings.word_embeddings.weight".into(),
                vec![config.vocab_size, d],
            ),
            (
                "embeddings.position_embeddings.weight".into(),
                vec![config.max_position_embeddings, d],
            ),
            (
                "embeddings.token_type_embeddings.weight".into(),
                vec![config.type_vocab_size, d],
            ),
            ("embeddings.LayerNorm.weight".into(), vec![d]),
            ("embeddings.LayerNorm.bias".into(), vec![d]),
        ];
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            for (name, out, cols) in [
                (0, d, d),
                (1, d, d),
                (2, d, d),
                (3, d, d),
                (4, f, d),
                (5, d, f),
            ]
            .map(|(n, o, c)| (LINEARS[n], o, c))
            {
                shapes.push((format!("{p}.{name}.weight"), vec![out, cols]));
                shapes.push((format!("{p}.{name}.bias"), vec![out]));
            }
            for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
                shapes.push((format!("{p}.{ln}.weight"), vec![d]));
                shapes.push((format!("{p}.{ln}.bias"), vec![d]));
            }
        }
        let mut tensors = HashMap::new();
        for (name, shape) in shapes {
            let t: Tensor = vb.get(shape.as_slice(), &name)?;
            tensors.insert(name, (t.flatten_all()?.to_vec1::<f32>()?, shape));
        }
        Ok(Self {
            tensors,
            hidden: d,
            heads: config.num_attention_heads,
            layers: config.num_hidden_layers,
            eps: config.layer_norm_eps as f32,
        })
    }

    fn get(&self, name: &str) -> &[f32] {
        &self.tensors[name].0
    }
}

/// Each linear's largest input per channel (by weight name) over some texts, from the f32 model.
pub(crate) type Maxima = HashMap<String, Vec<f32>>;

/// One variant of the model.
pub(crate) struct Bert {
    word: Vec<f32>,
    position: Vec<f32>,
    type0: Vec<f32>,
    emb_ln: (Vec<f32>, Vec<f32>),
    layers: Vec<Layer>,
    d: usize,
    heads: usize,
    eps: f32,
}

/// The token embedding as the page stores it, dequantized back to f32 rows (each row comes out
/// exactly as the tower's per-query dequantization gives it).
fn embedding(values: &[f32], rows: usize, d: usize, how: Rows) -> Vec<f32> {
    let roundtrip = |layout: Layout, v: &[f32], n: usize| {
        let data = match layout {
            Layout::Q8Rows => quantize_q8_rows(v, n, d),
            _ => quantize_q4_blocks(v, n, d),
        };
        QTensor {
            layout,
            rows: n,
            cols: d,
            data: &data,
        }
        .to_f32()
    };
    match how {
        Rows::F32 => values.to_vec(),
        Rows::Eight => roundtrip(Layout::Q8Rows, values, rows),
        Rows::Four => roundtrip(Layout::Q4Blocks, values, rows),
        Rows::FourWithEightBitHead(head) => {
            let (h, t) = values.split_at(head * d);
            let mut out = roundtrip(Layout::Q8Rows, h, head);
            out.extend(roundtrip(Layout::Q4Blocks, t, rows - head));
            out
        }
    }
}

impl Bert {
    /// The model with its linears and embedding stored as asked; `maxima` places outliers.
    pub(crate) fn new(w: &Weights, linears: Linears, rows: Rows, maxima: &Maxima) -> Self {
        let d = w.hidden;
        let lin = |name: String| {
            let (weight, shape) = &w.tensors[&format!("{name}.weight")];
            let (out, cols) = (shape[0], shape[1]);
            let b = w.get(&format!("{name}.bias")).to_vec();
            match linears {
                Linears::F32 => Lin::F32 {
                    w: weight.clone(),
                    b,
                    out,
                },
                Linears::WeightsOnly => {
                    let data = quantize_q8_rows(weight, out, cols);
                    let t = QTensor {
                        layout: Layout::Q8Rows,
                        rows: out,
                        cols,
                        data: &data,
                    };
                    Lin::F32 {
                        w: t.to_f32(),
                        b,
                        out,
                    }
                }
                Linears::Quant { bits, outliers } => {
                    let none = vec![0f32; cols];
                    let m = match maxima.get(&name) {
                        Some(m) if outliers => m,
                        _ => &none,
                    };
                    Lin::Q(QuantLinear::new(weight, Some(b), out, cols, m, bits))
                }
            }
        };
        let norm = |name: &str| {
            (
                w.get(&format!("{name}.weight")).to_vec(),
                w.get(&format!("{name}.bias")).to_vec(),
            )
        };
        let layers = (0..w.layers)
            .map(|i| {
                let p = format!("encoder.layer.{i}");
                let [q, k, v, o, f1, f2] = LINEARS.map(|n| lin(format!("{p}.{n}")));
                Layer {
                    q,
                    k,
                    v,
                    o,
                    ln1: norm(&format!("{p}.attention.output.LayerNorm")),
                    f1,
                    f2,
                    ln2: norm(&format!("{p}.output.LayerNorm")),
                }
            })
            .collect();
        let (word, shape) = &w.tensors["embeddings.word_embeddings.weight"];
        Self {
            word: embedding(word, shape[0], d, rows),
            position: w.get("embeddings.position_embeddings.weight").to_vec(),
            type0: w.get("embeddings.token_type_embeddings.weight")[..d].to_vec(),
            emb_ln: norm("embeddings.LayerNorm"),
            layers,
            d,
            heads: w.heads,
            eps: w.eps,
        }
    }

    /// How many input channels each quantized linear takes in f32.
    pub(crate) fn outlier_counts(&self) -> Vec<usize> {
        self.layers
            .iter()
            .flat_map(|l| [&l.q, &l.k, &l.v, &l.o, &l.f1, &l.f2])
            .filter_map(|l| match l {
                Lin::Q(q) => Some(q.outlier_channels().len()),
                Lin::F32 { .. } => None,
            })
            .collect()
    }

    /// The mean-pooled, L2-normalised sentence vector; records each linear's input maxima in
    /// `record` when given (run it on the f32 variant).
    pub(crate) fn encode(&self, ids: &[u32], mut record: Option<&mut Maxima>) -> Vec<f32> {
        let (d, n) = (self.d, ids.len());
        let mut x = Vec::with_capacity(n * d);
        for (t, &id) in ids.iter().enumerate() {
            let row = &self.word[id as usize * d..(id as usize + 1) * d];
            let pos = &self.position[t * d..(t + 1) * d];
            x.extend((0..d).map(|c| row[c] + pos[c] + self.type0[c]));
        }
        ops::layer_norm(&mut x, d, &self.emb_ln.0, &self.emb_ln.1, self.eps);
        for (i, l) in self.layers.iter().enumerate() {
            let p = format!("encoder.layer.{i}");
            let mut run = |lin: &Lin, name: &str, input: &[f32]| {
                if let Some(m) = record.as_deref_mut() {
                    let cols = input.len() / n;
                    record_maxima(
                        m.entry(format!("{p}.{name}"))
                            .or_insert_with(|| vec![0.0; cols]),
                        input,
                    );
                }
                lin.forward(input)
            };
            let q = run(&l.q, LINEARS[0], &x);
            let k = run(&l.k, LINEARS[1], &x);
            let v = run(&l.v, LINEARS[2], &x);
            let ctx = attention(&q, &k, &v, n, d, self.heads);
            let o = run(&l.o, LINEARS[3], &ctx);
            for (x, o) in x.iter_mut().zip(&o) {
                *x += o;
            }
            ops::layer_norm(&mut x, d, &l.ln1.0, &l.ln1.1, self.eps);
            let mut h = run(&l.f1, LINEARS[4], &x);
            ops::gelu(&mut h);
            let h = run(&l.f2, LINEARS[5], &h);
            for (x, h) in x.iter_mut().zip(&h) {
                *x += h;
            }
            ops::layer_norm(&mut x, d, &l.ln2.0, &l.ln2.1, self.eps);
        }
        let mut pooled = vec![0f32; d];
        for row in x.chunks_exact(d) {
            for (p, v) in pooled.iter_mut().zip(row) {
                *p += v / n as f32;
            }
        }
        normalize(pooled)
    }
}

/// Bidirectional multi-head attention over `n` tokens (one text, no padding).
fn attention(q: &[f32], k: &[f32], v: &[f32], n: usize, d: usize, heads: usize) -> Vec<f32> {
    let hd = d / heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut out = vec![0f32; n * d];
    let mut scores = vec![0f32; n];
    for t in 0..n {
        for h in 0..heads {
            let qh = &q[t * d + h * hd..t * d + (h + 1) * hd];
            for (s, sc) in scores.iter_mut().enumerate() {
                *sc = ops::dot_f32(qh, &k[s * d + h * hd..s * d + (h + 1) * hd]) * scale;
            }
            ops::softmax(&mut scores);
            let o = &mut out[t * d + h * hd..t * d + (h + 1) * hd];
            for (s, p) in scores.iter().enumerate() {
                for (o, v) in o.iter_mut().zip(&v[s * d + h * hd..s * d + (h + 1) * hd]) {
                    *o += p * v;
                }
            }
        }
    }
    out
}

pub(crate) fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// The f32 reference: candle-transformers' `BertModel`, mean-pooled and normalised.
pub(crate) struct Reference(candle_transformers::models::bert::BertModel);

impl Reference {
    pub(crate) fn load(
        vb: VarBuilder<'_>,
        config: &candle_transformers::models::bert::Config,
    ) -> Result<Self> {
        Ok(Self(candle_transformers::models::bert::BertModel::load(
            vb, config,
        )?))
    }

    pub(crate) fn encode(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let input = Tensor::new(ids, &Device::Cpu)?.unsqueeze(0)?;
        let types = input.zeros_like()?;
        let hidden = self.0.forward(&input, &types, None)?;
        let pooled = hidden.to_dtype(DType::F32)?.mean(1)?.squeeze(0)?;
        Ok(normalize(pooled.to_vec1::<f32>()?))
    }
}
