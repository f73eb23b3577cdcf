//! Integer matrix products for the quantized text tower: `acc[t][o] = Σ_i x[t][i] · w[o][i]` over
//! int8 rows, exact in i32, so every build gives the same numbers: the portable loop (native,
//! vectorised by the compiler), wasm `simd128` (`i32x4.dot_i16x8_s` on values widened to 16 bits)
//! and wasm relaxed SIMD (`i32x4.relaxed_dot_i8x16_i7x16_add_s`, 16 products an instruction). The
//! relaxed instruction is defined exactly only when its second operand's top bit is clear
//! (0..=127), so it takes 7-bit activations shifted by +64 and subtracts `64 · Σ w` per output
//! (`row_sums`). Rows are padded to 16 bytes with zeros, so no loop has a tail.

/// The integer kernel a build can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Plain Rust, vectorised by the compiler (native builds, and wasm without SIMD).
    Portable,
    /// wasm `simd128`: every browser with WebAssembly SIMD (Safari included).
    Simd128,
    /// wasm relaxed SIMD: Chrome/Edge ≥ 114, Firefox ≥ 146; used for 7-bit activations.
    Relaxed,
}

impl Kernel {
    /// The best kernel this build has, for activations of `bits` bits.
    pub fn best(bits: u32) -> Self {
        if cfg!(all(target_arch = "wasm32", feature = "relaxed-simd")) && bits <= 7 {
            Self::Relaxed
        } else if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
            Self::Simd128
        } else {
            Self::Portable
        }
    }
}

/// `Σ_i w[o][i]` of each weight row: what the relaxed kernel subtracts after shifting the
/// activations.
pub fn row_sums(w: &[u8], stride: usize) -> Vec<i32> {
    w.chunks_exact(stride)
        .map(|r| r.iter().map(|&b| i32::from(b as i8)).sum())
        .collect()
}

/// `acc[t * outs + o] = Σ_i x[t][i] · w[o][i]` for `rows` activation rows and `outs` weight
/// rows, each `stride` bytes (a multiple of 16) of two's-complement int8; `sums` are the
/// weights' [`row_sums`].
#[allow(clippy::too_many_arguments)]
pub fn dots(
    kernel: Kernel,
    x: &[u8],
    rows: usize,
    w: &[u8],
    sums: &[i32],
    outs: usize,
    stride: usize,
    acc: &mut [i32],
) {
    debug_assert!(stride.is_multiple_of(16));
    debug_assert!(x.len() >= rows * stride && w.len() >= outs * stride && acc.len() >= rows * outs);
    debug_assert!(sums.len() >= outs);
    let _ = sums;
    match kernel {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Kernel::Simd128 => simd128::dots(x, rows, w, outs, stride, acc),
        #[cfg(all(target_arch = "wasm32", feature = "relaxed-simd"))]
        Kernel::Relaxed => relaxed::dots(x, rows, w, sums, outs, stride, acc),
        _ => native(x, rows, w, outs, stride, acc),
    }
}

/// The portable loop, compiled for AVX2 where the CPU has it (native builds: the quality gate
/// runs thousands of encodes).
fn native(x: &[u8], rows: usize, w: &[u8], outs: usize, stride: usize, acc: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2(x: &[u8], rows: usize, w: &[u8], outs: usize, stride: usize, acc: &mut [i32]) {
            portable(x, rows, w, outs, stride, acc)
        }
        // SAFETY: the CPU was just found to have AVX2.
        #[allow(unsafe_code)]
        unsafe {
            return avx2(x, rows, w, outs, stride, acc);
        }
    }
    portable(x, rows, w, outs, stride, acc)
}

/// The reference: every build's kernel must equal it exactly. Integer sums are exact in any
/// order, so the sixteen partial sums (which let the compiler vectorise) change nothing.
#[inline(always)]
fn portable(x: &[u8], rows: usize, w: &[u8], outs: usize, stride: usize, acc: &mut [i32]) {
    for o in 0..outs {
        let wr = &w[o * stride..(o + 1) * stride];
        for t in 0..rows {
            let xr = &x[t * stride..(t + 1) * stride];
            let mut part = [0i32; 16];
            for (cx, cw) in xr.chunks_exact(16).zip(wr.chunks_exact(16)) {
                for k in 0..16 {
                    part[k] += i32::from(cx[k] as i8) * i32::from(cw[k] as i8);
                }
            }
            acc[t * outs + o] = part.iter().sum();
        }
    }
}

