//! Splits the vectors into lists (seeded k-means, narrow along the mean text query) and measures
//! how many lists image and text queries must probe to reach `--min-recall` against scanning
//! every list. A rebuild keeps the previous build's centroids, metric and int8 scale unless the
//! data drifted, so an unchanged item stays in its list.

use anyhow::{Result, bail};
use vitrine_index::lists::{ListIndex, Probes, Root};
use vitrine_index::partition::{self, Centroids, Metric, Partitioned};
use vitrine_index::probing::Sample;
use vitrine_index::{PartitionInfo, Quantizer};

/// Image queries measured, at most (evenly spaced items).
const IMAGE_QUERIES: usize = 200;
/// A kept partition may fit the new items this much worse (mean cosine) before it is retrained.
const DRIFT: f32 = 0.02;
/// A kept int8 scale may clamp at most this share of the new values.
const CLIPPED: f64 = 1e-4;

/// What the site's previous build offers to keep.
pub(crate) struct Previous {
    /// Its vectors' root.
    pub(crate) root: Root,
    /// Its centroids (from the root's group files).
    pub(crate) centroids: Centroids,
}

/// Lists made, in item order, with a line for the log.
pub(crate) struct Arranged {
    /// The lists (probe count not yet measured).
    pub(crate) lists: Partitioned,
    /// What was kept or retrained, and why.
    pub(crate) note: String,
}

/// Splits unit vectors (`dim` each) into `wanted` lists (or [`partition::default_lists`]),
/// keeping `previous`'s centroids and scale when they still fit; `texts` gives text query
/// vectors for the metric of new lists (called only when lists are trained).
pub(crate) fn arrange(
    unit: &[f32],
    dim: usize,
    wanted: Option<usize>,
    previous: Option<Previous>,
    texts: &dyn Fn() -> Result<Vec<Vec<f32>>>,
) -> Result<Arranged> {
    let n = unit.len() / dim;
    let lists = wanted
        .unwrap_or_else(|| partition::default_lists(n))
        .clamp(1, n.max(1));
    let fresh_quantizer = || Quantizer::fit(unit, dim);
    if let Some(prev) = previous.filter(|p| p.root.dim() == dim && p.root.lists() > 1) {
        let prev_lists = prev.root.lists();
        let same_size = wanted.map_or(prev_lists <= 2 * lists && lists <= 2 * prev_lists, |w| {
            w == prev_lists
        });
        let clipped = prev.root.quantizer().clipped(unit) as f64 / unit.len().max(1) as f64;
        let quantizer = if clipped <= CLIPPED {
            prev.root.quantizer().clone()
        } else {
            fresh_quantizer()
        };
        if same_size && lists > 1 {
            let kept = partition::partition(unit, dim, prev.centroids, quantizer)?;
            let drift = prev.root.fit() - kept.root.fit();
            if drift <= DRIFT {
                let scale = if clipped <= CLIPPED {
                    "and int8 scale"
                } else {
                    "(new int8 scale: the new vectors exceed the old one)"
                };
                return Ok(Arranged {
                    note: format!(
                        "vectors: kept the previous build's {prev_lists} lists {scale} (fit {:.3}, \
                         was {:.3})",
                        kept.root.fit(),
                        prev.root.fit()
                    ),
                    lists: kept,
                });
            }
            return trained(
                unit,
                dim,
                lists,
                texts,
                format!(
                    "vectors: the items drifted from the previous lists (fit {:.3}, was {:.3}); \
                 retrained {lists} lists, so every list file changes",
                    kept.root.fit(),
                    prev.root.fit()
                ),
            );
        }
        return trained(
            unit,
            dim,
            lists,
            texts,
            format!(
                "vectors: {lists} lists for {n} items (the previous build had {prev_lists}); retrained"
            ),
        );
    }
    let note = if lists == 1 {
        format!(
            "vectors: one list ({n} items, below {} need no partitions)",
            partition::FLAT_BELOW
        )
    } else {
        format!("vectors: {lists} lists for {n} items")
    };
    trained(unit, dim, lists, texts, note)
}

