//! Splits the vectors into lists (seeded k-means, narrow along the mean text query) and measures
//! how many lists image and text queries must probe to reach `--min-recall` against scanning
//! every list. A rebuild keeps the previous build's list files unless the data drifted: unchanged
//! items keep their rows, new and changed ones form new lists or, scattered, go to a patch beside
//! their nearest list ([`vitrine_index::extend`]); the lists are rewritten (keeping the centroids) once
//! removed rows pass [`REMOVED`].

use anyhow::{Result, bail};
use vitrine_index::extend::extend;
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
/// Rows of departed items may fill this share of the kept list files before a rebuild rewrites
/// the lists: every query scans them for nothing.
const REMOVED: f64 = 0.1;

/// What the site's previous build offers to keep.
pub(crate) struct Previous {
    /// Its vectors' root.
    pub(crate) root: Root,
    /// Its centroids (from the root's group files).
    pub(crate) centroids: Centroids,
    /// Its list files, in list order (checked against the root).
    pub(crate) lists: Vec<Vec<u8>>,
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
    if let Some(prev) = previous.filter(|p| p.root.dim() == dim && p.root.base_lists() > 1) {
        // Patch lists are scanned with their base lists and leave with a retrain.
        let prev_lists = prev.root.base_lists();
        // New lists a rebuild adds may grow an asked count by half before the lists are trained
        // again.
        let same_size = wanted.map_or(prev_lists <= 2 * lists && lists <= 2 * prev_lists, |w| {
            w <= prev_lists && 2 * prev_lists <= 3 * w
        });
        let clipped = prev.root.quantizer().clipped(unit) as f64 / unit.len().max(1) as f64;
        let quantizer = if clipped <= CLIPPED {
            prev.root.quantizer().clone()
        } else {
            fresh_quantizer()
        };
        if same_size && lists > 1 {
            let fit = partition::fit(unit, dim, &prev.centroids);
            let drift = prev.root.fit() - fit;
            if drift <= DRIFT {
                let was = prev.root.fit();
                if clipped <= CLIPPED {
                    let files = prev.root.lists();
                    let ext = extend(unit, dim, &prev.root, &prev.centroids, prev.lists)?;
                    let names: std::collections::HashSet<String> =
                        prev.root.files().into_iter().map(|f| f.path).collect();
                    let new = &ext.lists.root;
                    let kept = (0..new.lists())
                        .filter(|&j| names.contains(&new.file(j).path))
                        .count();
                    if ext.removed_share() <= REMOVED {
                        return Ok(Arranged {
                            note: format!(
                                "vectors: kept {kept} of the previous build's {files} list files \
                                 (fit {fit:.3}, was {was:.3}): {} items kept their rows, {} rows \
                                 of departed or changed items are skipped ({:.1}% of all rows), \
                                 {} new or changed items form {} new lists, {} scattered ones \
                                 went to {} patch lists beside their nearest lists ({} lists \
                                 rewritten with their patch folded in)",
                                ext.kept,
                                ext.lists.root.removed(),
                                100.0 * ext.removed_share(),
                                ext.added,
                                ext.added_lists,
                                ext.scattered,
                                ext.patched,
                                ext.rewritten,
                            ),
                            lists: ext.lists,
                        });
                    }
                }
                let centroids = prev.centroids.first(prev_lists);
                let kept = partition::partition(unit, dim, centroids, quantizer)?;
                let why = if clipped <= CLIPPED {
                    format!(
                        "rows of departed or changed items would pass {:.0}% of the list files: \
                         rewrote every list",
                        100.0 * REMOVED
                    )
                } else {
                    "the new vectors exceed the old int8 scale: new scale, every list rewritten"
                        .to_string()
                };
                return Ok(Arranged {
                    note: format!(
                        "vectors: kept the previous build's {prev_lists} lists' centroids (fit \
                         {:.3}, was {was:.3}); {why}",
                        kept.root.fit(),
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
                    fit,
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
    // Probe counts count base lists (a patch is scanned with its list).
    let (lists_n, groups_n) = (root.base_lists(), root.groups());
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// `n` unit vectors of width 8 around 8 directions, from `seed`.
    pub(crate) fn vectors(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = partition::Rng::new(seed);
        let mut out = Vec::with_capacity(n * 8);
        for i in 0..n {
            let v: Vec<f32> = (0..8)
                .map(|d| {
                    let noise = (rng.below(1000) as f32 / 1000.0) - 0.5;
                    f32::from(d == i % 8) * 2.0 + 0.3 * noise
                })
                .collect();
            out.extend(vitrine_index::normalize(&v));
        }
        out
    }

    /// What `a` offers the next build to keep.
    pub(crate) fn previous(a: &Arranged) -> Option<Previous> {
        let lists = &a.lists;
        Some(Previous {
            root: lists.root.clone(),
            centroids: lists.root.centroids(&lists.groups).expect("centroids"),
            lists: lists.files.clone(),
        })
    }

    #[test]
    fn a_rebuild_keeps_the_list_files_until_departed_rows_pass_a_tenth() {
        let texts = || Ok(vec![vec![0.5; 8]]);
        let unit = vectors(800, 1);
        let first = arrange(&unit, 8, Some(8), None, &texts).expect("first");
        // 2% of the items change into a new collection (a new direction): the list files are
        // kept and the collection forms a list.
        let mut changed = unit.clone();
        for (i, v) in changed.chunks_exact_mut(8).take(16).enumerate() {
            let mut c = vec![1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
            c[2] = 0.01 * i as f32;
            v.copy_from_slice(&vitrine_index::normalize(&c));
        }
        let kept = arrange(&changed, 8, Some(8), previous(&first), &texts).expect("kept");
        assert!(
            kept.note
                .contains("kept 8 of the previous build's 8 list files"),
            "{}",
            kept.note
        );
        assert!(kept.note.contains("form 1 new lists"), "{}", kept.note);
        assert_eq!(kept.lists.files[..8], first.lists.files[..]);
        assert_eq!(kept.lists.root.removed(), 16);
        // Four items change, scattered over the lists: each goes to a patch beside its nearest
        // list and every list file is kept.
        let mut scattered = changed.clone();
        scattered[16 * 8..20 * 8].copy_from_slice(&vectors(4, 77));
        let patched = arrange(&scattered, 8, Some(8), previous(&kept), &texts).expect("patched");
        assert!(
            patched
                .note
                .contains("kept 9 of the previous build's 9 list files")
                && patched.note.contains("4 scattered ones went to"),
            "{}",
            patched.note
        );
        let root = &patched.lists.root;
        assert_eq!(root.base_lists(), 9);
        assert!((10..=13).contains(&root.lists()), "{}", root.lists());
        assert_eq!(patched.lists.files[..9], kept.lists.files[..]);
        // Rewriting every list over the same centroids leaves no patch.
        let fewer = &scattered[..640 * 8];
        let rewritten = arrange(fewer, 8, Some(8), previous(&patched), &texts).expect("rewritten");
        assert!(
            rewritten.note.contains("rewrote every list"),
            "{}",
            rewritten.note
        );
        let root = &rewritten.lists.root;
        assert_eq!((root.lists(), root.base_lists(), root.removed()), (9, 9, 0));
        // A fifth of the items leave: the lists are rewritten over the same centroids.
        let fewer = &unit[..640 * 8];
        let rewritten = arrange(fewer, 8, Some(8), previous(&first), &texts).expect("rewritten");
        assert!(
            rewritten.note.contains("rewrote every list"),
            "{}",
            rewritten.note
        );
        assert_eq!(rewritten.lists.root.removed(), 0);
        assert_eq!(rewritten.lists.root.lists(), 8);
    }
}
