//! The catalogue's embeddings as int8: L2-normalised, centred on the catalogue mean, and scaled per
//! dimension. Centring removes the direction all CLIP embeddings share (it adds the same amount to
//! every score of a query, so it cannot change a ranking) and leaves the int8 range to what tells
//! items apart. `dim` bytes per item, plus a header of `2 * dim` floats.
//!
//! Binary layout (all little-endian), `vectors.<hash>.bin`:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `VTRV` |
//! | 4 | 4 | u32 layout version (1) |
//! | 8 | 4 | u32 `dim` |
//! | 12 | 4 | u32 `count` |
//! | 16 | 4·dim | f32 per-dimension mean |
//! | 16 + 4·dim | 4·dim | f32 per-dimension scale |
//! | 16 + 8·dim | dim·count | i8 codes, item-major, catalogue order |
//!
//! Item `i`, dimension `d` decodes to `mean[d] + scale[d] * code[i][d]`.

use crate::{Error, Result};

const MAGIC: &[u8; 4] = b"VTRV";
const LAYOUT_VERSION: u32 = 1;
const HEADER: usize = 16;

/// Quantized, normalised embeddings of a whole catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    pub(crate) dim: usize,
    pub(crate) mean: Vec<f32>,
    pub(crate) scale: Vec<f32>,
    pub(crate) codes: Vec<i8>,
}

/// Divides `v` by its L2 norm (a zero vector stays zero).
pub fn normalize(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter().map(|x| x / norm).collect()
    } else {
        v.to_vec()
    }
}

/// Per-dimension centre and scale of int8 codes: item `d` decodes to `mean[d] + scale[d]·code`.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantizer {
    pub(crate) mean: Vec<f32>,
    pub(crate) scale: Vec<f32>,
}

impl Quantizer {
    /// Fits the centre and scale to unit vectors (`dim` floats each, at least one).
    pub fn fit(unit: &[f32], dim: usize) -> Self {
        let n = (unit.len() / dim).max(1) as f64;
        let mut sums = vec![0f64; dim];
        for v in unit.chunks_exact(dim) {
            sums.iter_mut()
                .zip(v)
                .for_each(|(s, &x)| *s += f64::from(x));
        }
        let mean: Vec<f32> = sums.iter().map(|s| (s / n) as f32).collect();
        let mut max = vec![0f32; dim];
        for v in unit.chunks_exact(dim) {
            for ((m, x), c) in max.iter_mut().zip(v).zip(&mean) {
                *m = m.max((x - c).abs());
            }
        }
        let scale = max
            .iter()
            .map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 })
            .collect();
        Self { mean, scale }
    }

    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The centre (per-dimension mean of the vectors it was fitted to).
    pub fn centre(&self) -> &[f32] {
        &self.mean
    }

    /// The codes of unit vectors (`dim` floats each), clamped to ±127.
    pub fn encode(&self, unit: &[f32]) -> Vec<i8> {
        let dim = self.dim();
        let mut codes = Vec::with_capacity(unit.len());
        for v in unit.chunks_exact(dim) {
            for ((x, m), s) in v.iter().zip(&self.mean).zip(&self.scale) {
                codes.push(((x - m) / s).round().clamp(-127.0, 127.0) as i8);
            }
        }
        codes
    }

    /// How many values of `unit` fall outside the int8 range and would be clamped.
    pub fn clipped(&self, unit: &[f32]) -> usize {
        let dim = self.dim();
        unit.chunks_exact(dim)
            .flat_map(|v| v.iter().zip(&self.mean).zip(&self.scale))
            .filter(|&((x, m), s)| ((x - m) / s).abs() > 127.5)
            .count()
    }
}

impl Vectors {
    /// Normalises and quantizes embeddings (all of the same length).
    pub fn quantize(embeddings: &[Vec<f32>]) -> Result<Self> {
        let dim = embeddings.first().map_or(0, Vec::len);
        if dim == 0 || embeddings.iter().any(|e| e.len() != dim) {
            return Err(Error::Format(
                "embeddings must be non-empty and of one length".into(),
            ));
        }
        if embeddings.iter().flatten().any(|x| !x.is_finite()) {
            return Err(Error::Format(
                "an embedding has NaN or infinite values".into(),
            ));
        }
        let unit: Vec<f32> = embeddings.iter().flat_map(|e| normalize(e)).collect();
        let q = Quantizer::fit(&unit, dim);
        let codes = q.encode(&unit);
        Ok(Self {
            dim,
            mean: q.mean,
            scale: q.scale,
            codes,
        })
    }

