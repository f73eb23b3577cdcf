//! Rebuild churn in the partition benchmark: the list and group files a rebuild that keeps the
//! centroids changes when 1% of the items change, scattered or within one collection.

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::Result;
use vitrine_index::FileRef;
use vitrine_index::lists::Root;
use vitrine_index::partition::partition;

use crate::data::{self, DIM, Mixture};
use crate::{DATA_SEED, MB};

/// Replaces 1% of the items by new ones from the mixture, first anywhere, then a collection's
/// (whole sub-topics, re-photographed), and re-partitions keeping the root's centroids and
/// quantizer, as build-index's rebuild does; prints how many list files changed.
pub(crate) fn churn(
    mix: &Mixture,
    unit: &[f32],
    labels: &[u32],
    root: &Root,
    groups: &[Vec<u8>],
) -> Result<()> {
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
    rebuilt("anywhere", &scattered, changed.len(), root, groups)?;

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
    let what = format!("in one collection ({} sub-topics)", subs.len());
    rebuilt(&what, &collection, count, root, groups)
}

/// Re-partitions `unit` (`changed` items differ) with the root's centroids and quantizer and
/// prints the files that changed.
fn rebuilt(
    what: &str,
    unit: &[f32],
    changed: usize,
    root: &Root,
    groups: &[Vec<u8>],
) -> Result<()> {
    let clipped = root.quantizer().clipped(unit) as f64 / unit.len() as f64;
    let t = Instant::now();
    let again = partition(unit, DIM, root.centroids(groups)?, root.quantizer().clone())?;
    let before = root.files();
    let after = again.root.files();
    let by_list = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| a.path != b.path)
        .count();
    let old: BTreeSet<&str> = before.iter().map(|f| f.path.as_str()).collect();
    let new: Vec<&FileRef> = after
        .iter()
        .filter(|f| !old.contains(f.path.as_str()))
        .collect();
    println!(
        "  rebuild after changing 1% {what} ({changed} items; kept centroids and int8 scale, \
         {clipped:.1e} of values clipped; {:.1} s): {by_list} of {} list and group files changed \
         ({:.1}%), {} new files to upload ({:.2} MB); fit {:.3} → {:.3}",
        t.elapsed().as_secs_f64(),
        before.len(),
        100.0 * by_list as f64 / before.len() as f64,
        new.len(),
        new.iter().map(|f| f.size as f64).sum::<f64>() / MB,
        root.fit(),
        again.root.fit()
    );
    Ok(())
}
