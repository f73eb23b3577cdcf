//! Pillow's bicubic resize of 8-bit RGB, reproduced step for step (`Resample.c`): the support
//! widens by the scale factor when shrinking (antialiasing), coefficients are 22-bit fixed point,
//! and the horizontal pass is rounded to 8 bits before the vertical one. Matching it is what makes
//! our pixels equal `CLIPImageProcessor`'s, which resizes with `PIL.Image.resize(..., BICUBIC)`.

const PRECISION_BITS: u32 = 32 - 8 - 2;
const SUPPORT: f64 = 2.0;

/// Pillow's bicubic kernel with `a = -0.5`.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Fixed-point coefficients of one output pixel: the first input index and the weights.
struct Taps {
    start: usize,
    weights: Vec<i32>,
}

/// `precompute_coeffs` + `normalize_coeffs_8bpc` for resizing `in_size` to `out_size`.
fn coefficients(in_size: usize, out_size: usize) -> Vec<Taps> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = SUPPORT * filter_scale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let inv = 1.0 / filter_scale;
            // Pillow truncates toward zero after adding 0.5 (values are ≥ -support).
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let raw: Vec<f64> = (xmin..xmax)
                .map(|x| bicubic((x as f64 - center + 0.5) * inv))
                .collect();
            let total: f64 = raw.iter().sum();
            let one = f64::from(1u32 << PRECISION_BITS);
            let weights = raw
                .iter()
                .map(|&w| {
                    let w = if total != 0.0 { w / total } else { w };
                    if w < 0.0 {
                        (-0.5 + w * one) as i32
                    } else {
                        (0.5 + w * one) as i32
                    }
                })
                .collect();
            Taps {
                start: xmin,
                weights,
            }
        })
        .collect()
}

fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes interleaved RGB8 `src` (`width` x `height`) to `out_w` x `out_h` as Pillow's
/// `Image.resize((out_w, out_h), Image.BICUBIC)` does.
pub fn resize_rgb8(src: &[u8], width: usize, height: usize, out_w: usize, out_h: usize) -> Vec<u8> {
    assert_eq!(src.len(), width * height * 3, "RGB8 buffer size");
    let horizontal = if out_w != width {
        let taps = coefficients(width, out_w);
        let mut out = vec![0u8; out_w * height * 3];
        for y in 0..height {
            let row = &src[y * width * 3..(y + 1) * width * 3];
            let out_row = &mut out[y * out_w * 3..(y + 1) * out_w * 3];
            for (xx, t) in taps.iter().enumerate() {
                let mut acc = [1i32 << (PRECISION_BITS - 1); 3];
                for (i, &k) in t.weights.iter().enumerate() {
                    let px = &row[(t.start + i) * 3..(t.start + i) * 3 + 3];
                    for c in 0..3 {
                        acc[c] += i32::from(px[c]) * k;
                    }
                }
                for c in 0..3 {
                    out_row[xx * 3 + c] = clip8(acc[c]);
                }
            }
        }
        out
    } else {
        src.to_vec()
    };
    if out_h == height {
        return horizontal;
    }
    let taps = coefficients(height, out_h);
    let stride = out_w * 3;
    let mut out = vec![0u8; out_w * out_h * 3];
    for (yy, t) in taps.iter().enumerate() {
        let out_row = &mut out[yy * stride..(yy + 1) * stride];
        for (x, o) in out_row.iter_mut().enumerate() {
            let mut acc = 1i32 << (PRECISION_BITS - 1);
            for (i, &k) in t.weights.iter().enumerate() {
                acc += i32::from(horizontal[(t.start + i) * stride + x]) * k;
            }
            *o = clip8(acc);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_of_each_output_pixel_sum_to_one() {
        for (i, o) in [(100, 64), (64, 100), (640, 224), (7, 3)] {
            for t in coefficients(i, o) {
                let sum: i64 = t.weights.iter().map(|&w| i64::from(w)).sum();
                assert!(
                    (sum - (1 << PRECISION_BITS)).abs() <= t.weights.len() as i64,
                    "{i}->{o}"
                );
            }
        }
    }

    #[test]
    fn a_flat_image_stays_flat() {
        let src = vec![200u8; 37 * 23 * 3];
        let out = resize_rgb8(&src, 37, 23, 16, 11);
        assert!(out.iter().all(|&v| v == 200));
        let out = resize_rgb8(&src, 37, 23, 80, 50);
        assert!(out.iter().all(|&v| v == 200));
    }
}
