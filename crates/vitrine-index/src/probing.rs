//! How many groups and lists a query must probe, measured at build time on the built lists:
//! recall@k of partitioned search against scanning every list, for sample image queries ("More
//! like this") and text queries. The group and list counts come from the [`ProbeCurve`]; then,
//! within those groups, [`Sample::tune`] picks the list count and score gap fetching the fewest
//! bytes per query ([`Probes`]).

use crate::lists::{ListIndex, Probes, QueryKind};

/// Gaps tried by [`Sample::tune`] (cosine): 0.0025 apart up to 0.2, then [`Probes::NO_GAP`].
const GAP_STEP: f32 = 0.0025;
const GAP_STEPS: usize = 80;

/// Sample queries with the lists holding their exact top k, which recall is measured against.
#[derive(Debug, Clone)]
pub struct Sample {
    image: Vec<Query>,
    text: Vec<Query>,
}

#[derive(Debug, Clone)]
struct Query {
    vector: Vec<f32>,
    /// The list of each of the exact top k (the query's own item left out).
    wanted: Vec<usize>,
}

impl Query {
    /// Recall once the lists `probed` (in order) are scanned, after each of them.
    fn recall_after(&self, probed: impl Iterator<Item = usize>, lists: usize) -> Vec<f64> {
        let mut counts = vec![0usize; lists];
        self.wanted.iter().for_each(|&j| counts[j] += 1);
        let mut acc = 0usize;
        probed
            .map(|j| {
                acc += counts[j];
                if self.wanted.is_empty() {
                    1.0
                } else {
                    acc as f64 / self.wanted.len() as f64
                }
            })
            .collect()
    }
}

impl Sample {
    /// The sample of a fully loaded index: `images` are items whose vectors are queries (left
    /// out of their own results), `texts` are query vectors; `k` results are compared.
    pub fn new(index: &ListIndex, images: &[u32], texts: &[Vec<f32>], k: usize) -> Self {
        let root = index.root();
        let all: Vec<usize> = (0..root.lists()).collect();
        let query = |vector: Vec<f32>, skip: Option<u32>| {
            let wanted = index
                .scan(&vector, &all, k + 1, None)
                .unwrap_or_default()
                .into_iter()
                .filter(|h| Some(h.index) != skip)
                .take(k)
                .map(|h| root.base_of(root.list_of(h.index)))
                .collect();
            Query { vector, wanted }
        };
        let image = images
            .iter()
            .filter_map(|&i| index.decode(i).ok().map(|v| query(v, Some(i))))
            .collect();
        let text = texts.iter().map(|t| query(t.clone(), None)).collect();
        Self { image, text }
    }

    fn of(&self, kind: QueryKind) -> &[Query] {
        match kind {
            QueryKind::Image => &self.image,
            QueryKind::Text => &self.text,
        }
    }

