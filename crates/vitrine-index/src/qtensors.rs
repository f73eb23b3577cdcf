//! The quantized text encoder's file: named tensors in a few layouts (f32; int8 rows with one
//! scale per row; 4-bit blocks of 32 with one scale per block), laid out so the reader uses the
//! bytes where they are, with no copy, conversion or repacking: loading costs the file's size and
//! not four times it. The quantizers that write the layouts live here too, beside their readers.
//!
//! Binary layout (little-endian), `encoder/text.<hash>.vtq`:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `VTRQ` |
//! | 4 | 4 | u32 layout version (1) |
//! | 8 | 4 | u32 `H`, bytes of the header |
//! | 12 | H | header: JSON [`Header`], padded with spaces so the data starts 16-aligned |
//! | 12 + H | … | tensor data, each tensor at its header `offset` (16-aligned, from the file start) |
//!
//! Tensor layouts ([`Layout`]), for a tensor of shape `[rows, cols]` (a vector is one row):
//!
//! - `f32`: `rows × cols` f32.
//! - `q8_rows`: `rows × stride` i8 (`stride` = `cols` rounded up to 16, zero-padded), then
//!   `rows` f32 scales: value = `scale[r] × q[r][c]`, `q` within `-127..=127`.
//! - `q4_blocks`: per row, `cols / 32` blocks of 18 bytes: an f16 scale, then 16 bytes of 4-bit
//!   values (low nibble first) stored as `q + 8`: value = `scale × q`, `q` within `-8..=7`.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

const MAGIC: &[u8; 4] = b"VTRQ";
const LAYOUT_VERSION: u32 = 1;
/// Alignment of every tensor's data, and the padding of `q8_rows` rows.
pub const ALIGN: usize = 16;
/// Values per `q4_blocks` block.
pub const Q4_BLOCK: usize = 32;
const Q4_BLOCK_BYTES: usize = 2 + Q4_BLOCK / 2;

/// How a tensor's values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Plain f32.
    F32,
    /// int8 per row with an f32 scale per row, rows padded to 16 bytes.
    Q8Rows,
    /// 4-bit values in blocks of 32 along the row, an f16 scale per block.
    Q4Blocks,
}

/// One tensor's entry in the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorEntry {
    /// Hugging Face name, e.g. `text_model.encoder.layers.0.mlp.fc1.weight`.
    pub name: String,
    /// Storage layout.
    pub layout: Layout,
    /// `[rows, cols]` (`[cols]` for a vector).
    pub shape: Vec<usize>,
    /// Where the data starts in the file.
    pub offset: usize,
    /// Bytes of data.
    pub bytes: usize,
}

/// The header: what is in the file and how the encoder runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The layout name the build chose (`q8e4`, `q8e8`, …), for humans and the manifest.
    pub name: String,
    /// Bits of the activations fed to the int8 linears: 7 (`-63..=63`) or 8 (`-127..=127`).
    pub activation_bits: u32,
    /// Input channels of each linear kept out of the int8 product (their activations are too
    /// large for one per-row scale), by weight name; their weight columns are stored as the f32
    /// tensor `<name>.outliers` of shape `[out, k]`.
    #[serde(default)]
    pub outliers: std::collections::BTreeMap<String, Vec<u32>>,
    /// Every tensor.
    pub tensors: Vec<TensorEntry>,
}

impl Layout {
    /// Bytes of a `[rows, cols]` tensor in this layout.
    pub fn bytes(self, rows: usize, cols: usize) -> usize {
        self.checked_bytes(rows as u64, cols as u64)
            .and_then(|b| usize::try_from(b).ok())
            .expect("a tensor that fits in memory")
    }

    /// [`Layout::bytes`] without overflowing, for sizes read from a file.
    fn checked_bytes(self, rows: u64, cols: u64) -> Option<u64> {
        match self {
            Self::F32 => rows.checked_mul(cols)?.checked_mul(4),
            Self::Q8Rows => rows.checked_mul(cols.div_ceil(ALIGN as u64) * ALIGN as u64 + 4),
            Self::Q4Blocks => {
                rows.checked_mul(cols.div_ceil(Q4_BLOCK as u64) * Q4_BLOCK_BYTES as u64)
            }
        }
    }

    /// Whether a row of `cols` values can be stored in this layout.
    pub fn fits(self, cols: usize) -> bool {
        self != Self::Q4Blocks || cols.is_multiple_of(Q4_BLOCK)
    }
}

