//! Ranking a query against the int8 vectors: the one implementation `build-index search` and the
//! page share. The query is folded with the per-dimension scales into i16, so each score is an
//! exact i32 dot product: rankings are bit-identical on every platform, and equal scores keep
//! catalogue order. The scan uses wasm `simd128` (`i32x4.dot_i16x8_s`) when compiled with it.

use crate::Vectors;
use crate::vectors::normalize;

/// One result: catalogue position and approximate cosine similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Position of the item in catalogue order.
    pub index: u32,
    /// Cosine similarity between the query and the item (from the int8 vector).
    pub score: f32,
}

/// How a text query is ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// CLIP and keywords fused (see `vitrine-search`); keywords alone until the encoder arrives.
    #[default]
    Hybrid,
    /// CLIP alone.
    Semantic,
    /// Keywords alone.
    Keyword,
}

impl SearchMode {
    /// Every mode.
    pub const ALL: [SearchMode; 3] = [
        SearchMode::Hybrid,
        SearchMode::Semantic,
        SearchMode::Keyword,
    ];

    /// The name in URLs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SearchMode::Hybrid => "hybrid",
            SearchMode::Semantic => "semantic",
            SearchMode::Keyword => "keyword",
        }
    }

    /// The mode called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// A query ready for the scan: `score = offset + unit * Σ q[d] · code[d]`.
#[derive(Debug, Clone)]
pub struct ScanQuery {
    q: Vec<i16>,
    offset: f32,
    unit: f32,
}

impl ScanQuery {
    /// The cosine estimate of an exact integer score, kept within [-1, 1].
    pub(crate) fn score(&self, raw: i32) -> f32 {
        (self.offset + self.unit * raw as f32).clamp(-1.0, 1.0)
    }
}

impl ScanQuery {
    /// Prepares a query for codes quantized with `mean` and `scale` (normalised here; any vector
    /// of their width is fine).
    pub(crate) fn new(mean: &[f32], scale: &[f32], embedding: &[f32]) -> Self {
        let dim = mean.len();
        assert_eq!(embedding.len(), dim, "query width");
        let x = normalize(embedding);
        let offset: f32 = x.iter().zip(mean).map(|(a, b)| a * b).sum();
        let y: Vec<f32> = x.iter().zip(scale).map(|(a, s)| a * s).collect();
        let max = y.iter().fold(0f32, |m, v| m.max(v.abs()));
        // Keep Σ |q|·127 within i32 for any width: 16383 levels up to dim 1024, fewer beyond.
        let levels = (i32::MAX as usize / (127 * dim.max(1))).min(16383) as f32;
        let unit = if max > 0.0 { max / levels } else { 1.0 };
        let q = y.iter().map(|v| (v / unit).round() as i16).collect();
        ScanQuery { q, offset, unit }
    }

    /// The approximate cosine of this query with one item's codes.
    pub(crate) fn score_codes(&self, codes: &[i8]) -> f32 {
        self.score(dot(&self.q, codes))
    }

    /// The exact integer score behind [`ScanQuery::score_codes`] (same order, no ties lost to
    /// clamping).
    pub(crate) fn raw_codes(&self, codes: &[i8]) -> i32 {
        dot(&self.q, codes)
    }
}

/// The `k` best items of `segments` (first catalogue position, item-major codes of width
/// `dim`), best first; equal scores keep catalogue order. With `filter`, only items where it is
/// `true` are considered. Flat and partitioned searches both rank here.
pub(crate) fn scan<'a>(
    query: &ScanQuery,
    dim: usize,
    segments: impl Iterator<Item = (u32, &'a [i8])>,
    k: usize,
    filter: Option<&[bool]>,
) -> Vec<Hit> {
    let mut keys: Vec<u64> = Vec::new();
    for (first, codes) in segments {
        let base = first as usize;
        match filter {
            None => keys.extend(
                codes
                    .chunks_exact(dim)
                    .enumerate()
                    .map(|(i, c)| key(dot(&query.q, c), base + i)),
            ),
            Some(allowed) => keys.extend(
                codes
                    .chunks_exact(dim)
                    .enumerate()
                    .filter(|(i, _)| allowed.get(base + i).copied().unwrap_or(false))
                    .map(|(i, c)| key(dot(&query.q, c), base + i)),
            ),
        }
    }
    top(&mut keys, k)
        .iter()
        .map(|&key| {
            let (raw, index) = unkey(key);
            Hit {
                index,
                score: query.score(raw),
            }
        })
        .collect()
}