    /// Mean recall and bytes fetched by group and list count (no gap), for both kinds.
    pub fn curve(&self, index: &ListIndex) -> ProbeCurve {
        let root = index.root();
        let (lists, groups) = (root.lists(), root.groups());
        let all_groups: Vec<usize> = (0..groups).collect();
        // A list's bytes with its patches'; a group's file.
        let size = |j: usize| match j.checked_sub(lists) {
            None => root.probe_bytes(j) as f64,
            Some(_) => root.file(j).size as f64,
        };
        // Summed as queries go: a million-item index has 53 × 2,828 points per query.
        let mean = |queries: &[Query]| -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
            let mut recall = vec![vec![0f64; lists]; groups];
            let mut bytes = vec![vec![0f64; lists]; groups];
            for q in queries {
                let mut group_rank = vec![usize::MAX; groups];
                let ranked_groups = root.ranked_groups(&q.vector);
                ranked_groups
                    .iter()
                    .enumerate()
                    .for_each(|(r, &g)| group_rank[g] = r);
                let ranked = index
                    .ranked_lists(&q.vector, &all_groups)
                    .unwrap_or_default();
                let mut group_bytes = 0.0;
                for t in 0..groups {
                    if let Some(&g) = ranked_groups.get(t) {
                        group_bytes += size(lists + g);
                    }
                    // The lists of the nearest t + 1 groups in rank order: recall after each.
                    let within: Vec<usize> = ranked
                        .iter()
                        .copied()
                        .filter(|&j| group_rank[root.group_of(j)] <= t)
                        .collect();
                    let row = q.recall_after(within.iter().copied(), lists);
                    let none = f64::from(u8::from(q.wanted.is_empty()));
                    let last = row.last().copied().unwrap_or(none);
                    let mut fetched = group_bytes;
                    for p in 0..lists {
                        if let Some(&j) = within.get(p) {
                            fetched += size(j);
                        }
                        recall[t][p] += row.get(p).copied().unwrap_or(last);
                        bytes[t][p] += fetched;
                    }
                }
            }
            let n = queries.len() as f64;
            if queries.is_empty() {
                return (Vec::new(), Vec::new());
            }
            for row in recall.iter_mut().chain(bytes.iter_mut()) {
                row.iter_mut().for_each(|s| *s /= n);
            }
            (recall, bytes)
        };
        let (image, image_bytes) = mean(&self.image);
        let (text, text_bytes) = mean(&self.text);
        ProbeCurve {
            image,
            text,
            image_bytes,
            text_bytes,
        }
    }

    /// Within the groups `probes` ranks for each kind, the list count (at most `cap`) and gap
    /// whose mean recall reaches `target` with the fewest list bytes fetched per query (on a
    /// tie, no gap and fewer lists). A kind no pair brings to `target` keeps its list count
    /// (at most `cap`), with no gap.
    pub fn tune(&self, index: &ListIndex, probes: Probes, target: f64, cap: usize) -> Tuned {
        let root = index.root();
        let lists = root.lists();
        let bytes: Vec<f64> = (0..lists).map(|j| root.probe_bytes(j) as f64).collect();
        let cap = cap.clamp(1, lists.max(1));
        let gaps: Vec<f32> = std::iter::once(Probes::NO_GAP)
            .chain((0..=GAP_STEPS).map(|i| i as f32 * GAP_STEP))
            .collect();
        let mut tuned = Tuned {
            probes,
            image: Measure::default(),
            text: Measure::default(),
        };
        for kind in [QueryKind::Image, QueryKind::Text] {
            let queries = self.of(kind);
            // Summed recall and list bytes by gap and list count.
            let mut recall = vec![vec![0f64; cap]; gaps.len()];
            let mut fetched = vec![vec![0f64; cap]; gaps.len()];
            let mut count = vec![vec![0f64; cap]; gaps.len()];
            for q in queries {
                let groups: Vec<usize> = root
                    .ranked_groups(&q.vector)
                    .into_iter()
                    .take(probes.groups(kind) as usize)
                    .collect();
                let scored = index.scored_lists(&q.vector, &groups).unwrap_or_default();
                let after = q.recall_after(scored.iter().map(|s| s.0), lists);
                let mut total = 0.0;
                let bytes_after: Vec<f64> = scored
                    .iter()
                    .map(|s| {
                        total += bytes[s.0];
                        total
                    })
                    .collect();
                let top = scored.first().map_or(0.0, |s| s.1);
                for (d, &gap) in gaps.iter().enumerate() {
                    let within = scored.iter().take_while(|s| s.1 >= top - gap).count();
                    for p in 0..cap {
                        let m = (p + 1).min(within);
                        let r = match m {
                            0 => f64::from(u8::from(q.wanted.is_empty())),
                            m => after[m - 1],
                        };
                        recall[d][p] += r;
                        fetched[d][p] += if m == 0 { 0.0 } else { bytes_after[m - 1] };
                        count[d][p] += m as f64;
                    }
                }
            }
            if queries.is_empty() {
                let none = Measure {
                    recall: 1.0,
                    ..Measure::default()
                };
                match kind {
                    QueryKind::Image => tuned.image = none,
                    QueryKind::Text => tuned.text = none,
                }
                continue;
            }
            let n = queries.len() as f64;
            // Without a pair reaching the target, the probes as given (no gap).
            let given = (probes.of(kind) as usize).clamp(1, cap) - 1;
            let mut best: Option<(f64, usize, usize)> = None;
            for d in 0..gaps.len() {
                for p in 0..cap {
                    let better = best.is_none_or(|b| fetched[d][p] < b.0);
                    if recall[d][p] / n >= target - 1e-12 && better {
                        best = Some((fetched[d][p], d, p));
                    }
                }
            }
            let (d, p) = best.map_or((0, given), |b| (b.1, b.2));
            let measure = Measure {
                recall: recall[d][p] / n,
                lists: count[d][p] / n,
                bytes: fetched[d][p] / n,
            };
            match kind {
                QueryKind::Image => {
                    (tuned.probes.image, tuned.probes.image_gap) = (p as u32 + 1, gaps[d]);
                    tuned.image = measure;
                }
                QueryKind::Text => {
                    (tuned.probes.text, tuned.probes.text_gap) = (p as u32 + 1, gaps[d]);
                    tuned.text = measure;
                }
            }
        }
        tuned
    }
}