/// Output rows a tile takes at once, and activation rows.
#[cfg(target_arch = "wasm32")]
const TILE_O: usize = 4;
#[cfg(target_arch = "wasm32")]
const TILE_T: usize = 2;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[allow(unsafe_code)]
mod simd128 {
    use core::arch::wasm32::*;

    use super::{TILE_O, TILE_T};

    /// Sum of the four lanes.
    #[inline(always)]
    fn hsum(v: v128) -> i32 {
        i32x4_extract_lane::<0>(v)
            + i32x4_extract_lane::<1>(v)
            + i32x4_extract_lane::<2>(v)
            + i32x4_extract_lane::<3>(v)
    }

    /// Eight int8 at `p`, widened to i16 lanes.
    #[inline(always)]
    fn load8(bytes: &[u8], at: usize) -> v128 {
        debug_assert!(at + 8 <= bytes.len());
        // SAFETY: `at + 8 <= bytes.len()` (rows are `stride` long, a multiple of 16, and `at`
        // steps by 8 within a row); `v128_load64` style loads need no alignment in wasm.
        unsafe { i16x8_load_extend_i8x8(bytes.as_ptr().add(at) as *const i8) }
    }

    pub(super) fn dots(
        x: &[u8],
        rows: usize,
        w: &[u8],
        outs: usize,
        stride: usize,
        acc: &mut [i32],
    ) {
        let mut o = 0;
        while o < outs {
            let no = TILE_O.min(outs - o);
            let mut t = 0;
            while t < rows {
                let nt = TILE_T.min(rows - t);
                if no == TILE_O && nt == TILE_T {
                    let mut a = [[i32x4_splat(0); TILE_O]; TILE_T];
                    let mut i = 0;
                    while i < stride {
                        let ws = [
                            load8(w, o * stride + i),
                            load8(w, (o + 1) * stride + i),
                            load8(w, (o + 2) * stride + i),
                            load8(w, (o + 3) * stride + i),
                        ];
                        for (tt, row) in a.iter_mut().enumerate() {
                            let xv = load8(x, (t + tt) * stride + i);
                            for (k, acc) in row.iter_mut().enumerate() {
                                *acc = i32x4_add(*acc, i32x4_dot_i16x8(ws[k], xv));
                            }
                        }
                        i += 8;
                    }
                    for (tt, row) in a.iter().enumerate() {
                        for (k, v) in row.iter().enumerate() {
                            acc[(t + tt) * outs + o + k] = hsum(*v);
                        }
                    }
                } else {
                    for tt in t..t + nt {
                        for oo in o..o + no {
                            let mut v = i32x4_splat(0);
                            let mut i = 0;
                            while i < stride {
                                v = i32x4_add(
                                    v,
                                    i32x4_dot_i16x8(
                                        load8(w, oo * stride + i),
                                        load8(x, tt * stride + i),
                                    ),
                                );
                                i += 8;
                            }
                            acc[tt * outs + oo] = hsum(v);
                        }
                    }
                }
                t += nt;
            }
            o += no;
        }
    }
}

#[cfg(all(target_arch = "wasm32", feature = "relaxed-simd"))]
#[allow(unsafe_code)]
mod relaxed {
    use core::arch::wasm32::*;

    use super::{TILE_O, TILE_T};

    #[inline(always)]
    fn hsum(v: v128) -> i32 {
        i32x4_extract_lane::<0>(v)
            + i32x4_extract_lane::<1>(v)
            + i32x4_extract_lane::<2>(v)
            + i32x4_extract_lane::<3>(v)
    }

    #[inline(always)]
    fn load16(bytes: &[u8], at: usize) -> v128 {
        debug_assert!(at + 16 <= bytes.len());
        // SAFETY: `at + 16 <= bytes.len()` (rows are a multiple of 16 long and `at` steps by 16
        // within a row); wasm loads need no alignment.
        unsafe { v128_load(bytes.as_ptr().add(at) as *const v128) }
    }