impl Vectors {
    /// Prepares a query embedding (normalised here; any length-`dim` vector is fine).
    pub fn query(&self, embedding: &[f32]) -> ScanQuery {
        ScanQuery::new(&self.mean, &self.scale, embedding)
    }

    /// The `k` most similar items, best first; equal scores keep catalogue order. With `filter`,
    /// only items where it is `true` are considered.
    pub fn search(&self, query: &ScanQuery, k: usize, filter: Option<&[bool]>) -> Vec<Hit> {
        scan(
            query,
            self.dim,
            std::iter::once((0, &self.codes[..])),
            k,
            filter,
        )
    }

    /// "More like this": item `item` first, then the `k - 1` items most similar to its vector.
    pub fn like(&self, item: usize, k: usize, filter: Option<&[bool]>) -> Vec<Hit> {
        let query = self.query(&self.decode(item));
        let self_score = query.score(dot(&query.q, self.codes(item)));
        let mut hits = vec![Hit {
            index: item as u32,
            score: self_score,
        }];
        if k > 1 {
            let rest = self.search(&query, k, filter);
            hits.extend(
                rest.into_iter()
                    .filter(|h| h.index as usize != item)
                    .take(k - 1),
            );
        }
        hits.truncate(k);
        hits
    }
}

/// Sort key: larger is better; for equal scores the earlier item is larger.
fn key(score: i32, index: usize) -> u64 {
    let biased = (i64::from(score) - i64::from(i32::MIN)) as u64; // order-preserving, non-negative
    (biased << 32) | u64::from(u32::MAX - index as u32)
}

fn unkey(key: u64) -> (i32, u32) {
    let score = ((key >> 32) as i64 + i64::from(i32::MIN)) as i32;
    (score, u32::MAX - (key & 0xFFFF_FFFF) as u32)
}

/// The `k` largest keys, largest first.
fn top(keys: &mut [u64], k: usize) -> &[u64] {
    let k = k.min(keys.len());
    if k == 0 {
        return &[];
    }
    if k < keys.len() {
        keys.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
    }
    let head = &mut keys[..k];
    head.sort_unstable_by(|a, b| b.cmp(a));
    head
}

/// Σ q[d] · c[d] in exact integer arithmetic.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[allow(unsafe_code)]
pub(crate) fn dot(q: &[i16], c: &[i8]) -> i32 {
    use core::arch::wasm32::{
        i16x8_load_extend_i8x8, i32x4_add, i32x4_dot_i16x8, i32x4_extract_lane, i32x4_splat, v128,
        v128_load,
    };
    debug_assert_eq!(q.len(), c.len());
    let chunks = q.len() / 8;
    let (mut a0, mut a1) = (i32x4_splat(0), i32x4_splat(0));
    let mut i = 0;
    while i + 2 <= chunks {
        // SAFETY: `i + 2 <= chunks` keeps both 8-lane loads inside `q` and `c`; `v128_load`
        // and `i16x8_load_extend_i8x8` are unaligned loads.
        unsafe {
            let c0 = i16x8_load_extend_i8x8(c.as_ptr().add(8 * i));
            let c1 = i16x8_load_extend_i8x8(c.as_ptr().add(8 * i + 8));
            let q0 = v128_load(q.as_ptr().add(8 * i).cast::<v128>());
            let q1 = v128_load(q.as_ptr().add(8 * i + 8).cast::<v128>());
            a0 = i32x4_add(a0, i32x4_dot_i16x8(c0, q0));
            a1 = i32x4_add(a1, i32x4_dot_i16x8(c1, q1));
        }
        i += 2;
    }
    let acc = i32x4_add(a0, a1);
    let mut sum = i32x4_extract_lane::<0>(acc)
        + i32x4_extract_lane::<1>(acc)
        + i32x4_extract_lane::<2>(acc)
        + i32x4_extract_lane::<3>(acc);
    for d in 8 * i..q.len() {
        sum += i32::from(q[d]) * i32::from(c[d]);
    }
    sum
}

