//! The synthetic CLIP-like catalogue: a seeded hierarchical mixture (coarse topics, ~20
//! sub-topics each) whose centres have a power-law spectrum mixed by a random rotation, a shared
//! image direction, isotropic item noise, and text queries offset by a fixed modality gap.

use vitrine_index::partition::dot;

/// Width of the vectors (CLIP ViT-B/32).
pub(crate) const DIM: usize = 512;
/// Squared norms of the parts of an item before normalising (they add up to 1): the shared
/// direction (random pairs then have cosine ≈ 0.5), the coarse topic, the sub-topic, the noise
/// (cosine to the sub-topic centre ≈ √(1 − NOISE2) ≈ 0.85).
const SHARED2: f32 = 0.5;
const COARSE2: f32 = 0.19;
const SUB2: f32 = 0.03;
const NOISE2: f32 = 0.28;
/// A text query: the sub-topic's direction, the modality gap and noise (squared norms, sum 1).
const TEXT_SIGNAL2: f32 = 0.08;
const GAP2: f32 = 0.62;
const TEXT_NOISE2: f32 = 0.3;
/// Items per coarse topic, and sub-topics per coarse topic (uniform in 10..=30).
const PER_COARSE: usize = 2000;

/// The index's splitmix64 with Box–Muller normals.
pub(crate) struct Rng(vitrine_index::partition::Rng);

impl Rng {
    /// A generator for stream `stream` of `seed`.
    pub(crate) fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(vitrine_index::partition::Rng::new(
            seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03),
        ));
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Uniform in (0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0.below(n)
    }
    /// Fills `out` with standard normals times `sd`.
    fn normals(&mut self, out: &mut [f32], sd: f32) {
        for pair in out.chunks_mut(2) {
            let r = (-2.0 * self.unit().ln()).sqrt();
            let t = std::f64::consts::TAU * self.unit();
            pair[0] = (r * t.cos()) as f32 * sd;
            if let Some(x) = pair.get_mut(1) {
                *x = (r * t.sin()) as f32 * sd;
            }
        }
    }
    fn normal(&mut self) -> f32 {
        let mut x = [0f32];
        self.normals(&mut x, 1.0);
        x[0]
    }
}

