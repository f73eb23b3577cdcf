//! A rebuild that keeps the previous build's list files: an item still there with the same
//! vector keeps its row, the rows of items that left or changed are marked removed in the root,
//! and the new and changed items form new lists beside the old ones, each joined to its nearest
//! group. Changing 1% of the items (a collection re-photographed, new arrivals, departures) so
//! renames about 1% of the list files, where assigning every item again rewrites nearly all.
//! New items that form no tight list ([`TIGHT`]: changes scattered over the catalogue) would make
//! every query near them probe a broad list, so they go to a patch list beside their nearest list
//! (one small file, scanned whenever that list is), which is left unchanged until its patch
//! outgrows a quarter of it ([`FOLD`]).

use std::collections::HashMap;

use crate::groups;
use crate::lists::{LIST_HEADER, Lists, Root, list_bytes};
use crate::partition::{self, Centroids, Partitioned, assign, dot, train};
use crate::vectors::normalize;
use crate::{Error, Result};

/// A new list is kept when its items' mean cosine to its centroid is at most this much below
/// the previous lists' (their fit when trained); a broader one's items go to patches. Measured
/// by the partition benchmark: new lists of changes scattered over 100k items fit ≈ 0.1 worse,
/// and each 1% of items kept in them added ≈ 15% to a cold text query.
pub const TIGHT: f32 = 0.02;

/// A new list holds at least the previous lists' mean size over this; smaller tight clusters
/// (a sub-topic's last few items) are scattered items.
pub const SMALL: usize = 8;

/// A list's patch may hold up to its live rows over this; a larger one (grown by new items, or
/// its list's own items leaving) is folded into the list, which is rewritten.
pub const FOLD: usize = 4;

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
    /// Scattered new items: placed in patches, or with their patch folded into their list.
    pub scattered: usize,
    /// Patch files written (a list's new patch, holding its previous patch's live rows too).
    pub patched: usize,
    /// Previous base lists rewritten, their patch folded in.
    pub rewritten: usize,
}

impl Extended {
    /// Share of all list rows that are removed ones, this rebuild's and earlier ones'.
    pub fn removed_share(&self) -> f64 {
        let root = &self.lists.root;
        let rows = u64::from(root.count()) + root.removed() as u64;
        root.removed() as f64 / rows.max(1) as f64
    }
}

/// A list of the rebuild: its items (input positions) by row, its removed rows, and its file
/// with the hash its name carries.
struct OutList {
    members: Vec<u32>,
    removed: Vec<u32>,
    file: Vec<u8>,
    hash: [u8; crate::files::NAME_HASH_BYTES],
}

impl OutList {
    /// A new file holding the rows of `members`.
    fn written(members: Vec<u32>, codes: &[i8], dim: usize) -> Self {
        let file = list_bytes(dim, &rows_of(codes, dim, &members));
        let hash = crate::files::name_hash_of(&file);
        Self {
            members,
            removed: Vec::new(),
            file,
            hash,
        }
    }
}

