//! k-means for the partitioned index under a query-aware [`Metric`]: seeded and single-order, so
//! equal inputs give byte-identical lists on any machine. Centroids are trained on an evenly
//! spaced sample (at most [`SAMPLE_PER_LIST`] points per list) and every item is then assigned to
//! its nearest centroid; the probes queries need are measured on the result ([`crate::probing`]).

use crate::files::FileRef;
use crate::files::name_hash_of;
use crate::lists::{Root, list_bytes};
use crate::vectors::{Quantizer, Vectors};

/// Catalogues below this many items stay one list (full offline search, nothing to probe).
pub const FLAT_BELOW: usize = 5000;
/// Training points per list: more barely moves the centroids and costs time at a million items.
pub const SAMPLE_PER_LIST: usize = 32;
/// Lloyd iterations.
pub const ITERATIONS: usize = 10;
/// The seed build-index trains with: fixed, so equal inputs give equal lists.
pub const SEED: u64 = 0x5EED_0F57_A700;
/// Share of the [`Metric`] given to the text queries' mean direction. Measured by the partition
/// benchmark at 100k items: 0.25 cuts what a text query scans 7× and doubles what an image query
/// scans (0.1: 5× and 1.2×).
pub const TEXT_WEIGHT: f32 = 0.25;

/// How k-means measures an item `x`'s distance to a centroid `c`: half the squared Euclidean
/// distance plus `lambda` times the squared difference along `toward`, the mean text query.
/// Text queries sit apart from the images (CLIP's modality gap), so their scores weigh an item's
/// position along that direction far more than any other; lists narrow along it keep a text
/// query's best items in few lists. `lambda` 0 is plain k-means.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The mean text query vector (not unit length).
    pub toward: Vec<f32>,
    /// Weight of the squared difference along `toward`.
    pub lambda: f32,
}

impl Metric {
    /// Plain k-means (no direction weighed more).
    pub fn plain(dim: usize) -> Self {
        Self {
            toward: vec![0.0; dim],
            lambda: 0.0,
        }
    }

    /// The metric for text queries `texts` (vectors of width `dim`; others are skipped), giving
    /// [`TEXT_WEIGHT`] to their mean: `(1 − w)/dim · |x − c|² + w · ((x − c)·μ)²`, rescaled.
    pub fn for_texts(texts: &[Vec<f32>], dim: usize) -> Self {
        let rows: Vec<&Vec<f32>> = texts.iter().filter(|t| t.len() == dim).collect();
        if rows.is_empty() || dim == 0 {
            return Self::plain(dim);
        }
        let mut toward = vec![0f64; dim];
        for t in &rows {
            toward
                .iter_mut()
                .zip(*t)
                .for_each(|(m, &x)| *m += f64::from(x));
        }
        let toward = toward
            .iter()
            .map(|m| (m / rows.len() as f64) as f32)
            .collect();
        Self {
            toward,
            lambda: TEXT_WEIGHT * dim as f32 / (2.0 * (1.0 - TEXT_WEIGHT)),
        }
    }
}

/// The list count for `n` items: one below [`FLAT_BELOW`], else `√(8n)`, which balances the root
/// (one centroid per list) against the lists a query fetches (≈ 900 lists at 100k items).
pub fn default_lists(n: usize) -> usize {
    if n < FLAT_BELOW {
        1
    } else {
        ((8.0 * n as f64).sqrt().round() as usize).clamp(1, n)
    }
}

/// Σ a·b with eight accumulators, so the compiler vectorises it.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let split = a.len() / 8 * 8;
    for (x, y) in a[..split].chunks_exact(8).zip(b[..split].chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = a[split..].iter().zip(&b[split..]).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// splitmix64: a tiny seeded generator, the same on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The nearest centroid under `metric` of every row of `points` (`dim` floats each; ties go to
/// the lower list), with the row's cosine to it. Rows are split over threads natively; the
/// result does not depend on it.
pub fn assign(points: &[f32], dim: usize, centroids: &[f32], metric: &Metric) -> Vec<(u32, f32)> {
    // Maximising x·c − |c|²/2 − λ(x·μ − c·μ)² minimises the metric (|x|² is the same for all).
    let prepared: Vec<(f32, f32, f32)> = centroids
        .chunks_exact(dim)
        .map(|c| {
            let n2 = dot(c, c);
            (
                n2 / 2.0,
                dot(c, &metric.toward),
                n2.sqrt().max(f32::MIN_POSITIVE),
            )
        })
        .collect();
    let nearest = |p: &[f32]| {
        let along = dot(p, &metric.toward);
        let mut best = (0u32, f32::NEG_INFINITY, 0f32);
        for (j, (c, &(half, c_along, _))) in centroids.chunks_exact(dim).zip(&prepared).enumerate()
        {
            let d = dot(p, c);
            let gap = along - c_along;
            let s = d - half - metric.lambda * gap * gap;
            if s > best.1 {
                best = (j as u32, s, d);
            }
        }
        let norm = prepared.get(best.0 as usize).map_or(1.0, |p| p.2);
        (best.0, best.2 / norm)
    };
    let rows = points.len() / dim;
    let threads = threads().min(rows.max(1));
    if threads <= 1 {
        return points.chunks_exact(dim).map(nearest).collect();
    }
    let per = rows.div_ceil(threads);
    let mut out = Vec::with_capacity(rows);
    std::thread::scope(|s| {
        let handles: Vec<_> = points
            .chunks(per * dim)
            .map(|part| s.spawn(move || part.chunks_exact(dim).map(nearest).collect::<Vec<_>>()))
            .collect();
        for h in handles {
            out.extend(h.join().expect("assignment threads do not panic"));
        }
    });
    out
}

#[cfg(not(target_arch = "wasm32"))]
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(target_arch = "wasm32")]
fn threads() -> usize {
    1
}