/// Σ q[d] · c[d] in exact integer arithmetic (auto-vectorised on the host).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
pub(crate) fn dot(q: &[i16], c: &[i8]) -> i32 {
    dot_scalar(q, c)
}

/// The portable reference the SIMD path must equal.
#[cfg_attr(
    all(target_arch = "wasm32", target_feature = "simd128"),
    allow(dead_code)
)]
pub(crate) fn dot_scalar(q: &[i16], c: &[i8]) -> i32 {
    let mut sums = [0i32; 16];
    let split = q.len() / 16 * 16;
    let ((qc, qr), (cc, cr)) = (q.split_at(split), c.split_at(split));
    for (qs, cs) in qc.chunks_exact(16).zip(cc.chunks_exact(16)) {
        for l in 0..16 {
            sums[l] += i32::from(qs[l]) * i32::from(cs[l]);
        }
    }
    let tail: i32 = qr
        .iter()
        .zip(cr)
        .map(|(&a, &b)| i32::from(a) * i32::from(b))
        .sum();
    sums.iter().sum::<i32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    // On wasm32 these also run under wasm-bindgen-test (Node), exercising the simd128 scan.
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn catalogue(n: usize, dim: usize) -> Vec<Vec<f32>> {
        let mut s = 12345u64;
        (0..n)
            .map(|_| {
                (0..dim)
                    .map(|_| {
                        s = s
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn keys_order_by_score_then_catalogue_position() {
        let mut keys = vec![
            key(5, 3),
            key(-7, 0),
            key(5, 1),
            key(9, 2),
            key(i32::MIN, 4),
        ];
        let order: Vec<(i32, u32)> = top(&mut keys, 5).iter().map(|&k| unkey(k)).collect();
        assert_eq!(order, [(9, 2), (5, 1), (5, 3), (-7, 0), (i32::MIN, 4)]);
    }

    #[test]
    fn scores_approximate_exact_cosines() {
        let data = catalogue(200, 64);
        let v = Vectors::quantize(&data).unwrap();
        let q = normalize(&data[17]);
        let hits = v.search(&v.query(&data[17]), 200, None);
        for h in hits {
            let exact: f32 = normalize(&data[h.index as usize])
                .iter()
                .zip(&q)
                .map(|(a, b)| a * b)
                .sum();
            assert!(
                (h.score - exact).abs() < 0.02,
                "item {}: {} vs {exact}",
                h.index,
                h.score
            );
        }
    }

    #[test]
    fn equal_vectors_keep_catalogue_order_and_like_puts_the_item_first() {
        let mut data = catalogue(30, 16);
        data[20] = data[5].clone();
        data[9] = data[5].clone();
        let v = Vectors::quantize(&data).unwrap();
        let hits = v.search(&v.query(&data[5]), 3, None);
        let ids: Vec<u32> = hits.iter().map(|h| h.index).collect();
        assert_eq!(ids, [5, 9, 20]);
        let like: Vec<u32> = v.like(20, 3, None).iter().map(|h| h.index).collect();
        assert_eq!(like, [20, 5, 9]);
    }

    #[test]
    fn filters_exclude_items() {
        let data = catalogue(40, 16);
        let v = Vectors::quantize(&data).unwrap();
        let allowed: Vec<bool> = (0..40).map(|i| i % 2 == 1).collect();
        let hits = v.search(&v.query(&data[4]), 10, Some(&allowed));
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|h| h.index % 2 == 1));
    }

    #[test]
    fn scalar_dot_handles_every_tail_length() {
        for n in [0, 1, 7, 8, 15, 16, 17, 33, 512] {
            let q: Vec<i16> = (0..n).map(|i| (i as i16 * 37) % 16383 - 8000).collect();
            let c: Vec<i8> = (0..n).map(|i| ((i * 11) % 255) as u8 as i8).collect();
            let want: i32 = q
                .iter()
                .zip(&c)
                .map(|(&a, &b)| i32::from(a) * i32::from(b))
                .sum();
            assert_eq!(dot_scalar(&q, &c), want, "n={n}");
            assert_eq!(dot(&q, &c), want, "n={n}");
        }
    }
}
