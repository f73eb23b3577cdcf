//! One linear layer as the quantized tower runs it: int8 weights with one scale per output
//! channel, inputs quantized per row at run time, the few outlier input channels in f32. Public
//! as [`QuantLinear`] so benchmarks run the same arithmetic on other trained transformers.

use std::ops::Range;

use vitrine_index::qtensors::{QTensor, quantize_q8_rows, stride};

use super::kernels::{self, Kernel};
use super::{InputStats, ops};

/// An input channel is an outlier when its largest value is this many times the median channel's.
const OUTLIER_RATIO: f32 = 4.0;
/// At most this many outlier channels per linear layer.
pub(crate) const MAX_OUTLIERS: usize = 16;

/// A linear layer's weights.
#[derive(Debug, Clone)]
pub(crate) enum Mat {
    /// int8 rows in the model's bytes, one scale per row; `skip` lists the input channels taken
    /// in f32 instead, with their weight columns `skip_w` (`out × skip.len()`).
    Q8 {
        w: Range<usize>,
        scales: Vec<f32>,
        sums: Vec<i32>,
        skip: Vec<u32>,
        skip_w: Vec<f32>,
    },
    /// f32 rows (`out × cols`): the exporter's calibration pass.
    F32(Vec<f32>),
}

/// A linear layer: `y = W x + b`.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    /// The weight's name (`….mlp.fc1.weight`).
    pub(crate) name: String,
    pub(crate) out: usize,
    pub(crate) cols: usize,
    pub(crate) mat: Mat,
    pub(crate) bias: Option<Vec<f32>>,
}

/// Buffers reused by every linear layer of one encode.
#[derive(Default)]
pub(crate) struct Scratch {
    q: Vec<u8>,
    sx: Vec<f32>,
    acc: Vec<i32>,
}

/// How a linear layer runs: the bytes its int8 rows live in, the activations' bits, the kernel.
#[derive(Clone, Copy)]
pub(crate) struct Run<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) bits: u32,
    pub(crate) kernel: Kernel,
}

impl Linear {
    /// `y = W x + b` for each `cols`-wide row of `x`; an f32 layer records its input's
    /// per-channel maxima in `stats` (calibration).
    pub(crate) fn apply(
        &self,
        x: &[f32],
        run: Run<'_>,
        s: &mut Scratch,
        stats: Option<&mut InputStats>,
    ) -> Vec<f32> {
        if let (Some(stats), Mat::F32(_)) = (stats, &self.mat) {
            let entry = stats
                .entry(self.name.clone())
                .or_insert_with(|| vec![0f32; self.cols]);
            record_maxima(entry, x);
        }
        if let Mat::Q8 { skip, .. } = &self.mat {
            let st = stride(self.cols);
            ops::quantize_rows(x, self.cols, st, run.bits, skip, &mut s.q, &mut s.sx);
        }
        self.product(x, run, s)
    }

    /// [`Linear::apply`] for layers fed the same input (q, k and v): it is quantized once when
    /// they take the same outlier channels.
    pub(crate) fn apply_shared<const N: usize>(
        layers: [&Self; N],
        x: &[f32],
        run: Run<'_>,
        s: &mut Scratch,
        mut stats: Option<&mut InputStats>,
    ) -> [Vec<f32>; N] {
        let mut quantized: Option<&[u32]> = None;
        layers.map(|l| match &l.mat {
            Mat::Q8 { skip, .. } if quantized == Some(skip.as_slice()) => l.product(x, run, s),
            Mat::Q8 { skip, .. } => {
                quantized = Some(skip);
                l.apply(x, run, s, stats.as_deref_mut())
            }
            Mat::F32(_) => l.apply(x, run, s, stats.as_deref_mut()),
        })
    }

    /// The product itself; for int8 weights `s` holds `x` quantized for this layer.
    fn product(&self, x: &[f32], run: Run<'_>, s: &mut Scratch) -> Vec<f32> {
        let (out, cols) = (self.out, self.cols);
        let rows = x.len() / cols;
        let mut y = vec![0f32; rows * out];
        match &self.mat {
            Mat::F32(w) => {
                for (t, row) in x.chunks_exact(cols).enumerate() {
                    for (o, wr) in w.chunks_exact(cols).enumerate() {
                        y[t * out + o] = ops::dot_f32(row, wr);
                    }
                }
            }
            Mat::Q8 {
                w,
                scales,
                sums,
                skip,
                skip_w,
            } => {
                let st = stride(cols);
                s.acc.clear();
                s.acc.resize(rows * out, 0);
                let w = &run.bytes[w.clone()];
                kernels::dots(run.kernel, &s.q, rows, w, sums, out, st, &mut s.acc);
                let k = skip.len();
                for (t, yr) in y.chunks_exact_mut(out).enumerate() {
                    let xr = &x[t * cols..(t + 1) * cols];
                    let outliers: Vec<f32> = skip.iter().map(|&c| xr[c as usize]).collect();
                    let acc = &s.acc[t * out..(t + 1) * out];
                    for (o, ((y, &a), &scale)) in yr.iter_mut().zip(acc).zip(scales).enumerate() {
                        let mut v = a as f32 * (s.sx[t] * scale);
                        if k > 0 {
                            for (xo, wo) in outliers.iter().zip(&skip_w[o * k..(o + 1) * k]) {
                                v += xo * wo;
                            }
                        }
                        *y = v;
                    }
                }
            }
        }
        if let Some(b) = &self.bias {
            for row in y.chunks_exact_mut(out) {
                for (v, b) in row.iter_mut().zip(b) {
                    *v += b;
                }
            }
        }
        y
    }
}

