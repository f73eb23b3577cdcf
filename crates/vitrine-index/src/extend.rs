//! A rebuild that keeps the previous build's list files: an item still there with the same
//! vector keeps its row, the rows of items that left or changed are marked removed in the root,
//! and the new and changed items form new lists beside the old ones, each joined to its nearest
//! group. Changing 1% of the items (a collection re-photographed, new arrivals, departures) so
//! renames about 1% of the list files, where assigning every item again rewrites nearly all.
//! New items that form no tight list ([`TIGHT`]: changes scattered over the catalogue) would make
//! every query near them probe a broad list, so unless they are few ([`STRAYS`]) they join their
//! nearest old lists, which are rewritten.

use std::collections::HashMap;

use crate::groups;
use crate::lists::{LIST_HEADER, Lists, Root, list_bytes};
use crate::partition::{self, Centroids, Partitioned, assign, dot, train};
use crate::vectors::normalize;
use crate::{Error, Result};

/// A new list is kept when its items' mean cosine to its centroid is at most this much below
/// the previous lists' (their fit when trained); a broader one's items join old lists. Measured
/// by the partition benchmark: new lists of changes scattered over 100k items fit ≈ 0.1 worse,
/// and each 1% of items kept in them added ≈ 15% to a cold text query.
pub const TIGHT: f32 = 0.02;

/// A new list holds at least the previous lists' mean size over this; smaller tight clusters
/// (a sub-topic's last few items) are scattered items.
pub const SMALL: usize = 8;

/// Items that form no tight list may join the nearest new list while they are at most this share
/// of all items; more join the nearest lists, new or previous.
pub const STRAYS: f64 = 0.001;

/// A rebuild's lists, and what it kept of the previous ones.
#[derive(Debug, Clone)]
pub struct Extended {
    /// The lists (probe count not yet measured).
    pub lists: Partitioned,
    /// Rows of the previous lists kept for the same item.
    pub kept: usize,
    /// Rows this rebuild marked removed (their items left or changed).
    pub removed: usize,
    /// New lists.
    pub added_lists: usize,
    /// Items in the new lists (new, or changed since the previous build).
    pub added: usize,
    /// Previous lists rewritten, and the new items that joined them (scattered ones; others
    /// that form no tight list join the nearest new list).
    pub rewritten: (usize, usize),
}

impl Extended {
    /// Share of all list rows that are removed ones, this rebuild's and earlier ones'.
    pub fn removed_share(&self) -> f64 {
        let root = &self.lists.root;
        let rows = u64::from(root.count()) + root.removed() as u64;
        root.removed() as f64 / rows.max(1) as f64
    }
}

