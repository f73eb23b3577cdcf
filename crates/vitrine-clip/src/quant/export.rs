//! Writing the quantized encoder file from a checkpoint (native only): the linears as int8 per
//! output channel, the token embedding in 8 or 4 bits, the rest in f32. Calibration texts run
//! through the f32 tower first, to find the input channels of each linear whose values are too
//! large for one per-row scale (CLIP's residual stream has a few); those stay in f32.

use std::collections::{BTreeMap, HashMap};

use candle_nn::VarBuilder;
use vitrine_index::qtensors::{Layout, QFileWriter, quantize_q4_blocks, quantize_q8_rows};

use super::linear::{Mat, outliers, take_columns};
use super::{Embedding, InputStats, QuantTextEncoder, Source};
use crate::config::ClipConfig;
use crate::{Checkpoint, Error, Result};

/// How the token embedding is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingBits {
    /// int8 per row.
    Eight,
    /// 4-bit blocks of 32.
    Four,
    /// The first [`EIGHT_BIT_HEAD`] rows in int8, the rest in 4-bit blocks: CLIP's BPE ids follow
    /// merge order, so the head holds the most frequent tokens, those most queries are made of.
    FourWithEightBitHead,
}

/// Rows of the token embedding [`EmbeddingBits::FourWithEightBitHead`] keeps in 8 bits.
pub const EIGHT_BIT_HEAD: usize = 8192;

/// A quantized layout: int8 linears, the embedding's bits, the activations' bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantLayout {
    /// The token embedding.
    pub embedding: EmbeddingBits,
    /// Bits of the activations fed to the int8 linears (7: the relaxed-SIMD kernel; 8: finer).
    pub activation_bits: u32,
}

impl QuantLayout {
    /// The layout's name, e.g. `q8e4a7`.
    pub fn name(&self) -> String {
        let e = match self.embedding {
            EmbeddingBits::Eight => "8",
            EmbeddingBits::Four => "4",
            EmbeddingBits::FourWithEightBitHead => "4h",
        };
        format!("q8e{e}a{}", self.activation_bits)
    }
}

/// Calibration texts the f32 tower runs (the channel maxima settle quickly).
const CALIBRATION_TEXTS: usize = 64;

/// The checkpoint's text tensors in f32.
struct CheckpointSource<'a> {
    vb: VarBuilder<'a>,
    shapes: HashMap<String, Vec<usize>>,
}

impl CheckpointSource<'_> {
    fn get(&self, name: &str) -> Result<Vec<f32>> {
        let t = match (name, self.shapes.get(name)) {
            ("logit_scale", _) => self.vb.get((), name).or_else(|_| self.vb.get(1, name))?,
            (_, Some(shape)) => self.vb.get(shape.as_slice(), name)?,
            (_, None) => return Err(Error::Checkpoint(format!("no tensor {name}"))),
        };
        Ok(t.flatten_all()?.to_vec1::<f32>()?)
    }
}

impl Source for CheckpointSource<'_> {
    fn f32(&self, name: &str) -> Result<Vec<f32>> {
        self.get(name)
    }

    fn mat(&self, name: &str, _out: usize, _cols: usize) -> Result<Mat> {
        Ok(Mat::F32(self.get(name)?))
    }

    fn embedding(&self, name: &str) -> Result<Embedding> {
        let values = self.get(name)?;
        let cols = self
            .shapes
            .get(name)
            .and_then(|s| s.get(1))
            .copied()
            .unwrap_or(1);
        Ok(Embedding::F32 {
            rows: values.len() / cols,
            values,
            cols,
        })
    }
}

impl Checkpoint {
    /// The text tower as the page runs it, in `layout`; `calibration` is tokenized text
    /// (the first [`CALIBRATION_TEXTS`] are used) to find outlier channels. Deterministic.
    pub fn export_quantized_text_encoder(
        &self,
        layout: QuantLayout,
        calibration: &[Vec<u32>],
    ) -> Result<Vec<u8>> {
        export(self.var_builder()?, &self.config, layout, calibration)
    }
}

