//! The float steps of the quantized text tower, written once in plain Rust: layer norm, softmax,
//! the activations, and quantizing a layer's input rows. Every sum runs in one fixed order and
//! no libm function is called (`exp` and `erf` are our own polynomials), so native and wasm give
//! bit-identical vectors, and `build-index search` ranks exactly as the page.

use crate::fast::exp;

/// `Σ a[i] b[i]` in eight interleaved partial sums (so it vectorises), added in a fixed order.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

/// Layer norm of each `cols`-wide row of `x`, in place.
pub fn layer_norm(x: &mut [f32], cols: usize, weight: &[f32], bias: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(cols) {
        let n = cols as f32;
        let mean = row.iter().sum::<f32>() / n;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, w), b) in row.iter_mut().zip(weight).zip(bias) {
            *v = (*v - mean) * inv * w + b;
        }
    }
}

/// Softmax of `x` in place.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for v in x.iter_mut() {
        *v = exp(*v - max);
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

/// `x · sigmoid(1.702 x)`, OpenAI CLIP's activation, in place.
pub fn quick_gelu(x: &mut [f32]) {
    for v in x {
        *v /= 1.0 + exp(-1.702 * *v);
    }
}

/// The exact (erf) GELU, in place.
pub fn gelu(x: &mut [f32]) {
    for v in x {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// `erf`, within 1.5e-7 (Abramowitz & Stegun 7.1.26 with our `exp`).
pub fn erf(x: f32) -> f32 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y = 1.0
        - (((((1.061_405_4 * t - 1.453_152_1) * t) + 1.421_413_8) * t - 0.284_496_74) * t
            + 0.254_829_6)
            * t
            * exp(-x * x);
    sign * y
}

/// `rows` rows of `cols` f32 quantized for the int8 product (ties to even: one wasm instruction,
/// where rounding half away from zero is a libm call): each row symmetric to
/// `-(2^(bits-1) - 1)..=2^(bits-1) - 1` with one scale, rows padded to `stride` with zeros. The
/// channels in `skip` (outliers the layer takes in f32) are left out of the scale and set to 0.
pub fn quantize_rows(
    x: &[f32],
    cols: usize,
    stride: usize,
    bits: u32,
    skip: &[u32],
    q: &mut Vec<u8>,
    scales: &mut Vec<f32>,
) {
    let rows = x.len() / cols;
    let levels = ((1i32 << (bits - 1)) - 1) as f32;
    q.clear();
    q.resize(rows * stride, 0);
    scales.clear();
    let mut row_buf = Vec::new();
    for (r, row) in x.chunks_exact(cols).enumerate() {
        // The outlier channels read as 0: they neither set the scale nor enter the product.
        let row = if skip.is_empty() {
            row
        } else {
            row_buf.clear();
            row_buf.extend_from_slice(row);
            for &c in skip {
                row_buf[c as usize] = 0.0;
            }
            &row_buf[..]
        };
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { max / levels } else { 1.0 };
        let inv = 1.0 / scale;
        let out = &mut q[r * stride..r * stride + cols];
        for (o, v) in out.iter_mut().zip(row) {
            *o = ((v * inv).round_ties_even().clamp(-levels, levels) as i8) as u8;
        }
        scales.push(scale);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_and_gelu_match_the_textbook_values() {
        for (x, want) in [
            (0.0f32, 0.0f32),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-2.0, -0.995_322_3),
        ] {
            assert!((erf(x) - want).abs() < 3e-7, "erf({x}) = {}", erf(x));
        }
        let mut v = [1.0f32, -1.0];
        gelu(&mut v);
        assert!(
            (v[0] - 0.841_344_7).abs() < 1e-6 && (v[1] + 0.158_655_3).abs() < 1e-6,
            "{v:?}"
        );
    }

    #[test]
    fn rows_are_quantized_symmetrically_and_outliers_left_out() {
        let x = [1.0f32, -0.4, 100.0, 0.25, 0.0, 0.0, 0.0, 0.0];
        let (mut q, mut s) = (Vec::new(), Vec::new());
        quantize_rows(&x, 4, 16, 7, &[2], &mut q, &mut s);
        assert_eq!(s.len(), 2);
        assert!(
            (s[0] - 1.0 / 63.0).abs() < 1e-9,
            "the outlier does not set the scale"
        );
        assert_eq!(&q[..4], &[63, (-25i8) as u8, 0, 16]);
        assert_eq!(s[1], 1.0, "an all-zero row");
        let mut x = [3.0f32, -1.0, 0.5, 0.0];
        layer_norm(&mut x, 4, &[1.0; 4], &[0.0; 4], 1e-5);
        assert!(x.iter().sum::<f32>().abs() < 1e-5);
        let mut p = [1.0f32, 2.0, 3.0];
        softmax(&mut p);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6 && p[2] > p[1]);
    }
}