/// What [`Sample::tune`] chose.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuned {
    /// The probes, gaps included.
    pub probes: Probes,
    /// Image queries at those probes.
    pub image: Measure,
    /// Text queries at those probes.
    pub text: Measure,
}

/// Sample queries of one kind at the chosen probes (zero when there were none).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Measure {
    /// Mean recall@k.
    pub recall: f64,
    /// Mean number of lists probed (each fetched with its patches).
    pub lists: f64,
    /// Mean bytes of list files fetched.
    pub bytes: f64,
}

/// Recall@k of partitioned search against the exact scan of every list, and what it fetches, by
/// group and list probe counts.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeCurve {
    /// `image[t - 1][p - 1]`: mean recall of image queries ("More like this") ranking the lists
    /// of the nearest `t` groups and probing the first `p` of them.
    pub image: Vec<Vec<f64>>,
    /// The same for text queries.
    pub text: Vec<Vec<f64>>,
    /// `image_bytes[t - 1][p - 1]`: mean bytes of the group and list files those image queries
    /// fetch.
    pub image_bytes: Vec<Vec<f64>>,
    /// The same for text queries.
    pub text_bytes: Vec<Vec<f64>>,
}

impl ProbeCurve {
    /// For each kind, the probe counts reaching `target` that fetch the fewest bytes (as
    /// measured), probing at most `cap` lists (fewer groups on a tie), with no gap (see
    /// [`Sample::tune`]).
    pub fn cheapest(&self, target: f64, cap: usize) -> Option<Probes> {
        let best = |curve: &[Vec<f64>], bytes: &[Vec<f64>]| -> Option<(u32, u32)> {
            if curve.is_empty() {
                return Some((1, 1));
            }
            let mut best: Option<(f64, u32, u32)> = None;
            for (t, (row, cost)) in curve.iter().zip(bytes).enumerate() {
                let Some(p) = (1..=row.len().min(cap)).find(|&p| row[p - 1] >= target - 1e-12)
                else {
                    continue;
                };
                if best.is_none_or(|b| cost[p - 1] < b.0) {
                    best = Some((cost[p - 1], (t + 1) as u32, p as u32));
                }
            }
            best.map(|(_, t, p)| (t, p))
        };
        let (image_groups, image) = best(&self.image, &self.image_bytes)?;
        let (text_groups, text) = best(&self.text, &self.text_bytes)?;
        Some(Probes {
            image,
            text,
            image_groups,
            text_groups,
            image_gap: Probes::NO_GAP,
            text_gap: Probes::NO_GAP,
        })
    }

    /// Image and text recall at `probes`.
    pub fn at(&self, probes: Probes) -> (f64, f64) {
        let get = |c: &[Vec<f64>], t: u32, p: u32| {
            c.get(t.max(1) as usize - 1)
                .and_then(|row| row.get(p.max(1) as usize - 1))
                .copied()
                .unwrap_or(1.0)
        };
        (
            get(&self.image, probes.image_groups, probes.image),
            get(&self.text, probes.text_groups, probes.text),
        )
    }
}