/// Bytes of one `q8_rows` row of `cols` values: `cols` rounded up to [`ALIGN`].
pub fn stride(cols: usize) -> usize {
    cols.div_ceil(ALIGN) * ALIGN
}

/// `(rows, cols)` of a shape.
fn rows_cols(shape: &[usize]) -> Result<(usize, usize)> {
    match shape {
        [n] => Ok((1, *n)),
        [r, c] => Ok((*r, *c)),
        other => Err(Error::Format(format!(
            "tensors are 1- or 2-dimensional, not {other:?}"
        ))),
    }
}

/// Quantizes a row-major `[rows, cols]` matrix to `q8_rows`: each row symmetric, scale =
/// max |value| / 127, rounded to nearest.
pub fn quantize_q8_rows(values: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    let s = stride(cols);
    let mut q = vec![0u8; rows * s];
    let mut scales = Vec::with_capacity(rows * 4);
    for r in 0..rows {
        let row = &values[r * cols..(r + 1) * cols];
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        for (c, v) in row.iter().enumerate() {
            q[r * s + c] = ((v / scale).round().clamp(-127.0, 127.0) as i8) as u8;
        }
        scales.extend_from_slice(&scale.to_le_bytes());
    }
    q.extend(scales);
    q
}

/// Quantizes a row-major `[rows, cols]` matrix (`cols` a multiple of 32) to `q4_blocks`: per
/// block the scale (f16, possibly negative) minimising the squared error among clipping
/// candidates, values rounded to nearest within `-8..=7`. On all-MiniLM-L6-v2's embedding this
/// beats ggml's Q4_0 (`./dev real-weights`).
pub fn quantize_q4_blocks(values: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    assert!(
        cols.is_multiple_of(Q4_BLOCK),
        "q4_blocks needs rows of whole blocks"
    );
    let mut out = Vec::with_capacity(Layout::Q4Blocks.bytes(rows, cols));
    for block in values[..rows * cols].chunks_exact(Q4_BLOCK) {
        // The value farthest from 0, with its sign: mapping it to -8 (a negative scale when it
        // is positive) uses the level the symmetric range leaves out.
        let extreme = block
            .iter()
            .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
        let max = extreme.abs();
        let mut best = (f32::INFINITY, 1f32);
        // Clipping the largest value a little often lowers the error of all the others.
        let candidates = (0..8)
            .map(|step| max * (1.0 - 0.04 * step as f32) / 7.5)
            .chain((0..4).map(|step| -extreme * (1.0 - 0.04 * step as f32) / 8.0));
        for scale in candidates {
            let scale = if scale == 0.0 || !scale.is_finite() {
                1.0
            } else {
                scale
            };
            let scale = half::f16::from_f32(scale).to_f32();
            if scale == 0.0 {
                continue;
            }
            let err: f32 = block
                .iter()
                .map(|v| {
                    let q = (v / scale).round().clamp(-8.0, 7.0);
                    (v - q * scale).powi(2)
                })
                .sum();
            if err < best.0 {
                best = (err, scale);
            }
        }
        let scale = best.1;
        out.extend_from_slice(&half::f16::from_f32(scale).to_bits().to_le_bytes());
        for pair in block.chunks_exact(2) {
            let nib = |v: f32| ((v / scale).round().clamp(-8.0, 7.0) as i32 + 8) as u8;
            out.push(nib(pair[0]) | (nib(pair[1]) << 4));
        }
    }
    out
}

/// A tensor of a [`QFile`], borrowed from its bytes.
#[derive(Debug, Clone, Copy)]
pub struct QTensor<'a> {
    /// Storage layout.
    pub layout: Layout,
    /// Rows (1 for a vector).
    pub rows: usize,
    /// Values per row.
    pub cols: usize,
    /// The data.
    pub data: &'a [u8],
}

impl<'a> QTensor<'a> {
    /// Row `r` as f32 values.
    pub fn row(&self, r: usize) -> Vec<f32> {
        match self.layout {
            Layout::F32 => self.data[r * self.cols * 4..(r + 1) * self.cols * 4]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Layout::Q8Rows => {
                let s = stride(self.cols);
                let scale = self.q8_scale(r);
                self.data[r * s..r * s + self.cols]
                    .iter()
                    .map(|&q| q as i8 as f32 * scale)
                    .collect()
            }
            Layout::Q4Blocks => {
                let per_row = self.cols / Q4_BLOCK * Q4_BLOCK_BYTES;
                let mut out = Vec::with_capacity(self.cols);
                for block in self.data[r * per_row..(r + 1) * per_row].chunks_exact(Q4_BLOCK_BYTES)
                {
                    let scale =
                        half::f16::from_bits(u16::from_le_bytes([block[0], block[1]])).to_f32();
                    for &b in &block[2..] {
                        out.push(((b & 15) as i32 - 8) as f32 * scale);
                        out.push(((b >> 4) as i32 - 8) as f32 * scale);
                    }
                }
                out
            }
        }
    }