/// Unit vectors `unit` (`dim` floats each, in input order) as the previous build's lists
/// (`root`, its `centroids`, its list files in list order, checked against the root) plus new
/// lists: an input whose int8 codes under the root's quantizer equal a live row's keeps that row
/// (the first such input in input order), other live rows are removed, and the inputs left over
/// are clustered into new lists of about the previous lists' mean size; those of a list that fits
/// them worse than [`TIGHT`] join their nearest previous lists instead, whose files are
/// rewritten without their removed rows.
pub fn extend(
    unit: &[f32],
    dim: usize,
    root: &Root,
    centroids: &Centroids,
    list_files: Vec<Vec<u8>>,
) -> Result<Extended> {
    let n = unit.len() / dim.max(1);
    if dim != root.dim() || list_files.len() != root.lists() || centroids.len() != root.lists() {
        return Err(Error::Format(format!(
            "{} list files and {} centroids of width {} for a root of {} lists of width {dim}",
            list_files.len(),
            centroids.len(),
            root.dim(),
            root.lists()
        )));
    }
    let codes = root.quantizer().encode(unit);
    let old = matched(root, &list_files, &codes, dim)?;
    let mut taken = vec![false; n];
    old.iter()
        .flat_map(|l| &l.members)
        .for_each(|&i| taken[i as usize] = true);
    let kept: usize = old.iter().map(|l| l.members.len()).sum();
    let was_removed: usize = old.iter().map(|l| l.removed.len()).sum();
    let fresh: Vec<u32> = (0..n as u32).filter(|&i| !taken[i as usize]).collect();
    let mean_size = (root.count() as usize / root.lists()).max(1);
    let (target, small) = (root.fit() - TIGHT, (mean_size / SMALL).max(1));
    let (tight, broad): (Vec<NewList>, Vec<NewList>) =
        new_lists(unit, dim, &fresh, mean_size, centroids, (target, small))?
            .into_iter()
            .partition(|l| l.fit >= target && l.members.len() >= small);

    // Items of broad lists join the nearest list: a new one while they are few (queries miss
    // few of them), else a new or previous one; a previous one is rewritten without its
    // removed rows.
    let strays: usize = broad.iter().map(|l| l.members.len()).sum();
    let few = strays as f64 <= STRAYS * n as f64;
    let (mut tight, scattered): (Vec<NewList>, Vec<u32>) = if few && tight.is_empty() {
        (broad, Vec::new())
    } else {
        (tight, broad.into_iter().flat_map(|l| l.members).collect())
    };
    let mut joining = vec![Vec::new(); root.lists()];
    if !scattered.is_empty() {
        let (mut all, first_new) = if few {
            (Vec::new(), 0)
        } else {
            (centroids.decoded(), root.lists())
        };
        for l in &tight {
            all.extend(l.direction.iter().map(|x| x * l.norm));
        }
        let points = rows_of(unit, dim, &scattered);
        let nearest = assign(&points, dim, &all, &centroids.metric);
        for (&i, a) in scattered.iter().zip(nearest) {
            match (a.0 as usize).checked_sub(first_new) {
                Some(l) => tight[l].members.push(i),
                None => joining[a.0 as usize].push(i),
            }
        }
    }
    let joined = joining.iter().map(Vec::len).sum();
    let mut lists = Lists::default();
    let (mut files, mut order) = (Vec::with_capacity(root.lists()), Vec::with_capacity(n));
    let mut rewritten = 0;
    for (j, (mut list, file)) in old.into_iter().zip(list_files).enumerate() {
        let first = lists.rows.iter().sum::<u32>();
        if joining[j].is_empty() {
            lists.rows.push(root.rows(j));
            lists.removed.extend(list.removed.iter().map(|r| first + r));
            // The kept files are the ones the root names (the caller checked them).
            lists.hashes.push(root.hashes[j]);
            files.push(file);
        } else {
            rewritten += 1;
            list.members.append(&mut joining[j]);
            let file = list_bytes(dim, &rows_of(&codes, dim, &list.members));
            lists.rows.push(list.members.len() as u32);
            lists.hashes.push(crate::files::name_hash_of(&file));
            files.push(file);
        }
        order.extend(list.members);
    }
    let mut combined = centroids.clone();
    let dirs: Vec<f32> = (0..root.groups())
        .flat_map(|g| normalize(&root.directions.decode(g)))
        .collect();
    let mut of: Vec<u32> = (0..root.lists()).map(|j| root.group_of(j) as u32).collect();
    let (added_lists, added) = (tight.len(), tight.iter().map(|l| l.members.len()).sum());
    for list in tight {
        let file = list_bytes(dim, &rows_of(&codes, dim, &list.members));
        lists.rows.push(list.members.len() as u32);
        order.extend(&list.members);
        lists.hashes.push(crate::files::name_hash_of(&file));
        files.push(file);
        of.push(assign(&list.direction, dim, &dirs, &centroids.metric)[0].0);
        combined.norms.push(list.norm);
        let code = combined.unit.quantizer().encode(&list.direction);
        combined.unit.codes.extend(code);
    }
    let grouping = groups::kept(&combined, of, root.directions.clone());
    let quantizer = root.quantizer().clone();
    let (new_root, groups) = Root::assemble(quantizer, &combined, lists, root.fit(), grouping)?;
    Ok(Extended {
        lists: Partitioned {
            root: new_root,
            files,
            groups,
            order,
        },
        kept,
        removed: was_removed - root.removed(),
        added_lists,
        added,
        rewritten: (rewritten, joined),
    })
}

/// A previous list as the rebuild finds it: the inputs keeping its live rows (in row order) and
/// its removed rows, from its first row.
struct Matched {
    members: Vec<u32>,
    removed: Vec<u32>,
}