fn normalize(v: &mut [f32]) {
    let n = dot(v, v).sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

/// The mixture: sub-topic centres with their popularity, and the modality gap.
pub(crate) struct Mixture {
    seed: u64,
    /// Sub-topic centres (shared + coarse + sub, not normalised), `DIM` each.
    centres: Vec<f32>,
    /// Cumulative popularity of the sub-topics, ending at 1.
    cumulative: Vec<f64>,
    /// Unit modality-gap direction (orthogonal to the shared direction).
    gap: Vec<f32>,
}

impl Mixture {
    /// The mixture for a catalogue of `n` items (≈ `n / 2000` coarse topics).
    pub(crate) fn new(n: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed, u64::MAX);
        // A random rotation: Gram–Schmidt of a Gaussian matrix (rows are the new axes).
        let mut basis = vec![0f32; DIM * DIM];
        for i in 0..DIM {
            let (done, row) = basis.split_at_mut(i * DIM);
            let row = &mut row[..DIM];
            rng.normals(row, 1.0);
            for prev in done.chunks_exact(DIM) {
                let p = dot(row, prev);
                row.iter_mut().zip(prev).for_each(|(x, q)| *x -= p * q);
            }
            normalize(row);
        }
        // Power-law variances λ_i ∝ 1/(i + 10), summing to 1.
        let lambda: Vec<f32> = (0..DIM).map(|i| 1.0 / (i as f32 + 10.0)).collect();
        let total: f32 = lambda.iter().sum();
        let aniso = |rng: &mut Rng, var: f32| -> Vec<f32> {
            let mut v = vec![0f32; DIM];
            for (l, axis) in lambda.iter().zip(basis.chunks_exact(DIM)) {
                let z = rng.normal() * (l / total * var).sqrt();
                v.iter_mut().zip(axis).for_each(|(x, a)| *x += z * a);
            }
            v
        };
        let mut shared = vec![0f32; DIM];
        rng.normals(&mut shared, 1.0);
        normalize(&mut shared);
        let mut gap = vec![0f32; DIM];
        rng.normals(&mut gap, 1.0);
        let along = dot(&gap, &shared);
        gap.iter_mut()
            .zip(&shared)
            .for_each(|(g, s)| *g -= along * s);
        normalize(&mut gap);
        let (mut centres, mut weights) = (Vec::new(), Vec::new());
        for _ in 0..(n as f64 / PER_COARSE as f64).round().max(1.0) as usize {
            let coarse = aniso(&mut rng, COARSE2);
            let popularity = (0.5 * rng.normal()).exp();
            let subs = 10 + rng.below(21);
            for _ in 0..subs {
                let sub = aniso(&mut rng, SUB2);
                centres.extend((0..DIM).map(|d| SHARED2.sqrt() * shared[d] + coarse[d] + sub[d]));
                weights.push(f64::from(popularity) * f64::from((0.5 * rng.normal()).exp()));
            }
        }
        let sum: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                acc += w / sum;
                acc
            })
            .collect();
        Self {
            seed,
            centres,
            cumulative,
            gap,
        }
    }

    /// Number of sub-topics.
    pub(crate) fn subs(&self) -> usize {
        self.cumulative.len()
    }

    fn pick(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cumulative
            .partition_point(|&c| c < u)
            .min(self.subs() - 1)
    }

    /// Sub-topic `j`'s centre, unit length.
    pub(crate) fn centre(&self, j: usize) -> Vec<f32> {
        let mut c = self.centres[j * DIM..(j + 1) * DIM].to_vec();
        normalize(&mut c);
        c
    }

    /// Item number `i` (any `u64`: numbers past the catalogue give fresh items) into `out`;
    /// returns its sub-topic.
    pub(crate) fn item(&self, i: u64, out: &mut [f32]) -> u32 {
        let mut rng = Rng::new(self.seed, i);
        let j = self.pick(&mut rng);
        self.around(j, &mut rng, out);
        j as u32
    }

    /// A fresh item of sub-topic `j` (number `i`: any `u64`) into `out`.
    pub(crate) fn item_of(&self, j: usize, i: u64, out: &mut [f32]) {
        self.around(j, &mut Rng::new(self.seed ^ 0x5B70, i), out);
    }

    fn around(&self, j: usize, rng: &mut Rng, out: &mut [f32]) {
        rng.normals(out, (NOISE2 / DIM as f32).sqrt());
        out.iter_mut()
            .zip(&self.centres[j * DIM..(j + 1) * DIM])
            .for_each(|(x, c)| *x += c);
        normalize(out);
    }

    /// Items `0..n`, unit length, with their sub-topics (on every core; same result).
    pub(crate) fn items(&self, n: usize) -> (Vec<f32>, Vec<u32>) {
        let mut unit = vec![0f32; n * DIM];
        let mut labels = vec![0u32; n];
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        let per = n.div_ceil(threads).max(1);
        std::thread::scope(|s| {
            for (part, (rows, labels)) in unit
                .chunks_mut(per * DIM)
                .zip(labels.chunks_mut(per))
                .enumerate()
            {
                s.spawn(move || {
                    for (k, (row, label)) in rows.chunks_exact_mut(DIM).zip(labels).enumerate() {
                        *label = self.item((part * per + k) as u64, row);
                    }
                });
            }
        });
        (unit, labels)
    }

    /// Text query `q`: a sub-topic's direction plus the modality gap plus noise, unit length.
    pub(crate) fn text(&self, q: u64) -> Vec<f32> {
        let mut rng = Rng::new(self.seed ^ 0x7E47, q);
        let centre = self.centre(self.pick(&mut rng));
        let mut t = vec![0f32; DIM];
        rng.normals(&mut t, (TEXT_NOISE2 / DIM as f32).sqrt());
        for d in 0..DIM {
            t[d] += TEXT_SIGNAL2.sqrt() * centre[d] + GAP2.sqrt() * self.gap[d];
        }
        normalize(&mut t);
        t
    }
}
