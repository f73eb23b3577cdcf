//! The page's text encoder and its quality gate: the text tower is exported in the smallest layout
//! whose query vectors, computed exactly as the page computes them, stay close to the f32
//! checkpoint's on this build's prompts (facet prompts, everyday shopping queries, catalogue
//! titles): mean cosine and the overlap of the top 10 items of this catalogue. Measured on every
//! build, recorded in the manifest and the report.

use anyhow::{Result, bail};
use rayon::prelude::*;
use vitrine_clip::{
    Checkpoint, ClipTokenizer, EmbeddingBits, QuantLayout, QuantTextEncoder, TextEncoder,
};
use vitrine_index::qtensors::Layout;
use vitrine_index::{EncoderFormat, EncoderInfo, EncoderQuality, Vectors, normalize};

/// `--text-encoder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum EncoderChoice {
    /// The smallest layout that passes the gate.
    Auto,
    /// int8 linears, 4-bit token embedding (≈ 53 MB at ViT-B/32 size), or the same with the
    /// 8,192 most frequent tokens in 8 bits (≈ 55 MB).
    Q8e4,
    /// int8 linears, int8 token embedding (≈ 65 MB).
    Q8e8,
    /// f16 safetensors, computed in f32 (≈ 127 MB).
    F16,
}

/// The gate's thresholds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gate {
    /// Mean cosine to the f32 query vectors.
    pub(crate) min_mean_cosine: f64,
    /// Recall@10 of the ranking against the f32 query's ranking.
    pub(crate) min_recall: f64,
}

/// The exported encoder.
pub(crate) struct Exported {
    /// The weights file.
    pub(crate) bytes: Vec<u8>,
    /// Its extension.
    pub(crate) ext: &'static str,
    /// Format, layout and measured quality, for the manifest.
    pub(crate) info: EncoderInfo,
    /// What was tried and why this one was chosen, for the log.
    pub(crate) note: String,
    /// The measured prompts' vectors from this encoder, as the page computes them.
    pub(crate) queries: Vec<Vec<f32>>,
}

/// One candidate: a quantized layout or f16.
#[derive(Debug, Clone, Copy)]
enum Candidate {
    Quantized(QuantLayout),
    F16,
}

impl Candidate {
    fn name(self) -> String {
        match self {
            Self::Quantized(l) => l.name(),
            Self::F16 => "f16".into(),
        }
    }
}

fn candidates(choice: EncoderChoice) -> Vec<Candidate> {
    let q = |embedding, activation_bits| {
        Candidate::Quantized(QuantLayout {
            embedding,
            activation_bits,
        })
    };
    use EmbeddingBits::{Eight, Four, FourWithEightBitHead as FourHead};
    let four = [q(Four, 7), q(Four, 8), q(FourHead, 7), q(FourHead, 8)];
    match choice {
        // Smallest first; of equal size, the faster (7-bit activations: the relaxed-SIMD kernel).
        EncoderChoice::Auto => four
            .into_iter()
            .chain([q(Eight, 7), q(Eight, 8), Candidate::F16])
            .collect(),
        EncoderChoice::Q8e4 => four.to_vec(),
        EncoderChoice::Q8e8 => vec![q(Eight, 7), q(Eight, 8)],
        EncoderChoice::F16 => vec![Candidate::F16],
    }
}

/// Unit query vectors of `prompts`, computed with `encode`.
fn unit(vectors: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
    vectors.iter().map(|v| normalize(v)).collect()
}

/// Measures `got` against `want` (unit vectors, one per prompt) over `vectors`.
fn quality(got: &[Vec<f32>], want: &[Vec<f32>], vectors: &Vectors, gate: Gate) -> EncoderQuality {
    let cos: Vec<f64> = got
        .iter()
        .zip(want)
        .map(|(a, b)| f64::from(a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>()))
        .collect();
    let k = 10.min(vectors.len());
    let recall: f64 = got
        .par_iter()
        .zip(want)
        .map(|(a, b)| {
            let top = |q: &[f32]| -> Vec<u32> {
                vectors
                    .search(&vectors.query(q), k, None)
                    .iter()
                    .map(|h| h.index)
                    .collect()
            };
            let (ta, tb) = (top(a), top(b));
            if k == 0 {
                1.0
            } else {
                ta.iter().filter(|i| tb.contains(i)).count() as f64 / k as f64
            }
        })
        .sum();
    let n = cos.len().max(1) as f64;
    // Rounded down, so the recorded value never overstates and the gate is never passed by
    // rounding (as the vectors' recall).
    let floor = |v: f64| (v * 1e4 + 1e-9).floor() / 1e4;
    EncoderQuality {
        prompts: cos.len() as u32,
        mean_cosine: floor(cos.iter().sum::<f64>() / n),
        min_cosine: floor(cos.iter().copied().fold(1.0, f64::min)),
        recall_at_10: floor(recall / n),
        min_mean_cosine: gate.min_mean_cosine,
        min_recall: gate.min_recall,
    }
}