    /// Every value, row-major.
    pub fn to_f32(&self) -> Vec<f32> {
        (0..self.rows).flat_map(|r| self.row(r)).collect()
    }

    /// The int8 values of a `q8_rows` tensor as stored (two's complement bytes),
    /// `rows × stride(cols)`.
    pub fn q8_bytes(&self) -> &'a [u8] {
        &self.data[..self.rows * stride(self.cols)]
    }

    /// The scale of row `r` of a `q8_rows` tensor.
    pub fn q8_scale(&self, r: usize) -> f32 {
        let at = self.rows * stride(self.cols) + r * 4;
        let b = &self.data[at..at + 4];
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

/// A quantized encoder file, read in place.
#[derive(Debug)]
pub struct QFile<'a> {
    /// The header.
    pub header: Header,
    bytes: &'a [u8],
}

impl<'a> QFile<'a> {
    /// Parses the header and checks every tensor lies within the file and has the size its
    /// layout and shape give.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let bad = |m: &str| Error::Format(format!("quantized encoder: {m}"));
        if bytes.len() < 12 || &bytes[..4] != MAGIC {
            return Err(bad("not a vitrine quantized encoder (no VTRQ magic)"));
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let version = u32_at(4);
        if version != LAYOUT_VERSION {
            return Err(Error::Version(format!(
                "the quantized encoder is layout version {version}, this reader reads \
                 {LAYOUT_VERSION}; rebuild the index with the matching build-index"
            )));
        }
        let h = u32_at(8) as usize;
        let json = bytes
            .get(12..12 + h)
            .ok_or_else(|| bad("the header is cut short"))?;
        let header: Header = serde_json::from_slice(json)
            .map_err(|e| bad(&format!("the header is malformed: {e}")))?;
        for t in &header.tensors {
            let (rows, cols) = rows_cols(&t.shape)?;
            let want = t
                .layout
                .checked_bytes(rows as u64, cols as u64)
                .and_then(|b| usize::try_from(b).ok())
                .ok_or_else(|| bad(&format!("{} is too large", t.name)))?;
            let inside = t.offset % ALIGN == 0
                && t.offset >= 12 + h
                && t.offset
                    .checked_add(t.bytes)
                    .is_some_and(|end| end <= bytes.len());
            if t.bytes != want || !inside || !t.layout.fits(cols) {
                return Err(bad(&format!(
                    "{} ({:?} {:?}) does not fit the file",
                    t.name, t.layout, t.shape
                )));
            }
        }
        if !matches!(header.activation_bits, 7 | 8) {
            return Err(bad("activation_bits must be 7 or 8"));
        }
        Ok(Self { header, bytes })
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Result<QTensor<'a>> {
        let t = self
            .header
            .tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::Format(format!("quantized encoder: no tensor {name}")))?;
        let (rows, cols) = rows_cols(&t.shape)?;
        Ok(QTensor {
            layout: t.layout,
            rows,
            cols,
            data: &self.bytes[t.offset..t.offset + t.bytes],
        })
    }
}

/// Builds a quantized encoder file.
#[derive(Debug, Default)]
pub struct QFileWriter {
    tensors: Vec<(TensorEntry, Vec<u8>)>,
}

impl QFileWriter {
    /// Adds a tensor whose data is already in `layout` (see the quantizers above).
    pub fn add(&mut self, name: &str, layout: Layout, shape: &[usize], data: Vec<u8>) {
        self.tensors.push((
            TensorEntry {
                name: name.to_string(),
                layout,
                shape: shape.to_vec(),
                offset: 0,
                bytes: data.len(),
            },
            data,
        ));
    }

    /// Adds an f32 tensor.
    pub fn add_f32(&mut self, name: &str, shape: &[usize], values: &[f32]) {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.add(name, Layout::F32, shape, data);
    }