/// Raises `maxima[c]` to the largest `|x|` of channel `c` over the rows of `x`.
pub fn record_maxima(maxima: &mut [f32], x: &[f32]) {
    for row in x.chunks_exact(maxima.len()) {
        for (m, v) in maxima.iter_mut().zip(row) {
            *m = m.max(v.abs());
        }
    }
}

/// The outlier channels of one linear layer's input, from its channel maxima.
pub(crate) fn outliers(maxima: &[f32]) -> Vec<u32> {
    let mut sorted = maxima.to_vec();
    sorted.sort_by(f32::total_cmp);
    let Some(&median) = sorted.get(sorted.len() / 2) else {
        return Vec::new();
    };
    if median <= 0.0 {
        return Vec::new();
    }
    let mut big: Vec<(usize, f32)> = maxima
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, m)| *m > OUTLIER_RATIO * median)
        .collect();
    big.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    big.truncate(MAX_OUTLIERS);
    let mut channels: Vec<u32> = big.into_iter().map(|(c, _)| c as u32).collect();
    channels.sort_unstable();
    channels
}

/// Moves the `skip` columns of a row-major `[out, cols]` matrix out (zeroing them in `w`) and
/// returns them as `[out, skip.len()]`.
pub(crate) fn take_columns(w: &mut [f32], cols: usize, skip: &[u32]) -> Vec<f32> {
    let mut columns = Vec::with_capacity(w.len() / cols.max(1) * skip.len());
    for row in w.chunks_exact_mut(cols) {
        for &c in skip {
            columns.push(row[c as usize]);
            row[c as usize] = 0.0;
        }
    }
    columns
}

/// A linear layer quantized from f32 weights, run exactly as the page's text tower runs its
/// layers (same quantizer, outlier rule, activation rounding and kernel).
pub struct QuantLinear {
    bytes: Vec<u8>,
    linear: Linear,
    bits: u32,
    kernel: Kernel,
}

impl QuantLinear {
    /// Quantizes a row-major `[out, cols]` weight; `input_maxima` (each input channel's largest
    /// `|x|` over calibration text, see [`record_maxima`]) picks the channels kept in f32;
    /// `activation_bits` is 7 or 8.
    pub fn new(
        weight: &[f32],
        bias: Option<Vec<f32>>,
        out: usize,
        cols: usize,
        input_maxima: &[f32],
        activation_bits: u32,
    ) -> Self {
        let skip = outliers(input_maxima);
        let mut w = weight[..out * cols].to_vec();
        let skip_w = take_columns(&mut w, cols, &skip);
        let bytes = quantize_q8_rows(&w, out, cols);
        let t = QTensor {
            layout: vitrine_index::qtensors::Layout::Q8Rows,
            rows: out,
            cols,
            data: &bytes,
        };
        let mat = Mat::Q8 {
            w: 0..t.q8_bytes().len(),
            scales: (0..out).map(|r| t.q8_scale(r)).collect(),
            sums: kernels::row_sums(t.q8_bytes(), stride(cols)),
            skip,
            skip_w,
        };
        Self {
            linear: Linear {
                name: String::new(),
                out,
                cols,
                mat,
                bias,
            },
            bytes,
            bits: activation_bits,
            kernel: Kernel::best(activation_bits),
        }
    }

    /// The input channels taken in f32.
    pub fn outlier_channels(&self) -> &[u32] {
        match &self.linear.mat {
            Mat::Q8 { skip, .. } => skip,
            Mat::F32(_) => &[],
        }
    }

    /// `y = W x + b` for each `cols`-wide row of `x`.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let run = Run {
            bytes: &self.bytes,
            bits: self.bits,
            kernel: self.kernel,
        };
        self.linear.apply(x, run, &mut Scratch::default(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outliers_are_the_few_channels_far_above_the_median() {
        let mut m = vec![1.0f32; 100];
        m[7] = 50.0;
        m[3] = 7.0;
        m[90] = 3.5;
        assert_eq!(outliers(&m), [3, 7]);
        let many: Vec<f32> = (0..100)
            .map(|i| if i % 3 == 0 { 100.0 } else { 1.0 })
            .collect();
        assert_eq!(outliers(&many).len(), MAX_OUTLIERS);
        assert!(outliers(&[0.0; 10]).is_empty());
        assert!(outliers(&[]).is_empty());
    }

    #[test]
    fn a_quant_linear_is_close_to_its_f32_product_and_keeps_outliers_exact() {
        let (out, cols) = (24, 40);
        let w: Vec<f32> = (0..out * cols)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let bias: Vec<f32> = (0..out).map(|o| o as f32 * 0.1).collect();
        let mut x: Vec<f32> = (0..2 * cols)
            .map(|i| ((i * 13 % 17) as f32 - 8.0) / 8.0)
            .collect();
        x[5] = 40.0;
        let mut maxima = vec![0f32; cols];
        record_maxima(&mut maxima, &x);
        let q = QuantLinear::new(&w, Some(bias.clone()), out, cols, &maxima, 8);
        assert_eq!(q.outlier_channels(), [5]);
        let y = q.forward(&x);
        for t in 0..2 {
            for o in 0..out {
                let want: f32 = (0..cols)
                    .map(|c| x[t * cols + c] * w[o * cols + c])
                    .sum::<f32>()
                    + bias[o];
                let got = y[t * out + o];
                assert!((got - want).abs() < 0.05, "{t},{o}: {got} vs {want}");
            }
        }
    }
}