    /// `acc + dot(w, x)` where `x` holds values in 0..=127, so the relaxed instruction is exact.
    #[inline]
    #[target_feature(enable = "relaxed-simd")]
    fn dot(w: v128, x: v128, acc: v128) -> v128 {
        i32x4_relaxed_dot_i8x16_i7x16_add(w, x, acc)
    }

    pub(super) fn dots(
        x: &[u8],
        rows: usize,
        w: &[u8],
        sums: &[i32],
        outs: usize,
        stride: usize,
        acc: &mut [i32],
    ) {
        // 7-bit activations (-63..=63) shifted into 1..=127, the range where the relaxed
        // instruction is exact on every engine; padding becomes 64 against zero weights.
        let shifted: Vec<u8> = x[..rows * stride]
            .iter()
            .map(|b| b.wrapping_add(64))
            .collect();
        // Safe to call: a wasm module using features the browser lacks does not even compile,
        // and the page loads this build only where `WebAssembly.validate` accepts it.
        dots_relaxed(&shifted, rows, w, outs, stride, acc);
        for row in acc[..rows * outs].chunks_exact_mut(outs) {
            for (a, s) in row.iter_mut().zip(sums) {
                *a -= 64 * s;
            }
        }
    }

    #[target_feature(enable = "relaxed-simd")]
    fn dots_relaxed(x: &[u8], rows: usize, w: &[u8], outs: usize, stride: usize, acc: &mut [i32]) {
        let mut o = 0;
        while o < outs {
            let no = TILE_O.min(outs - o);
            let mut t = 0;
            while t < rows {
                let nt = TILE_T.min(rows - t);
                if no == TILE_O && nt == TILE_T {
                    let mut a = [[i32x4_splat(0); TILE_O]; TILE_T];
                    let mut i = 0;
                    while i < stride {
                        let ws = [
                            load16(w, o * stride + i),
                            load16(w, (o + 1) * stride + i),
                            load16(w, (o + 2) * stride + i),
                            load16(w, (o + 3) * stride + i),
                        ];
                        for (tt, row) in a.iter_mut().enumerate() {
                            let xv = load16(x, (t + tt) * stride + i);
                            for (k, acc) in row.iter_mut().enumerate() {
                                *acc = dot(ws[k], xv, *acc);
                            }
                        }
                        i += 16;
                    }
                    for (tt, row) in a.iter().enumerate() {
                        for (k, v) in row.iter().enumerate() {
                            acc[(t + tt) * outs + o + k] = hsum(*v);
                        }
                    }
                } else {
                    for tt in t..t + nt {
                        for oo in o..o + no {
                            let mut v = i32x4_splat(0);
                            let mut i = 0;
                            while i < stride {
                                v = dot(load16(w, oo * stride + i), load16(x, tt * stride + i), v);
                                i += 16;
                            }
                            acc[tt * outs + oo] = hsum(v);
                        }
                    }
                }
                t += nt;
            }
            o += no;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random int8 rows, the activations limited to `bits` bits.
    fn rows(n: usize, stride: usize, cols: usize, bits: u32, seed: u64) -> Vec<u8> {
        let max = (1i32 << (bits - 1)) - 1;
        let mut s = seed | 1;
        let mut out = vec![0u8; n * stride];
        for r in 0..n {
            for c in 0..cols {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let v = (s % (2 * max as u64 + 1)) as i32 - max;
                out[r * stride + c] = v as i8 as u8;
            }
        }
        out
    }

    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn every_kernel_of_this_build_equals_the_portable_reference() {
        for (rows_n, outs, cols) in [
            (12usize, 36usize, 40usize),
            (1, 5, 16),
            (7, 9, 2048),
            (3, 4, 512),
        ] {
            let stride = cols.div_ceil(16) * 16;
            for bits in [7, 8] {
                let x = rows(rows_n, stride, cols, bits, 1);
                let w = rows(outs, stride, cols, 8, 2);
                let mut want = vec![0; rows_n * outs];
                portable(&x, rows_n, &w, outs, stride, &mut want);
                let kernel = Kernel::best(bits);
                let mut got = vec![0; rows_n * outs];
                let sums = row_sums(&w, stride);
                dots(kernel, &x, rows_n, &w, &sums, outs, stride, &mut got);
                assert_eq!(got, want, "{kernel:?}, {rows_n}x{outs}x{cols}, {bits} bits");
            }
        }
    }
}
