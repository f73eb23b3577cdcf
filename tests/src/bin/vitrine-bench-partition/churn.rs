//! Rebuild churn in the partition benchmark: the list and group files a rebuild that keeps the
//! centroids changes when 1% of the items change, scattered or within one collection; and what
//! patch files (old lists kept, changes beside them) would cost instead, per list or per group.

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::Result;
use vitrine_index::FileRef;
use vitrine_index::lists::Root;
use vitrine_index::partition::partition;

use crate::data::{self, DIM, Mixture};
use crate::stats::mean;
use crate::{DATA_SEED, MB, p95};

/// The index as built before the change, and the lists each measured text query probes in it.
pub(crate) struct Before<'a> {
    /// The root.
    pub root: &'a Root,
    /// The group files.
    pub groups: &'a [Vec<u8>],
    /// For each item number, its position in the input.
    pub order: &'a [u32],
    /// The lists each cold text query fetches.
    pub text_plans: &'a [Vec<usize>],
}

/// Replaces 1% of the items by new ones from the mixture, first anywhere, then a collection's
/// (whole sub-topics, re-photographed), and re-partitions keeping the root's centroids and
/// quantizer, as build-index's rebuild does; prints how many list files changed.
pub(crate) fn churn(mix: &Mixture, unit: &[f32], labels: &[u32], before: &Before) -> Result<()> {
    let n = unit.len() / DIM;
    let mut rng = data::Rng::new(DATA_SEED, 0xC4A9);
    let mut changed = BTreeSet::new();
    while changed.len() < n / 100 {
        changed.insert(rng.below(n));
    }
    let mut scattered = unit.to_vec();
    for (k, &i) in changed.iter().enumerate() {
        mix.item((n + k) as u64, &mut scattered[i * DIM..(i + 1) * DIM]);
    }
    rebuilt("anywhere", &scattered, &changed, before)?;

    let mut per_sub = vec![0usize; mix.subs()];
    labels.iter().for_each(|&l| per_sub[l as usize] += 1);
    let (mut subs, mut count) = (BTreeSet::new(), 0);
    let n_subs = |subs: &BTreeSet<usize>| -> BTreeSet<usize> {
        (0..n)
            .filter(|&i| subs.contains(&(labels[i] as usize)))
            .collect()
    };
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
    let what = format!("in one collection ({} sub-topics)", subs.len());
    rebuilt(&what, &collection, &n_subs(&subs), before)
}

/// Re-partitions `unit` (`changed` items differ) with the root's centroids and quantizer and
/// prints the files that changed, then what patch files would cost instead ([`patches`]).
fn rebuilt(what: &str, unit: &[f32], changed: &BTreeSet<usize>, before: &Before) -> Result<()> {
    let Before { root, groups, .. } = *before;
    let clipped = root.quantizer().clipped(unit) as f64 / unit.len() as f64;
    let t = Instant::now();
    let again = partition(unit, DIM, root.centroids(groups)?, root.quantizer().clone())?;
    let (old_files, new_files) = (root.files(), again.root.files());
    let by_list = old_files
        .iter()
        .zip(&new_files)
        .filter(|(a, b)| a.path != b.path)
        .count();
    let old: BTreeSet<&str> = old_files.iter().map(|f| f.path.as_str()).collect();
    let new: Vec<&FileRef> = new_files
        .iter()
        .filter(|f| !old.contains(f.path.as_str()))
        .collect();
    println!(
        "  rebuild after changing 1% {what} ({} items; kept centroids and int8 scale, \
         {clipped:.1e} of values clipped; {:.1} s): {by_list} of {} list and group files changed \
         ({:.1}%), {} new files to upload ({:.2} MB); fit {:.3} → {:.3}",
        changed.len(),
        t.elapsed().as_secs_f64(),
        old_files.len(),
        100.0 * by_list as f64 / old_files.len() as f64,
        new.len(),
        new.iter().map(|f| f.size as f64).sum::<f64>() / MB,
        root.fit(),
        again.root.fit()
    );
    patches(before, &again.root, &again.order, changed);
    Ok(())
}

/// Bytes of a patch entry: an added item's int8 vector and number, or a removed item's number.
const ADDED: usize = DIM + 4;
const REMOVED: usize = 4;

/// The alternative to rewriting lists: every old list file kept, and beside each list (or each
/// group) a patch file with the items that joined it (vector + number) and the numbers of those
/// that left or changed. Prints the files and bytes a rebuild uploads and what a cold text query
/// fetches on top of today's.
fn patches(before: &Before, after: &Root, new_order: &[u32], changed: &BTreeSet<usize>) {
    let members = |root: &Root, order: &[u32], j: usize| -> BTreeSet<usize> {
        let (first, count) = root.range(j);
        order[first as usize..(first + count) as usize]
            .iter()
            .map(|&i| i as usize)
            .collect()
    };
    let root = before.root;
    let per_list: Vec<usize> = (0..root.lists())
        .map(|j| {
            let (was, is) = (members(root, before.order, j), members(after, new_order, j));
            let added = is
                .iter()
                .filter(|i| !was.contains(i) || changed.contains(i))
                .count();
            let removed = was
                .iter()
                .filter(|i| !is.contains(i) || changed.contains(i))
                .count();
            added * ADDED + removed * REMOVED
        })
        .collect();
    let mut per_group = vec![0usize; root.groups()];
    for (j, &b) in per_list.iter().enumerate() {
        per_group[root.group_of(j)] += b;
    }
    let show = |name: &str, files: &[usize], extra: &dyn Fn(&[usize]) -> (f64, usize)| {
        let used = files.iter().filter(|&&b| b > 0).count();
        let per_query: Vec<(f64, usize)> = before.text_plans.iter().map(|p| extra(p)).collect();
        let bytes: Vec<f64> = per_query.iter().map(|q| q.0).collect();
        let requests: Vec<f64> = per_query.iter().map(|q| q.1 as f64).collect();
        println!(
            "    patches per {name} instead: {used} patch files ({:.1}% of the {} list and group \
             files; old lists kept), {:.2} MB to upload; a cold text query fetches {:.3} MB more \
             (p95 {:.3}) in {:.1} more files",
            100.0 * used as f64 / root.file_count() as f64,
            root.file_count(),
            files.iter().sum::<usize>() as f64 / MB,
            mean(&bytes) / MB,
            p95(bytes) / MB,
            mean(&requests)
        );
    };
    show("list", &per_list, &|plan: &[usize]| {
        let hit: Vec<usize> = plan
            .iter()
            .map(|&j| per_list[j])
            .filter(|&b| b > 0)
            .collect();
        (hit.iter().sum::<usize>() as f64, hit.len())
    });
    show("group", &per_group, &|plan: &[usize]| {
        let groups: BTreeSet<usize> = plan.iter().map(|&j| root.group_of(j)).collect();
        let hit: Vec<usize> = groups
            .iter()
            .map(|&g| per_group[g])
            .filter(|&b| b > 0)
            .collect();
        (hit.iter().sum::<usize>() as f64, hit.len())
    });
}
