//! Rebuild churn in the partition benchmark: 1% of the items change, scattered (again and again)
//! or within one collection, and the lists are rebuilt as build-index does ([`extend`]: list
//! files kept, rows of changed items skipped, new lists for them); prints the files a deploy
//! uploads, the root's growth, and the probes, recall and cold-query bytes measured again.

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::Result;
use vitrine_index::extend::extend;
use vitrine_index::lists::{ListIndex, QueryKind, Root};
use vitrine_index::probing::{Sample, Tuned};

use crate::data::{self, DIM, Mixture};
use crate::stats::{cold, mean};
use crate::{DATA_SEED, IMAGE_QUERIES, MB, TARGET, p95};

/// The index as built before the change.
pub(crate) struct Before<'a> {
    /// The root (with its measured probes).
    pub root: &'a Root,
    /// Its list files, then its group files.
    pub files: &'a [&'a [u8]],
    /// The measured text queries.
    pub texts: &'a [Vec<f32>],
    /// What the probes measured before the change gave.
    pub probes: Tuned,
}

/// A build's lists: the root and its files (lists, then groups), with the probes measured.
struct Built {
    root: Root,
    files: Vec<Vec<u8>>,
    probes: Tuned,
}

/// Changes 1% of the items at a time, anywhere, rebuilding after each change as build-index does
/// (a few times: the removed rows and new lists add up until a rebuild rewrites the lists), then
/// once 1% in one collection (whole sub-topics, re-photographed) from the first build.
pub(crate) fn churn(mix: &Mixture, unit: &[f32], labels: &[u32], before: &Before) -> Result<()> {
    let n = unit.len() / DIM;
    let first = Built {
        root: before.root.clone(),
        files: before.files.iter().map(|f| f.to_vec()).collect(),
        probes: before.probes,
    };
    let mut rng = data::Rng::new(DATA_SEED, 0xC4A9);
    let rounds = if n >= 1_000_000 { 3 } else { 8 };
    let (mut items, mut built, mut drawn) = (unit.to_vec(), None::<Built>, 0u64);
    for round in 1..=rounds {
        let mut changed = BTreeSet::new();
        while changed.len() < n / 100 {
            changed.insert(rng.below(n));
        }
        for &i in &changed {
            mix.item((n as u64) + drawn, &mut items[i * DIM..(i + 1) * DIM]);
            drawn += 1;
        }
        let what = format!(
            "rebuild {round} after changing 1% anywhere ({} items)",
            changed.len()
        );
        let from = built.as_ref().unwrap_or(&first);
        built = Some(rebuilt(&what, &items, from, before.texts)?);
    }

    let mut per_sub = vec![0usize; mix.subs()];
    labels.iter().for_each(|&l| per_sub[l as usize] += 1);
    let (mut subs, mut count) = (BTreeSet::new(), 0);
    while count < n / 100 {
        let j = rng.below(mix.subs());
        if subs.insert(j) {
            count += per_sub[j];
        }
    }
    let mut collection = unit.to_vec();
    for (i, &l) in labels.iter().enumerate() {
        if subs.contains(&(l as usize)) {
            mix.item_of(
                l as usize,
                i as u64,
                &mut collection[i * DIM..(i + 1) * DIM],
            );
        }
    }
    let what = format!(
        "rebuild after changing 1% in one collection ({count} items of {} sub-topics)",
        subs.len()
    );
    rebuilt(&what, &collection, &first, before.texts).map(drop)
}