fn normalize_in_place(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Trains `lists` centroids (the means of their points) on unit vectors `points` (`dim` floats
/// each) under `metric`: a seeded random pick of sample points, then [`ITERATIONS`] Lloyd steps.
/// An emptied list takes the sample point farthest from its centroid, so no list stays empty
/// while points remain.
pub fn train(points: &[f32], dim: usize, lists: usize, seed: u64, metric: &Metric) -> Vec<f32> {
    let n = points.len() / dim;
    let lists = lists.clamp(1, n.max(1));
    let step = n.div_ceil(SAMPLE_PER_LIST * lists).max(1);
    let sample: Vec<f32> = points
        .chunks_exact(dim)
        .step_by(step)
        .flatten()
        .copied()
        .collect();
    let m = sample.len() / dim;
    // Initial centroids: `lists` distinct sample points (partial Fisher–Yates).
    let mut rng = Rng::new(seed);
    let mut pick: Vec<usize> = (0..m).collect();
    for i in 0..lists.min(m) {
        let j = i + rng.below(m - i);
        pick.swap(i, j);
    }
    let mut centroids: Vec<f32> = pick[..lists.min(m)]
        .iter()
        .flat_map(|&i| sample[i * dim..(i + 1) * dim].iter().copied())
        .collect();
    for _ in 0..ITERATIONS {
        let assigned = assign(&sample, dim, &centroids, metric);
        let mut sums = vec![0f64; lists * dim];
        let mut members = vec![0usize; lists];
        for (p, &(j, _)) in sample.chunks_exact(dim).zip(&assigned) {
            members[j as usize] += 1;
            let row = &mut sums[j as usize * dim..(j as usize + 1) * dim];
            row.iter_mut().zip(p).for_each(|(s, &x)| *s += f64::from(x));
        }
        // Farthest points first, for lists left empty.
        let mut far: Vec<usize> = (0..m).collect();
        far.sort_by(|&a, &b| assigned[a].1.total_cmp(&assigned[b].1).then(a.cmp(&b)));
        let mut far = far.into_iter();
        for j in 0..lists {
            let row = &mut centroids[j * dim..(j + 1) * dim];
            if members[j] == 0 {
                if let Some(p) = far.next() {
                    row.copy_from_slice(&sample[p * dim..(p + 1) * dim]);
                }
                continue;
            }
            let n = members[j] as f64;
            for (c, s) in row.iter_mut().zip(&sums[j * dim..(j + 1) * dim]) {
                *c = (*s / n) as f32;
            }
        }
    }
    centroids
}

/// A catalogue's vectors as lists, ready to write.
#[derive(Debug, Clone)]
pub struct Partitioned {
    /// The root (probe count still to be measured: every list until then).
    pub root: Root,
    /// Each list's file, in list order.
    pub files: Vec<Vec<u8>>,
    /// Each group's file (the lists' centroids), in group order.
    pub groups: Vec<Vec<u8>>,
    /// For each new item number, the position of the item in the input.
    pub order: Vec<u32>,
}

impl Partitioned {
    /// Every file beside the root with its bytes, in [`Root::file`] order (lists, then groups).
    pub fn site_files(&self) -> Vec<(FileRef, &[u8])> {
        let bytes = self.files.iter().chain(&self.groups);
        (0..self.root.file_count())
            .map(|j| self.root.file(j))
            .zip(bytes.map(Vec::as_slice))
            .collect()
    }
}

/// Centroids as a root and its groups keep them: unit directions as int8 codes, their lengths, and the
/// [`Metric`] that assigns items to them (so a rebuild assigns exactly as the first build).
#[derive(Debug, Clone, PartialEq)]
pub struct Centroids {
    /// Directions, ranked against a query to pick the lists it probes.
    pub unit: Vectors,
    /// Each centroid's length (the mean of unit vectors is shorter than 1).
    pub norms: Vec<f32>,
    /// How items are assigned.
    pub metric: Metric,
}

impl Centroids {
    /// Trained means (`dim` floats each) under `metric`, as stored.
    pub fn from_means(means: &[f32], dim: usize, metric: Metric) -> crate::Result<Self> {
        let rows: Vec<Vec<f32>> = means.chunks(dim).map(<[f32]>::to_vec).collect();
        Ok(Self {
            norms: rows.iter().map(|r| dot(r, r).sqrt()).collect(),
            unit: Vectors::quantize(&rows)?,
            metric,
        })
    }

    /// Number of centroids.
    pub fn len(&self) -> usize {
        self.unit.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.unit.is_empty()
    }

    /// The first `n` centroids: a root's base lists' (its patch lists follow them).
    pub fn first(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.unit.codes.truncate(n * self.unit.dim());
        self.norms.truncate(n);
        self
    }

    /// The centroids items are assigned to: each direction decoded from its codes, at its length.
    pub fn decoded(&self) -> Vec<f32> {
        (0..self.len())
            .flat_map(|j| {
                let mut c = self.unit.decode(j);
                normalize_in_place(&mut c);
                let norm = self.norms.get(j).copied().unwrap_or(1.0);
                c.iter_mut().for_each(|x| *x *= norm);
                c
            })
            .collect()
    }
}

/// Mean cosine of unit vectors (`dim` floats each) to their nearest of `centroids`: how well the
/// lists fit the items (a rebuild retrains when it drops).
pub fn fit(unit: &[f32], dim: usize, centroids: &Centroids) -> f32 {
    mean_fit(&assign(unit, dim, &centroids.decoded(), &centroids.metric))
}

fn mean_fit(assigned: &[(u32, f32)]) -> f32 {
    if assigned.is_empty() {
        1.0
    } else {
        (assigned.iter().map(|a| f64::from(a.1)).sum::<f64>() / assigned.len() as f64) as f32
    }
}

/// Unit vectors (`dim` floats each, any order) into lists: each item goes to the nearest of
/// `centroids` (as decoded from the root's codes, so a rebuild that keeps the root's centroids
/// assigns unchanged items to the same lists), items are renumbered list by list keeping input
/// order within a list, and coded with `quantizer`; the lists are grouped by their centroids.
pub fn partition(
    unit: &[f32],
    dim: usize,
    centroids: Centroids,
    quantizer: Quantizer,
) -> crate::Result<Partitioned> {
    let lists = centroids.len();
    let assigned = assign(unit, dim, &centroids.decoded(), &centroids.metric);
    let n = assigned.len();
    let fit = mean_fit(&assigned);
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by_key(|&i| assigned[i as usize].0);
    let mut sizes = vec![0u32; lists];
    assigned.iter().for_each(|a| sizes[a.0 as usize] += 1);
    let mut files = Vec::with_capacity(lists);
    let mut at = 0usize;
    for &size in &sizes {
        let members = &order[at..at + size as usize];
        let rows: Vec<f32> = members
            .iter()
            .flat_map(|&i| {
                unit[i as usize * dim..(i as usize + 1) * dim]
                    .iter()
                    .copied()
            })
            .collect();
        files.push(list_bytes(dim, &quantizer.encode(&rows)));
        at += size as usize;
    }
    let hashes = files.iter().map(|f| name_hash_of(f)).collect();
    let (root, groups) = Root::new(quantizer, &centroids, sizes, hashes, fit)?;
    Ok(Partitioned {
        root,
        files,
        groups,
        order,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three tight groups on three axes, 40 points each.
    fn groups() -> Vec<f32> {
        let mut rng = Rng::new(7);
        let mut out = Vec::new();
        for g in 0..3 {
            for _ in 0..40 {
                let mut v: Vec<f32> = (0..6)
                    .map(|d| {
                        let noise = (rng.next_u64() % 1000) as f32 / 1000.0 - 0.5;
                        f32::from(d == g * 2) * 4.0 + 0.2 * noise
                    })
                    .collect();
                normalize_in_place(&mut v);
                out.extend(v);
            }
        }
        out
    }

    #[test]
    fn clusters_are_found_and_training_is_deterministic() {
        let points = groups();
        let plain = Metric::plain(6);
        let c = train(&points, 6, 3, 42, &plain);
        assert_eq!(c, train(&points, 6, 3, 42, &plain));
        let lists: Vec<u32> = assign(&points, 6, &c, &plain).iter().map(|a| a.0).collect();
        for g in 0..3 {
            let first = lists[g * 40];
            assert!(
                lists[g * 40..(g + 1) * 40].iter().all(|&l| l == first),
                "group {g} split: {lists:?}"
            );
        }
        let mut distinct = vec![lists[0], lists[40], lists[80]];
        distinct.dedup();
        assert_eq!(distinct.len(), 3);
    }

    #[test]
    fn small_catalogues_stay_flat_and_large_ones_grow_with_the_square_root() {
        assert_eq!(default_lists(10), 1);
        assert_eq!(default_lists(FLAT_BELOW - 1), 1);
        assert_eq!(default_lists(100_000), 894);
        assert_eq!(default_lists(1_000_000), 2828);
    }

    #[test]
    fn more_lists_than_points_is_clamped_and_ties_go_to_the_lower_list() {
        let points = [1.0, 0.0, 0.0, 1.0];
        let plain = Metric::plain(2);
        assert_eq!(train(&points, 2, 5, 1, &plain).len(), 4);
        let tie = assign(&[0.6, 0.8], 2, &[0.6, 0.8, 0.6, 0.8], &plain);
        assert_eq!(tie[0].0, 0);
    }
}