/// Unit vectors `unit` (`dim` floats each, in input order) as the previous build's lists
/// (`root`, its `centroids`, its list files in list order, checked against the root) plus new
/// lists: an input whose int8 codes under the root's quantizer equal a live row's keeps that row
/// (the first such input in input order), other live rows are removed, and the inputs left over
/// are clustered into new lists of about the previous lists' mean size; those of a list that fits
/// them worse than [`TIGHT`] go to the patch of their nearest list (or join a new list nearer).
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
    let bases = root.base_lists();
    let mean_size = (root.count() as usize / bases).max(1);
    let (target, small) = (root.fit() - TIGHT, (mean_size / SMALL).max(1));
    let (mut tight, broad): (Vec<NewList>, Vec<NewList>) =
        new_lists(unit, dim, &fresh, mean_size, centroids, (target, small))?
            .into_iter()
            .partition(|l| l.fit >= target && l.members.len() >= small);

    // Items of broad lists join the nearest list: a new one, or a previous one's patch.
    let scattered: Vec<u32> = broad.into_iter().flat_map(|l| l.members).collect();
    let mut joining = vec![Vec::new(); bases];
    if !scattered.is_empty() {
        let mut all = centroids.decoded();
        all.truncate(bases * dim);
        for l in &tight {
            all.extend(l.direction.iter().map(|x| x * l.norm));
        }
        let points = rows_of(unit, dim, &scattered);
        let nearest = assign(&points, dim, &all, &centroids.metric);
        for (&i, a) in scattered.iter().zip(nearest) {
            match (a.0 as usize).checked_sub(bases) {
                Some(l) => tight[l].members.push(i),
                None => joining[a.0 as usize].push(i),
            }
        }
    }
    let scattered = scattered.len();

    // The previous lists: each base list with its patches (kept), or with a new patch holding
    // the old patches' live rows and its joining items, or rewritten with all of them.
    let mut old: Vec<Option<(Matched, Vec<u8>)>> =
        old.into_iter().zip(list_files).map(Some).collect();
    let (mut out, mut patches) = (Vec::with_capacity(root.lists()), Vec::new());
    let (mut patched, mut rewritten) = (0, 0);
    for (b, joining) in joining.into_iter().enumerate() {
        let (base, file) = old[b].take().expect("each base list once");
        let olds: Vec<(Matched, Vec<u8>)> = (root.patches_of(b).iter())
            .filter_map(|&p| old[p as usize].take())
            .collect();
        let in_patches: usize = olds.iter().map(|(l, _)| l.members.len()).sum();
        let fold = (in_patches + joining.len()) * FOLD > base.members.len();
        if joining.is_empty() && !fold {
            out.push(OutList::kept(base, file, root, b));
            for (p, (patch, file)) in root.patches_of(b).iter().zip(olds) {
                if !patch.members.is_empty() {
                    patches.push((b, OutList::kept(patch, file, root, *p as usize)));
                }
            }
            continue;
        }
        let mut patch: Vec<u32> = olds.into_iter().flat_map(|(l, _)| l.members).collect();
        patch.extend(joining);
        if fold {
            rewritten += 1;
            let mut members = base.members;
            members.append(&mut patch);
            out.push(OutList::written(members, &codes, dim));
        } else {
            patched += 1;
            out.push(OutList::kept(base, file, root, b));
            patches.push((b, OutList::written(patch, &codes, dim)));
        }
    }
    let mut combined = centroids.clone().first(bases);
    let dirs: Vec<f32> = (0..root.groups())
        .flat_map(|g| normalize(&root.directions.decode(g)))
        .collect();
    let mut of: Vec<u32> = (0..bases).map(|j| root.group_of(j) as u32).collect();
    let (added_lists, added) = (tight.len(), tight.iter().map(|l| l.members.len()).sum());
    for list in tight {
        of.push(assign(&list.direction, dim, &dirs, &centroids.metric)[0].0);
        combined.norms.push(list.norm);
        let code = combined.unit.quantizer().encode(&list.direction);
        combined.unit.codes.extend(code);
        out.push(OutList::written(list.members, &codes, dim));
    }
    let mut lists = Lists::default();
    for (b, _) in &patches {
        lists.bases.push(*b as u32);
        combined.norms.push(combined.norms[*b]);
        let code = combined.unit.codes(*b).to_vec();
        combined.unit.codes.extend(code);
    }
    let (mut files, mut order) = (Vec::with_capacity(out.len()), Vec::with_capacity(n));
    for list in out.into_iter().chain(patches.into_iter().map(|p| p.1)) {
        let first = lists.rows.iter().sum::<u32>();
        lists
            .rows
            .push((list.file.len() - LIST_HEADER) as u32 / dim as u32);
        lists.removed.extend(list.removed.iter().map(|r| first + r));
        lists.hashes.push(list.hash);
        files.push(list.file);
        order.extend(list.members);
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
        scattered,
        patched,
        rewritten,
    })
}

impl OutList {
    /// Previous list `j`'s file, kept with its removed rows (the root the caller checked it
    /// against names it).
    fn kept(list: Matched, file: Vec<u8>, root: &Root, j: usize) -> Self {
        Self {
            members: list.members,
            removed: list.removed,
            file,
            hash: root.hashes[j],
        }
    }
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