/// Rebuilds `unit` over the lists of `before` and prints what changed and what a query costs.
fn rebuilt(what: &str, unit: &[f32], before: &Built, texts: &[Vec<f32>]) -> Result<Built> {
    let root = &before.root;
    let lists = root.lists();
    let t = Instant::now();
    let centroids = root.centroids(&before.files[lists..])?;
    let old_lists = before.files[..lists].to_vec();
    let ext = extend(unit, DIM, root, &centroids, old_lists)?;
    let secs = t.elapsed().as_secs_f64();
    let mut after = ext.lists.root.clone();
    let old: BTreeSet<String> = root.files().into_iter().map(|f| f.path).collect();
    let new_files: Vec<_> = after
        .files()
        .into_iter()
        .filter(|f| !old.contains(&f.path))
        .collect();
    let new_lists = new_files
        .iter()
        .filter(|f| f.path.starts_with(vitrine_index::lists::LIST_STEM))
        .count();
    let (root_was, root_is) = (root.to_bytes().len() as f64, after.to_bytes().len() as f64);
    let upload = new_files.iter().map(|f| f.size as f64).sum::<f64>() + root_is;
    let patch_bytes: f64 = (after.base_lists()..after.lists())
        .map(|j| after.file(j).size as f64)
        .sum();
    println!(
        "  {what} ({secs:.1} s): {} of the {lists} list files kept; {new_lists} new list \
         files ({:.2}% of the lists): {} new lists for {} items, {} patch lists ({:.2} MB in all \
         patches) for {} scattered items, {} lists rewritten with their patch folded in; {} \
         changed group files of {} ({:.2} MB to upload with the root); {} rows skipped ({:.1}% \
         of all); root {:.3} → {:.3} MB",
        (0..after.lists())
            .filter(|&j| old.contains(&after.file(j).path))
            .count(),
        100.0 * new_lists as f64 / lists as f64,
        ext.added_lists,
        ext.added,
        ext.patched,
        patch_bytes / MB,
        ext.scattered,
        ext.rewritten,
        new_files.len() - new_lists,
        root.groups(),
        upload / MB,
        after.removed(),
        100.0 * ext.removed_share(),
        root_was / MB,
        root_is / MB,
    );

    // The build measures the probes again on the rebuilt lists.
    let t = Instant::now();
    let files: Vec<Vec<u8>> = ext
        .lists
        .files
        .into_iter()
        .chain(ext.lists.groups)
        .collect();
    let load = |root: &Root| -> Result<ListIndex> {
        let mut index = ListIndex::new(root.clone());
        for (j, f) in files.iter().enumerate() {
            index.add_file(j, f)?;
        }
        Ok(index)
    };
    let index = load(&after)?;
    let count = after.count() as usize;
    let images: Vec<u32> = (0..count as u32)
        .step_by(count.div_ceil(IMAGE_QUERIES))
        .collect();
    let sample = Sample::new(&index, &images, texts, 10);
    let curve = sample.curve(&index);
    let cap = (after.base_lists() / 4).max(1);
    let counts = curve
        .cheapest(TARGET, after.base_lists())
        .ok_or_else(|| anyhow::anyhow!("no probe count reaches {TARGET}"))?;
    let tuned = sample.tune(&index, counts, TARGET, cap);
    after.set_probes(tuned.probes);
    let index = load(&after)?;
    let parts = cold(&after, &index, texts, QueryKind::Text);
    let bytes: Vec<f64> = parts.iter().map(|p| root_is + p.0 + p.1).collect();
    let fetched: Vec<f64> = (texts.iter())
        .map(|q| index.plan(q, QueryKind::Text, vitrine_search::WINDOW, None))
        .map(|l| l.map_or(0.0, |l| l.len() as f64))
        .collect();
    let (was, is) = (before.probes, tuned);
    println!(
        "    measured again ({:.0} s): text probes {} → {} (recall {:.4} → {:.4}), image {} → {} \
         ({:.4} → {:.4}); cold text query {:.2} MB mean, {:.2} MB p95, {:.1} list files",
        t.elapsed().as_secs_f64(),
        was.probes.text,
        is.probes.text,
        was.text.recall,
        is.text.recall,
        was.probes.image,
        is.probes.image,
        was.image.recall,
        is.image.recall,
        mean(&bytes) / MB,
        p95(bytes) / MB,
        mean(&fetched),
    );
    Ok(Built {
        root: after,
        files,
        probes: tuned,
    })
}