fn passes(q: &EncoderQuality) -> bool {
    q.mean_cosine >= q.min_mean_cosine && q.recall_at_10 >= q.min_recall
}

fn describe(name: &str, bytes: usize, q: &EncoderQuality) -> String {
    format!(
        "{name} ({:.1} MB): mean cosine {:.4}, min {:.4}, recall@10 {:.4} over {} prompts",
        bytes as f64 / 1e6,
        q.mean_cosine,
        q.min_cosine,
        q.recall_at_10,
        q.prompts
    )
}

/// What the gate measures and the exporter calibrates with.
pub(crate) struct Prompts<'a> {
    /// Facet prompts, everyday queries and catalogue titles: what the gate measures.
    pub(crate) measured: &'a [String],
    /// The everyday queries alone: the calibration texts, the same for every catalogue, so a
    /// layout exports to the same bytes whatever the catalogue holds.
    pub(crate) calibration: &'a [String],
}

/// Exports the text encoder as `choice` asks, measured on `prompts` against the f32 tower over
/// this catalogue's `vectors`; an explicit layout that misses the gate is an error naming the
/// numbers. `previous` is the layout the site at `--out` ships: tried first, and kept while it
/// passes, so a rebuild does not make every returning visitor download the encoder again.
#[allow(clippy::too_many_arguments)]
pub(crate) fn export(
    ckpt: &Checkpoint,
    tokenizer: &ClipTokenizer,
    reference: &TextEncoder,
    choice: EncoderChoice,
    prompts: Prompts<'_>,
    vectors: &Vectors,
    gate: Gate,
    previous: Option<&str>,
) -> Result<Exported> {
    let calibration: Vec<Vec<u32>> = prompts
        .calibration
        .iter()
        .map(|p| tokenizer.encode(p))
        .collect::<Result<_, _>>()?;
    let prompts = prompts.measured;
    let ids: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| tokenizer.encode(p))
        .collect::<Result<_, _>>()?;
    let mut want = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(64) {
        let batch: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
        want.extend(reference.encode_batch(&batch)?);
    }
    let want = unit(want);
    let config = std::fs::read(ckpt.dir.join("config.json"))?;
    let width = ckpt.config.text.encoder.hidden_size;
    let mut tried = Vec::new();
    let mut order = candidates(choice);
    if let Some(i) = order
        .iter()
        .position(|c| Some(c.name().as_str()) == previous)
    {
        let kept = order.remove(i);
        order.insert(0, kept);
    }
    for candidate in order {
        let (bytes, got, ext, format) = match candidate {
            Candidate::Quantized(layout) => {
                if layout.embedding != EmbeddingBits::Eight && !Layout::Q4Blocks.fits(width) {
                    tried.push(format!(
                        "{} does not fit this model (its width {width} is not a multiple of 32)",
                        layout.name()
                    ));
                    continue;
                }
                let bytes = ckpt.export_quantized_text_encoder(layout, &calibration)?;
                let model = QuantTextEncoder::from_bytes(&config, bytes.clone())?;
                let got = ids
                    .par_iter()
                    .map(|ids| model.encode(ids))
                    .collect::<Result<Vec<_>, _>>()?;
                (bytes, got, "vtq", EncoderFormat::Quantized)
            }
            Candidate::F16 => {
                let bytes = ckpt.export_text_encoder()?;
                let model = TextEncoder::from_bytes(&config, &bytes)?;
                let got = ids
                    .par_iter()
                    .map(|ids| model.encode(ids))
                    .collect::<Result<Vec<_>, _>>()?;
                (bytes, got, "safetensors", EncoderFormat::F16)
            }
        };
        let got = unit(got);
        let q = quality(&got, &want, vectors, gate);
        let line = describe(&candidate.name(), bytes.len(), &q);
        // f16 is the checkpoint itself at half the bytes: the fallback that always ships.
        if passes(&q) || matches!(candidate, Candidate::F16) && choice == EncoderChoice::Auto {
            let why = if passes(&q) && Some(candidate.name().as_str()) == previous {
                "the previous build's layout, which still passes the gate (kept so returning \
                 visitors need not download the encoder again)"
                    .to_string()
            } else if passes(&q) {
                format!(
                    "the smallest layout tried with mean cosine ≥ {} and recall@10 ≥ {}",
                    gate.min_mean_cosine, gate.min_recall
                )
            } else {
                "no smaller layout passed and f16 is the checkpoint at half precision".into()
            };
            let mut note = tried.iter().map(|t| format!("{t}; ")).collect::<String>();
            note += &format!("text encoder {line} — {why}");
            return Ok(Exported {
                bytes,
                ext,
                info: EncoderInfo {
                    format,
                    layout: candidate.name(),
                    quality: q,
                },
                note,
                queries: got,
            });
        }
        tried.push(format!("{line} misses the gate"));
    }
    bail!(
        "the text encoder misses the quality gate (mean cosine ≥ {}, recall@10 ≥ {}): {}; \
         nothing was written. Choose a larger layout with --text-encoder (q8e8, f16) or auto",
        gate.min_mean_cosine,
        gate.min_recall,
        tried.join("; ")
    )
}