fn trained(
    unit: &[f32],
    dim: usize,
    lists: usize,
    texts: &dyn Fn() -> Result<Vec<Vec<f32>>>,
    note: String,
) -> Result<Arranged> {
    let (means, metric) = if lists == 1 {
        // One list: its centroid is the mean direction (never used to choose).
        let q = Quantizer::fit(unit, dim);
        (q_mean(&q), Metric::plain(dim))
    } else {
        let metric = Metric::for_texts(&texts()?, dim);
        let means = partition::train(unit, dim, lists, partition::SEED, &metric);
        (means, metric)
    };
    let centroids = Centroids::from_means(&means, dim, metric)?;
    Ok(Arranged {
        lists: partition::partition(unit, dim, centroids, Quantizer::fit(unit, dim))?,
        note,
    })
}

/// A non-zero vector along the quantizer's centre.
fn q_mean(q: &Quantizer) -> Vec<f32> {
    let v = q.centre().to_vec();
    if v.iter().all(|x| *x == 0.0) {
        let mut one = vec![0.0; v.len()];
        one[0] = 1.0;
        one
    } else {
        v
    }
}

/// Measures the probe count on the arranged lists: image queries are evenly spaced items, text
/// queries the shipped encoder's vectors of titles and everyday queries. Fails when reaching
/// `min_recall` needs more than `max_probes` lists.
pub(crate) fn measure(
    lists: &mut Partitioned,
    texts: &[Vec<f32>],
    min_recall: f64,
    max_probes: Option<usize>,
) -> Result<PartitionInfo> {
    let root = &lists.root;
    let count = root.count() as usize;
    let mut index = ListIndex::new(root.clone());
    for (j, (_, bytes)) in lists.site_files().into_iter().enumerate() {
        index.add_file(j, bytes)?;
    }
    let step = count.div_ceil(IMAGE_QUERIES).max(1);
    let images: Vec<u32> = (0..count as u32).step_by(step).collect();
    let sample = Sample::new(&index, &images, texts, 10);
    let curve = sample.curve(&index);
    let (lists_n, groups_n) = (root.lists(), root.groups());
    let cap = max_probes
        .unwrap_or((lists_n / 4).max(lists_n.min(4)))
        .clamp(1, lists_n);
    let Some(counts) = curve.cheapest(min_recall, cap) else {
        let (image, text) = curve.at(Probes::counts(groups_n as u32, cap as u32));
        bail!(
            "probing {cap} of {lists_n} lists reaches recall@10 {image:.4} for image queries and \
             {text:.4} for text queries, below --min-recall {min_recall}; nothing was written. \
             Use fewer lists (--partitions), allow more probes (--max-probes) or lower --min-recall"
        );
    };
    // Within those groups, a gap may save lists where a query's nearest lists stand out.
    let tuned = sample.tune(&index, counts, min_recall, cap);
    let probes = tuned.probes;
    lists.root.set_probes(probes);
    let gap = |g: f32| (f64::from(g) * 1e4).round() / 1e4;
    Ok(PartitionInfo {
        lists: lists_n as u32,
        groups: groups_n as u32,
        image_probes: probes.image,
        text_probes: probes.text,
        image_group_probes: probes.image_groups,
        text_group_probes: probes.text_groups,
        image_gap: gap(probes.image_gap),
        text_gap: gap(probes.text_gap),
        image_queries: images.len() as u32,
        image_recall: floor4(tuned.image.recall),
        text_queries: texts.len() as u32,
        text_recall: floor4(tuned.text.recall),
        min_recall,
    })
}

/// Rounded down to 4 decimals, so a recorded value never overstates.
fn floor4(x: f64) -> f64 {
    (x * 1e4 + 1e-9).floor() / 1e4
}