    /// The centre and scale of the codes.
    pub fn quantizer(&self) -> Quantizer {
        Quantizer {
            mean: self.mean.clone(),
            scale: self.scale.clone(),
        }
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.codes.len() / self.dim
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Width of each vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The int8 codes of item `i`.
    pub fn codes(&self, i: usize) -> &[i8] {
        &self.codes[i * self.dim..(i + 1) * self.dim]
    }

    /// Item `i` decoded back to floats (close to its normalised embedding).
    pub fn decode(&self, i: usize) -> Vec<f32> {
        self.codes(i)
            .iter()
            .enumerate()
            .map(|(d, &c)| self.mean[d] + self.scale[d] * f32::from(c))
            .collect()
    }

    /// The binary file (see the module docs for the layout).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + 8 * self.dim + self.codes.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&LAYOUT_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.dim as u32).to_le_bytes());
        out.extend_from_slice(&(self.len() as u32).to_le_bytes());
        for v in self.mean.iter().chain(&self.scale) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend(self.codes.iter().map(|&c| c as u8));
        out
    }

    /// Reads the binary file, checking its magic, version and size.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |what: &str| Err(Error::Format(format!("vectors file: {what}")));
        if bytes.len() < HEADER || &bytes[..4] != MAGIC {
            return bad("not a vitrine vectors file (bad magic)");
        }
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        if word(4) != LAYOUT_VERSION {
            return bad(&format!(
                "layout version {} is not supported (expected 1)",
                word(4)
            ));
        }
        let (dim, count) = (word(8) as usize, word(12) as usize);
        let expected = dim
            .checked_mul(count)
            .and_then(|c| c.checked_add(HEADER + 8 * dim));
        if dim == 0 || expected != Some(bytes.len()) {
            return bad(&format!(
                "{} bytes, but dim {dim} and count {count} need {}",
                bytes.len(),
                expected.map_or("more".into(), |e| e.to_string())
            ));
        }
        let floats = |from: usize| -> Vec<f32> {
            (0..dim)
                .map(|d| {
                    f32::from_le_bytes(
                        bytes[from + 4 * d..from + 4 * d + 4]
                            .try_into()
                            .unwrap_or([0; 4]),
                    )
                })
                .collect()
        };
        let mean = floats(HEADER);
        let scale = floats(HEADER + 4 * dim);
        if mean.iter().chain(&scale).any(|v| !v.is_finite()) {
            return bad("mean or scale is not finite");
        }
        let codes = bytes[HEADER + 8 * dim..].iter().map(|&b| b as i8).collect();
        Ok(Self {
            dim,
            mean,
            scale,
            codes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Vec<f32>> {
        (0..50)
            .map(|i| {
                (0..24)
                    .map(|d| ((i * 7 + d * 13) % 17) as f32 - 8.0 + 30.0 * (d == 3) as u8 as f32)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn encode_then_decode_gives_back_the_same_vectors() {
        let v = Vectors::quantize(&sample()).unwrap();
        let bytes = v.to_bytes();
        assert_eq!(bytes.len(), 16 + 8 * 24 + 50 * 24);
        assert_eq!(Vectors::from_bytes(&bytes).unwrap(), v);
    }

    #[test]
    fn decoded_vectors_are_close_to_the_normalised_input() {
        let input = sample();
        let v = Vectors::quantize(&input).unwrap();
        for (i, e) in input.iter().enumerate() {
            let n = normalize(e);
            let err = v
                .decode(i)
                .iter()
                .zip(&n)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                err <= v.scale.iter().fold(0f32, |a, &b| a.max(b)) * 0.5 + 1e-6,
                "item {i}: {err}"
            );
        }
    }

    #[test]
    fn damaged_files_are_rejected_with_a_reason() {
        let bytes = Vectors::quantize(&sample()).unwrap().to_bytes();
        let err = Vectors::from_bytes(&bytes[..bytes.len() - 1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("need"), "{err}");
        let mut wrong = bytes.clone();
        wrong[0] = b'X';
        assert!(
            Vectors::from_bytes(&wrong)
                .unwrap_err()
                .to_string()
                .contains("magic")
        );
        let mut newer = bytes;
        newer[4] = 2;
        assert!(
            Vectors::from_bytes(&newer)
                .unwrap_err()
                .to_string()
                .contains("version 2")
        );
    }
}