/// Matches every live row of the previous lists to the first unmatched input of equal codes.
fn matched(root: &Root, files: &[Vec<u8>], codes: &[i8], dim: usize) -> Result<Vec<Matched>> {
    let n = codes.len() / dim;
    // Inputs by their codes, the first in input order last (taken first).
    let mut by_codes: HashMap<&[i8], Vec<u32>> = HashMap::with_capacity(n);
    for i in (0..n).rev() {
        by_codes
            .entry(&codes[i * dim..(i + 1) * dim])
            .or_default()
            .push(i as u32);
    }
    let mut row_buf = Vec::with_capacity(dim);
    let mut out = Vec::with_capacity(files.len());
    for (j, file) in files.iter().enumerate() {
        let rows = root.rows(j);
        if file.len() != LIST_HEADER + rows as usize * dim {
            return Err(Error::Format(format!(
                "list file {j}: {} bytes, the root says {rows} rows of {dim}",
                file.len()
            )));
        }
        let mut gone = root.removed_in(j).peekable();
        let mut list = Matched {
            members: Vec::new(),
            removed: Vec::new(),
        };
        for (r, row) in file[LIST_HEADER..].chunks_exact(dim).enumerate() {
            let was_removed = gone.next_if_eq(&(r as u32)).is_some();
            row_buf.clear();
            row_buf.extend(row.iter().map(|&b| b as i8));
            let same = (!was_removed)
                .then(|| by_codes.get_mut(row_buf.as_slice())?.pop())
                .flatten();
            match same {
                Some(i) => list.members.push(i),
                None => list.removed.push(r as u32),
            }
        }
        out.push(list);
    }
    Ok(out)
}

/// The rows of `items` (positions into `rows`, `dim` values each), in that order.
fn rows_of<T: Copy>(rows: &[T], dim: usize, items: &[u32]) -> Vec<T> {
    items
        .iter()
        .flat_map(|&i| {
            rows[i as usize * dim..(i as usize + 1) * dim]
                .iter()
                .copied()
        })
        .collect()
}

/// A new list: its items (input positions), its centroid's direction and length, and its items'
/// mean cosine to the centroid.
struct NewList {
    members: Vec<u32>,
    direction: Vec<f32>,
    norm: f32,
    fit: f32,
}

/// The `fresh` inputs clustered (seeded k-means under the previous metric) into lists of about
/// `mean_size` items; a list whose items fit it worse than `target` (mean cosine) is bisected
/// while it holds twice `small` items: a collection's new items cut across the clusters' edges.
/// Empty clusters make no list; lists still broad are returned too.
fn new_lists(
    unit: &[f32],
    dim: usize,
    fresh: &[u32],
    mean_size: usize,
    centroids: &Centroids,
    (target, small): (f32, usize),
) -> Result<Vec<NewList>> {
    if fresh.is_empty() {
        return Ok(Vec::new());
    }
    let points = rows_of(unit, dim, fresh);
    let k = (fresh.len() as f64 / mean_size as f64).round().max(1.0) as usize;
    let metric = &centroids.metric;
    let means = train(&points, dim, k, partition::SEED, metric);
    let assigned = assign(&points, dim, &means, metric);
    // Clusters as positions in `fresh`, with their mean and fit, latest first.
    let clusters = |at: &[usize], means: &[f32], assigned: &[(u32, f32)]| {
        let mut out = Vec::new();
        for (l, mean) in means.chunks_exact(dim).enumerate().rev() {
            let here: Vec<usize> = (0..at.len())
                .filter(|&p| assigned[p].0 == l as u32)
                .collect();
            if !here.is_empty() {
                let fit = here.iter().map(|&p| f64::from(assigned[p].1)).sum::<f64>();
                let members = here.iter().map(|&p| at[p]).collect::<Vec<usize>>();
                out.push((members, mean.to_vec(), (fit / here.len() as f64) as f32));
            }
        }
        out
    };
    let all: Vec<usize> = (0..fresh.len()).collect();
    let mut work = clusters(&all, &means, &assigned);
    let mut out = Vec::new();
    while let Some((at, mean, fit)) = work.pop() {
        if fit < target && at.len() >= 2 * small {
            let sub = rows_of(
                &points,
                dim,
                &at.iter().map(|&p| p as u32).collect::<Vec<_>>(),
            );
            let two = train(&sub, dim, 2, partition::SEED, metric);
            let halves = clusters(&at, &two, &assign(&sub, dim, &two, metric));
            if halves.len() == 2 {
                work.extend(halves);
                continue;
            }
        }
        let members: Vec<u32> = at.iter().map(|&p| fresh[p]).collect();
        let norm = dot(&mean, &mean).sqrt();
        if !norm.is_finite() || norm == 0.0 {
            return Err(Error::Format(
                "a new list's centroid is not a direction".into(),
            ));
        }
        out.push(NewList {
            members,
            direction: normalize(&mean),
            norm,
            fit,
        });
    }
    Ok(out)
}