/// [`Checkpoint::export_quantized_text_encoder`] from any `VarBuilder` holding a `CLIPModel`'s
/// tensors (the benchmarks' random checkpoints).
pub fn export(
    vb: VarBuilder<'_>,
    config: &ClipConfig,
    layout: QuantLayout,
    calibration: &[Vec<u32>],
) -> Result<Vec<u8>> {
    {
        let src = CheckpointSource {
            vb,
            shapes: crate::shapes::tensor_shapes(config).into_iter().collect(),
        };
        let stats = calibrate(&src, config, calibration)?;
        let mut writer = QFileWriter::default();
        let mut skips = BTreeMap::new();
        let d = config.text.encoder.hidden_size;
        for (name, shape) in crate::shapes::tensor_shapes(config) {
            let text = name.starts_with("text_model.") || name == "text_projection.weight";
            if !text && name != "logit_scale" {
                continue;
            }
            let values = src.get(&name)?;
            if name == "text_model.embeddings.token_embedding.weight" {
                let rows = values.len() / d;
                match layout.embedding {
                    EmbeddingBits::Four | EmbeddingBits::FourWithEightBitHead
                        if !Layout::Q4Blocks.fits(d) =>
                    {
                        return Err(Error::Config(format!(
                            "{}: the text width {d} is not a multiple of {}",
                            layout.name(),
                            vitrine_index::qtensors::Q4_BLOCK
                        )));
                    }
                    EmbeddingBits::Eight => writer.add(
                        &name,
                        Layout::Q8Rows,
                        &shape,
                        quantize_q8_rows(&values, rows, d),
                    ),
                    EmbeddingBits::Four => writer.add(
                        &name,
                        Layout::Q4Blocks,
                        &shape,
                        quantize_q4_blocks(&values, rows, d),
                    ),
                    EmbeddingBits::FourWithEightBitHead => {
                        let head = EIGHT_BIT_HEAD.min(rows);
                        let (h, t) = values.split_at(head * d);
                        writer.add(
                            &format!("{name}.head"),
                            Layout::Q8Rows,
                            &[head, d],
                            quantize_q8_rows(h, head, d),
                        );
                        writer.add(
                            &format!("{name}.tail"),
                            Layout::Q4Blocks,
                            &[rows - head, d],
                            quantize_q4_blocks(t, rows - head, d),
                        );
                    }
                }
            } else if let Some(maxima) = stats.get(&name) {
                let (out, cols) = (shape[0], shape[1]);
                let skip = outliers(maxima);
                let mut w = values;
                if !skip.is_empty() {
                    let columns = take_columns(&mut w, cols, &skip);
                    writer.add_f32(&format!("{name}.outliers"), &[out, skip.len()], &columns);
                    skips.insert(name.clone(), skip);
                }
                writer.add(
                    &name,
                    Layout::Q8Rows,
                    &shape,
                    quantize_q8_rows(&w, out, cols),
                );
            } else {
                let shape = if shape.is_empty() { vec![1] } else { shape };
                writer.add_f32(&name, &shape, &values);
            }
        }
        Ok(writer.finish(&layout.name(), layout.activation_bits, skips))
    }
}

/// Each linear layer's largest input per channel over the calibration texts, from the f32 tower.
fn calibrate(
    src: &CheckpointSource<'_>,
    config: &ClipConfig,
    texts: &[Vec<u32>],
) -> Result<InputStats> {
    let tower = QuantTextEncoder::from_source(src, config, 8, "f32")?;
    let mut stats = InputStats::new();
    for ids in texts.iter().take(CALIBRATION_TEXTS) {
        tower.encode_recording(ids, &mut stats)?;
    }
    if stats.is_empty() {
        // No calibration text: every linear is still quantized, without outliers.
        for l in tower
            .layers
            .iter()
            .flat_map(|l| [&l.q, &l.k, &l.v, &l.o, &l.fc1, &l.fc2])
        {
            stats.insert(l.name.clone(), vec![0.0; l.cols]);
        }
        stats.insert(
            tower.projection.name.clone(),
            vec![0.0; tower.projection.cols],
        );
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Checkpoint {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/tiny-clip"
        );
        Checkpoint::open(dir).unwrap()
    }

    fn texts(ckpt: &Checkpoint) -> Vec<Vec<u32>> {
        let tok = ckpt.tokenizer().unwrap();
        [
            "a photo of a cat",
            "red running shoes",
            "x",
            "a fluffy pink cat on a tv",
            "Кружка 茶壶",
        ]
        .iter()
        .map(|t| tok.encode(t).unwrap())
        .collect()
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (n(a) * n(b))
    }

    #[test]
    fn the_plain_forward_pass_equals_the_candle_tower_in_f32() {
        let ckpt = tiny();
        let reference = ckpt.text_encoder().unwrap();
        let src = CheckpointSource {
            vb: ckpt.var_builder().unwrap(),
            shapes: crate::shapes::tensor_shapes(&ckpt.config)
                .into_iter()
                .collect(),
        };
        let plain = QuantTextEncoder::from_source(&src, &ckpt.config, 8, "f32").unwrap();
        for ids in texts(&ckpt) {
            let want = reference.encode(&ids).unwrap();
            let got = plain.encode(&ids).unwrap();
            let worst = want
                .iter()
                .zip(&got)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-4, "{ids:?}: {worst}");
        }
    }

    #[test]
    fn every_layout_stays_close_to_f32_and_exports_deterministically() {
        let ckpt = tiny();
        let reference = ckpt.text_encoder().unwrap();
        let cal = texts(&ckpt);
        for embedding in [
            EmbeddingBits::Eight,
            EmbeddingBits::Four,
            EmbeddingBits::FourWithEightBitHead,
        ] {
            for activation_bits in [7, 8] {
                let layout = QuantLayout {
                    embedding,
                    activation_bits,
                };
                let bytes = ckpt.export_quantized_text_encoder(layout, &cal).unwrap();
                assert_eq!(
                    bytes,
                    ckpt.export_quantized_text_encoder(layout, &cal).unwrap()
                );
                let config = std::fs::read(ckpt.dir.join("config.json")).unwrap();
                let q = QuantTextEncoder::from_bytes(&config, bytes).unwrap();
                assert_eq!(q.layout(), layout.name());
                for ids in &cal {
                    let c = cosine(&q.encode(ids).unwrap(), &reference.encode(ids).unwrap());
                    assert!(c > 0.99, "{}: {ids:?}: cosine {c}", layout.name());
                }
            }
        }
    }
}