    /// The file's bytes: deterministic for equal inputs.
    pub fn finish(
        self,
        name: &str,
        activation_bits: u32,
        outliers: std::collections::BTreeMap<String, Vec<u32>>,
    ) -> Vec<u8> {
        let mut header = Header {
            name: name.to_string(),
            activation_bits,
            outliers,
            tensors: self.tensors.iter().map(|(e, _)| e.clone()).collect(),
        };
        // Offsets depend on the header's length, which depends on the offsets' digits: settle.
        let mut h = 0usize;
        loop {
            let mut at = (12 + h).div_ceil(ALIGN) * ALIGN;
            for t in &mut header.tensors {
                t.offset = at;
                at = (at + t.bytes).div_ceil(ALIGN) * ALIGN;
            }
            let json = serde_json::to_vec(&header).expect("headers serialise");
            let need = (12 + json.len()).div_ceil(ALIGN) * ALIGN - 12;
            if need == h {
                break;
            }
            h = need;
        }
        let json = serde_json::to_vec(&header).expect("headers serialise");
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&LAYOUT_VERSION.to_le_bytes());
        out.extend_from_slice(&(h as u32).to_le_bytes());
        out.extend_from_slice(&json);
        out.resize(12 + h, b' ');
        for (entry, data) in self.tensors {
            out.resize(entry_offset(&header, &entry.name), 0);
            out.extend_from_slice(&data);
        }
        out.resize(out.len().div_ceil(ALIGN) * ALIGN, 0);
        out
    }
}

fn entry_offset(header: &Header, name: &str) -> usize {
    header
        .tensors
        .iter()
        .find(|t| t.name == name)
        .map_or(0, |t| t.offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * (1.0 + (i / cols) as f32))
            .collect()
    }

    #[test]
    fn q8_rows_round_trip_within_half_a_step() {
        let (rows, cols) = (5, 37);
        let v = values(rows, cols);
        let data = quantize_q8_rows(&v, rows, cols);
        assert_eq!(data.len(), Layout::Q8Rows.bytes(rows, cols));
        let t = QTensor {
            layout: Layout::Q8Rows,
            rows,
            cols,
            data: &data,
        };
        for r in 0..rows {
            let max = v[r * cols..(r + 1) * cols]
                .iter()
                .fold(0f32, |m, x| m.max(x.abs()));
            for (a, b) in t.row(r).iter().zip(&v[r * cols..]) {
                assert!((a - b).abs() <= max / 127.0 / 2.0 + 1e-6, "{a} vs {b}");
            }
        }
        assert_eq!(t.q8_bytes().len(), rows * 48);
    }

    #[test]
    fn q4_blocks_round_trip_within_a_step_of_the_block() {
        let (rows, cols) = (3, 64);
        let v = values(rows, cols);
        let data = quantize_q4_blocks(&v, rows, cols);
        assert_eq!(data.len(), Layout::Q4Blocks.bytes(rows, cols));
        let t = QTensor {
            layout: Layout::Q4Blocks,
            rows,
            cols,
            data: &data,
        };
        let back = t.to_f32();
        for (block, got) in v.chunks(32).zip(back.chunks(32)) {
            let max = block.iter().fold(0f32, |m, x| m.max(x.abs()));
            for (a, b) in got.iter().zip(block) {
                assert!((a - b).abs() <= max / 7.5 * 1.2, "{a} vs {b} (max {max})");
            }
        }
        assert!(!Layout::Q4Blocks.fits(33) && Layout::Q4Blocks.fits(64));
    }

    #[test]
    fn a_file_round_trips_and_damage_is_refused() {
        let mut w = QFileWriter::default();
        w.add_f32("a", &[3], &[1.0, 2.0, 3.0]);
        w.add(
            "b",
            Layout::Q8Rows,
            &[2, 20],
            quantize_q8_rows(&values(2, 20), 2, 20),
        );
        let mut outliers = std::collections::BTreeMap::new();
        outliers.insert("b".to_string(), vec![3]);
        let bytes = w.finish("test", 7, outliers.clone());
        assert_eq!(bytes.len() % ALIGN, 0);
        let f = QFile::parse(&bytes).unwrap();
        assert_eq!(f.header.activation_bits, 7);
        assert_eq!(f.header.outliers, outliers);
        assert_eq!(f.tensor("a").unwrap().to_f32(), [1.0, 2.0, 3.0]);
        let b = f.tensor("b").unwrap();
        let offset = b.data.as_ptr() as usize - bytes.as_ptr() as usize;
        assert_eq!((b.rows, b.cols, offset % ALIGN), (2, 20, 0));
        assert!(f.tensor("c").is_err());
        assert!(
            QFile::parse(&bytes[..bytes.len() - 16]).is_err(),
            "cut short"
        );
        let mut other = bytes.clone();
        other[4] = 9;
        assert!(matches!(QFile::parse(&other), Err(Error::Version(_))));
    }
}
