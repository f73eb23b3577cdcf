//! The vectors as a partitioned index: a small root and, beside it, one list file of int8 codes
//! per list and one file per group of lists holding their centroids ([`crate::groups`]). Items
//! are numbered in list order, so list `j` holds items `start[j] .. start[j] + size[j]`; a query
//! ranks the groups, fetches the few group files its kind needs, ranks their lists, fetches
//! the nearest ([`Probes`]: a measured count, fewer where the nearest stand out) and scores them
//! as the flat scan does. A small catalogue is one list in one group: the
//! same ranking as scanning everything.
//!
//! A rebuild keeps a list file whose items left or changed: their rows are marked removed in the
//! root (a reader drops them as it loads the list) and new items go to new lists or, scattered,
//! to a small patch list beside their nearest list ([`crate::extend`]), so changing 1% of the
//! items renames about 1% of the list files. A patch list has no centroid of its own: the last
//! `patches` lists are patches, each of a base list, and a query that probes a base list scans
//! its patches too.
//!
//! Root, `vectors.<hash>.bin` (little-endian): magic `VTRR`, u32 version 6, u32 `dim`, u32
//! `count` (live items), u32 `lists`, u32 `groups`, u32 image probes, u32 text probes, u32 image
//! group probes, u32 text group probes, f32 `fit`, f32 metric `lambda`, f32 image gap, f32 text
//! gap (see [`Probes`]), u32 `removed`, u32 `patches`, f32×dim item centre, f32×dim item
//! scale, f32×dim metric direction, f32×dim centroid centre, f32×dim centroid scale, u32×lists
//! rows of each list file, u16×(lists − patches) group of each base list, u32×patches the base
//! list of each patch, 8 bytes×lists and 8 bytes×groups: the hash each list
//! and group file's name carries ([`NAME_HASH_BYTES`], what the root checks them against: at a
//! million items 24 bytes more per list were 0.07 MB of every cold query), the removed rows
//! (numbered across the list files in list order) as varint gaps (the first row, then each row
//! less the one before less one: a byte each where 4 were 0.04 MB per 10,000 at a million
//! items), then the groups' directions as a vectors file (`VTRV`). List,
//! `lists/list.<hash>.bin`: magic `VTRL`, u32 version 1, u32 `dim`, u32 `count`, i8 codes.

mod index;

pub use index::{ListIndex, NeedFiles};

use crate::files::{FileRef, NAME_HASH_BYTES, name_hash_at, name_hash_of};
use crate::groups::{self, GROUP_STEM, Group};
use crate::partition::{Centroids, Metric};
use crate::vectors::{Quantizer, Vectors};
use crate::{Error, Result};

const ROOT_MAGIC: &[u8; 4] = b"VTRR";
pub(crate) const LIST_MAGIC: &[u8; 4] = b"VTRL";
const ROOT_VERSION: u32 = 6;
pub(crate) const LIST_VERSION: u32 = 1;
const ROOT_HEADER: usize = 64;
pub(crate) const LIST_HEADER: usize = 16;
/// The stem of list file names.
pub const LIST_STEM: &str = "lists/list";

/// What a query vector comes from: text queries sit apart from the images (CLIP's modality gap)
/// and need their own probe count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// An item's vector ("More like this").
    Image,
    /// The text encoder's vector of a query, alone or combined with items'.
    Text,
}

/// Groups and lists a query scans, by kind (measured at build time): the lists of the nearest
/// groups, nearest centroid first, at most as many as the list count and none whose centroid's
/// cosine trails the nearest list's by more than the gap. A query whose nearest lists stand out
/// fetches fewer lists than one among many equally near lists.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probes {
    /// Lists, for image queries (at most).
    pub image: u32,
    /// Lists, for text queries (at most).
    pub text: u32,
    /// Groups whose lists an image query ranks.
    pub image_groups: u32,
    /// Groups whose lists a text query ranks.
    pub text_groups: u32,
    /// Cosine gap to the nearest list beyond which an image query stops ([`Probes::NO_GAP`]:
    /// never).
    pub image_gap: f32,
    /// The same for text queries.
    pub text_gap: f32,
}

impl Probes {
    /// A gap no cosine difference exceeds: the list count alone decides.
    pub const NO_GAP: f32 = 2.0;

    /// Every kind probes `lists` lists within `groups` groups, with no gap.
    pub fn counts(groups: u32, lists: u32) -> Self {
        Self {
            image: lists,
            text: lists,
            image_groups: groups,
            text_groups: groups,
            image_gap: Self::NO_GAP,
            text_gap: Self::NO_GAP,
        }
    }

    /// The gap for `kind`.
    pub fn gap(self, kind: QueryKind) -> f32 {
        match kind {
            QueryKind::Image => self.image_gap,
            QueryKind::Text => self.text_gap,
        }
    }

    /// The list count for `kind`.
    pub fn of(self, kind: QueryKind) -> u32 {
        match kind {
            QueryKind::Image => self.image,
            QueryKind::Text => self.text,
        }
    }

    /// The group count for `kind`.
    pub fn groups(self, kind: QueryKind) -> u32 {
        match kind {
            QueryKind::Image => self.image_groups,
            QueryKind::Text => self.text_groups,
        }
    }
}

/// The root of a partitioned index.
#[derive(Debug, Clone, PartialEq)]
pub struct Root {
    pub(crate) count: u32,
    pub(crate) probes: Probes,
    pub(crate) fit: f32,
    pub(crate) quantizer: Quantizer,
    /// Live items of each list (its rows less the removed ones).
    pub(crate) sizes: Vec<u32>,
    /// Each list's first live item.
    pub(crate) starts: Vec<u32>,
    /// Rows of each list file.
    pub(crate) rows: Vec<u32>,
    /// Each list's first row, numbered across the list files.
    pub(crate) row_starts: Vec<u32>,
    /// Rows of items that left or changed since the list was written, ascending.
    pub(crate) removed: Vec<u32>,
    pub(crate) hashes: Vec<[u8; NAME_HASH_BYTES]>,
    pub(crate) metric: Metric,
    /// Centre and scale of the centroids' codes (in the group files).
    pub(crate) centroid_q: Quantizer,
    /// The group of each list (a patch's is its base list's).
    pub(crate) group_of: Vec<u16>,
    /// The base list of each patch list (the last `bases.len()` lists).
    pub(crate) bases: Vec<u32>,
    /// Each list's patch lists (derived from `bases`).
    pub(crate) patches: Vec<Vec<u32>>,
    /// Each group's base lists, in list order (derived from `group_of`).
    pub(crate) members: Vec<Vec<u32>>,
    pub(crate) directions: Vectors,
    pub(crate) group_hashes: Vec<[u8; NAME_HASH_BYTES]>,
}

/// The list files a root describes: their rows, the removed ones among them and their names'
/// hashes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lists {
    /// Rows of each list file.
    pub(crate) rows: Vec<u32>,
    /// Removed rows, ascending, numbered across the files in list order.
    pub(crate) removed: Vec<u32>,
    /// The hash each list file's name carries.
    pub(crate) hashes: Vec<[u8; NAME_HASH_BYTES]>,
    /// The base list of each patch list (the last lists).
    pub(crate) bases: Vec<u32>,
}

/// Each list's live items and first row, given its rows and the removed rows.
fn live_sizes(rows: &[u32], removed: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let row_starts = starts(rows);
    let sizes = rows
        .iter()
        .zip(&row_starts)
        .map(|(&n, &first)| {
            let end = first.saturating_add(n);
            let gone =
                removed.partition_point(|&r| r < end) - removed.partition_point(|&r| r < first);
            n - gone as u32
        })
        .collect();
    (sizes, row_starts)
}

/// A list file's bytes.
pub fn list_bytes(dim: usize, codes: &[i8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(LIST_HEADER + codes.len());
    out.extend_from_slice(LIST_MAGIC);
    for w in [LIST_VERSION, dim as u32, (codes.len() / dim.max(1)) as u32] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend(codes.iter().map(|&c| c as u8));
    out
}

pub(crate) fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Each group's base lists, given the groups of the base lists.
fn members(group_of: &[u16], groups: usize) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); groups];
    for (j, &g) in group_of.iter().enumerate() {
        if let Some(m) = out.get_mut(g as usize) {
            m.push(j as u32);
        }
    }
    out
}

/// Each list's patch lists, given the base list of each patch (the last of `lists`).
fn patches(lists: usize, bases: &[u32]) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); lists];
    let first = lists - bases.len();
    for (p, &b) in bases.iter().enumerate() {
        out[b as usize].push((first + p) as u32);
    }
    out
}

impl Root {
    /// Describes lists of `sizes` items whose files hash to `hashes` (see [`name_hash_of`]), with
    /// `centroids` (one per list, grouped here) and the items' `quantizer`; every list and group
    /// is probed until [`Root::set_probes`]. Returns the root and the group files, in group order.
    pub fn new(
        quantizer: Quantizer,
        centroids: &Centroids,
        sizes: Vec<u32>,
        hashes: Vec<[u8; NAME_HASH_BYTES]>,
        fit: f32,
    ) -> Result<(Self, Vec<Vec<u8>>)> {
        let grouping = groups::group(centroids)?;
        let lists = Lists {
            rows: sizes,
            removed: Vec::new(),
            hashes,
            bases: Vec::new(),
        };
        Self::assemble(quantizer, centroids, lists, fit, grouping)
    }

    /// A root over list files described by `lists`, whose base lists are grouped by `grouping`.
    pub(crate) fn assemble(
        quantizer: Quantizer,
        centroids: &Centroids,
        lists: Lists,
        fit: f32,
        grouping: groups::Grouping,
    ) -> Result<(Self, Vec<Vec<u8>>)> {
        let n_groups = grouping.directions.len();
        let base_groups = lists.bases.iter().map(|&b| grouping.of[b as usize]);
        let group_of = (grouping.of.iter().copied().chain(base_groups))
            .map(u16::try_from)
            .collect::<std::result::Result<Vec<u16>, _>>()
            .map_err(|_| {
                Error::Format(format!(
                    "{n_groups} groups of lists: a root holds at most {}; use fewer lists",
                    u16::MAX
                ))
            })?;
        let Lists {
            rows,
            removed,
            hashes,
            bases,
        } = lists;
        let (sizes, row_starts) = live_sizes(&rows, &removed);
        let base_lists = rows.len() - bases.len();
        let root = Self {
            count: sizes.iter().sum(),
            probes: Probes::counts(n_groups as u32, sizes.len() as u32),
            fit,
            quantizer,
            starts: starts(&sizes),
            sizes,
            rows,
            row_starts,
            removed,
            hashes,
            metric: centroids.metric.clone(),
            centroid_q: centroids.unit.quantizer(),
            members: members(&group_of[..base_lists], n_groups),
            patches: patches(group_of.len(), &bases),
            bases,
            group_of,
            directions: grouping.directions,
            group_hashes: grouping.files.iter().map(|f| name_hash_of(f)).collect(),
        };
        Ok((root, grouping.files))
    }

    /// Number of items.
    pub fn count(&self) -> u32 {
        self.count
    }
    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        self.quantizer.dim()
    }
    /// Number of lists.
    pub fn lists(&self) -> usize {
        self.sizes.len()
    }
    /// Number of groups of lists.
    pub fn groups(&self) -> usize {
        self.members.len()
    }
    /// The group of list `j` (a patch's is its base list's).
    pub fn group_of(&self, j: usize) -> usize {
        self.group_of[j] as usize
    }
    /// Number of lists with a centroid: all but the patch lists, which follow them.
    pub fn base_lists(&self) -> usize {
        self.lists() - self.bases.len()
    }
    /// The list whose centroid list `j` is probed with: itself, or a patch's base list.
    pub fn base_of(&self, j: usize) -> usize {
        match j.checked_sub(self.base_lists()) {
            None => j,
            Some(p) => self.bases[p] as usize,
        }
    }
    /// The patch lists of list `j`, scanned whenever it is.
    pub fn patches_of(&self, j: usize) -> &[u32] {
        &self.patches[j]
    }
    /// Live items of list `j` and its patches.
    pub fn size_with_patches(&self, j: usize) -> u32 {
        self.sizes[j]
            + self.patches[j]
                .iter()
                .map(|&p| self.sizes[p as usize])
                .sum::<u32>()
    }
    /// Bytes of list `j`'s file and its patches' files, those holding live items: what probing
    /// it fetches.
    pub fn probe_bytes(&self, j: usize) -> u64 {
        let patches = self.patches[j].iter().map(|&p| p as usize);
        std::iter::once(j)
            .chain(patches)
            .filter(|&l| self.sizes[l] > 0)
            .map(|l| self.file(l).size)
            .sum()
    }
    /// Groups and lists a query scans, by kind (measured at build time).
    pub fn probes(&self) -> Probes {
        self.probes
    }
    /// Sets the probe counts.
    pub fn set_probes(&mut self, probes: Probes) {
        let lists = |p: u32| p.clamp(1, self.lists() as u32);
        let groups = |p: u32| p.clamp(1, self.groups() as u32);
        let gap = |g: f32| {
            if g.is_nan() {
                Probes::NO_GAP
            } else {
                g.clamp(0.0, Probes::NO_GAP)
            }
        };
        self.probes = Probes {
            image: lists(probes.image),
            text: lists(probes.text),
            image_groups: groups(probes.image_groups),
            text_groups: groups(probes.text_groups),
            image_gap: gap(probes.image_gap),
            text_gap: gap(probes.text_gap),
        };
    }
    /// Mean cosine of the items to their list's centroid when the lists were made.
    pub fn fit(&self) -> f32 {
        self.fit
    }
    /// The items' int8 centre and scale.
    pub fn quantizer(&self) -> &Quantizer {
        &self.quantizer
    }
    /// Items of list `j`: first item and count.
    pub fn range(&self, j: usize) -> (u32, u32) {
        (self.starts[j], self.sizes[j])
    }
    /// Rows of list `j`'s file, live or removed.
    pub fn rows(&self, j: usize) -> u32 {
        self.rows[j]
    }
    /// The removed rows of list `j`, numbered from its first row.
    pub fn removed_in(&self, j: usize) -> impl Iterator<Item = u32> + '_ {
        let (first, n) = (self.row_starts[j], self.rows[j]);
        let from = self.removed.partition_point(|&r| r < first);
        let to = self
            .removed
            .partition_point(|&r| r < first.saturating_add(n));
        self.removed[from..to].iter().map(move |&r| r - first)
    }
    /// Removed rows across the list files (kept until a rebuild rewrites their lists).
    pub fn removed(&self) -> usize {
        self.removed.len()
    }
    /// The list holding item `item`.
    pub fn list_of(&self, item: u32) -> usize {
        self.starts
            .partition_point(|&s| s <= item)
            .saturating_sub(1)
    }

    /// Number of files beside the root: the lists, then the groups.
    pub fn file_count(&self) -> usize {
        self.lists() + self.groups()
    }
    /// File `j` beside the root: list `j` below [`Root::lists`], else group `j - lists`.
    pub fn file(&self, j: usize) -> FileRef {
        let (stem, hash, size) = match j.checked_sub(self.lists()) {
            None => (
                LIST_STEM,
                &self.hashes[j],
                LIST_HEADER + self.rows[j] as usize * self.dim(),
            ),
            Some(g) => (
                GROUP_STEM,
                &self.group_hashes[g],
                groups::HEADER + self.members[g].len() * (4 + self.dim()),
            ),
        };
        FileRef::from_name_hash(stem, "bin", size as u64, hash)
    }
    /// Every file beside the root, lists then groups.
    pub fn files(&self) -> Vec<FileRef> {
        (0..self.file_count()).map(|j| self.file(j)).collect()
    }

    /// Groups holding a non-empty list, nearest direction first (ties to the lower group).
    pub fn ranked_groups(&self, embedding: &[f32]) -> Vec<usize> {
        let d = &self.directions;
        d.search(&d.query(embedding), self.groups(), None)
            .into_iter()
            .map(|h| h.index as usize)
            .filter(|&g| {
                let members = &self.members[g];
                members
                    .iter()
                    .any(|&j| self.size_with_patches(j as usize) > 0)
            })
            .collect()
    }

    /// The groups whose lists a query of `kind` ranks: the nearest, as many as its group probe
    /// count (exactly what the build measured), and with `allowed`, more until they hold as many
    /// lists with allowed items as it probes and at least `k` allowed items.
    pub fn plan_groups(
        &self,
        embedding: &[f32],
        kind: QueryKind,
        k: usize,
        allowed: Option<&[bool]>,
    ) -> Vec<usize> {
        let (want_groups, want_lists) = (
            self.probes.groups(kind) as usize,
            self.probes.of(kind) as usize,
        );
        let (mut out, mut lists, mut held) = (Vec::new(), 0usize, 0usize);
        for g in self.ranked_groups(embedding) {
            for &j in &self.members[g] {
                let here = self.allowed_in(j as usize, allowed);
                lists += usize::from(here > 0);
                held += here;
            }
            out.push(g);
            if out.len() >= want_groups && (allowed.is_none() || (lists >= want_lists && held >= k))
            {
                break;
            }
        }
        out
    }

    /// Items of list `j` and its patches that `allowed` allows (all of them without it).
    pub fn allowed_in(&self, j: usize, allowed: Option<&[bool]>) -> usize {
        let patches = self.patches[j].iter().map(|&p| p as usize);
        std::iter::once(j)
            .chain(patches)
            .map(|l| {
                let (first, n) = self.range(l);
                match allowed {
                    None => n as usize,
                    Some(a) => (first..first + n)
                        .filter(|&i| a.get(i as usize).copied().unwrap_or(false))
                        .count(),
                }
            })
            .sum()
    }

    /// The centroids, given every group file (in group order), a patch list's its base list's:
    /// what a rebuild keeps.
    pub fn centroids(&self, group_files: &[Vec<u8>]) -> Result<Centroids> {
        let dim = self.dim();
        let mut norms = vec![0f32; self.lists()];
        let mut codes = vec![0i8; self.lists() * dim];
        if group_files.len() != self.groups() {
            return Err(Error::Format(format!(
                "{} centroid group files for a root of {} groups",
                group_files.len(),
                self.groups()
            )));
        }
        for (g, bytes) in group_files.iter().enumerate() {
            let group = Group::from_bytes(g, bytes, dim, self.members[g].len())?;
            for (i, &j) in self.members[g].iter().enumerate() {
                let j = j as usize;
                norms[j] = group.norms[i];
                codes[j * dim..(j + 1) * dim].copy_from_slice(&group.codes[i * dim..(i + 1) * dim]);
            }
        }
        // A patch list is assigned as its base list.
        for j in self.base_lists()..self.lists() {
            let b = self.base_of(j);
            norms[j] = norms[b];
            codes.copy_within(b * dim..(b + 1) * dim, j * dim);
        }
        Ok(Centroids {
            unit: Vectors {
                dim,
                mean: self.centroid_q.mean.clone(),
                scale: self.centroid_q.scale.clone(),
                codes,
            },
            norms,
            metric: self.metric.clone(),
        })
    }

    /// The root file (see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(ROOT_MAGIC);
        let p = self.probes;
        let head = [
            ROOT_VERSION,
            self.dim() as u32,
            self.count,
            self.lists() as u32,
            self.groups() as u32,
            p.image,
            p.text,
            p.image_groups,
            p.text_groups,
        ];
        let removed = self.removed.len() as u32;
        head.iter()
            .for_each(|w| out.extend_from_slice(&w.to_le_bytes()));
        let floats = [self.fit, self.metric.lambda, p.image_gap, p.text_gap];
        floats
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        out.extend_from_slice(&removed.to_le_bytes());
        out.extend_from_slice(&(self.bases.len() as u32).to_le_bytes());
        let floats = (self.quantizer.mean.iter())
            .chain(&self.quantizer.scale)
            .chain(&self.metric.toward)
            .chain(&self.centroid_q.mean)
            .chain(&self.centroid_q.scale);
        floats.for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        self.rows
            .iter()
            .for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
        self.group_of[..self.base_lists()]
            .iter()
            .for_each(|g| out.extend_from_slice(&g.to_le_bytes()));
        self.bases
            .iter()
            .for_each(|b| out.extend_from_slice(&b.to_le_bytes()));
        self.hashes
            .iter()
            .chain(&self.group_hashes)
            .for_each(|h| out.extend_from_slice(h));
        let mut next = 0;
        for &r in &self.removed {
            crate::varint::put(&mut out, r - next);
            next = r + 1;
        }
        out.extend(self.directions.to_bytes());
        out
    }

    /// Reads a root file, checking its magic, version, sizes, groups and probe counts.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |what: String| Err(Error::Format(format!("vectors root: {what}")));
        if bytes.len() < ROOT_HEADER || &bytes[..4] != ROOT_MAGIC {
            return bad("not a vitrine vectors root (bad magic)".into());
        }
        if word(bytes, 4) != ROOT_VERSION {
            return Err(Error::Version(format!(
                "vectors root: layout version {} is not supported (this reader reads {ROOT_VERSION}); \
                 rebuild the index with this version of build-index",
                word(bytes, 4)
            )));
        }
        let w = |i: usize| word(bytes, 8 + 4 * i);
        let (dim, count, lists, groups) = (w(0) as usize, w(1), w(2) as usize, w(3) as usize);
        let removed_n = word(bytes, 56) as usize;
        let patches_n = word(bytes, 60) as usize;
        let float = |at: usize| f32::from_bits(word(bytes, at));
        let (fit, lambda) = (float(40), float(44));
        let probes = Probes {
            image: w(4),
            text: w(5),
            image_groups: w(6),
            text_groups: w(7),
            image_gap: float(48),
            text_gap: float(52),
        };
        let fixed = ROOT_HEADER
            .checked_add(20usize.saturating_mul(dim))
            .and_then(|n| n.checked_add((6 + NAME_HASH_BYTES).checked_mul(lists)?))
            .and_then(|n| n.checked_add(2usize.checked_mul(patches_n)?))
            .and_then(|n| n.checked_add(NAME_HASH_BYTES.checked_mul(groups)?));
        let shaped = dim > 0 && patches_n < lists && groups > 0 && groups <= lists - patches_n;
        // Each removed row takes a byte at least.
        let Some(fixed) = fixed.filter(|&n| shaped && n.saturating_add(removed_n) <= bytes.len())
        else {
            return bad(format!(
                "{} bytes cannot hold {lists} lists ({patches_n} of them patches) with \
                 {removed_n} removed rows in {groups} groups of width {dim}",
                bytes.len()
            ));
        };
        let floats =
            |from: usize, n: usize| -> Vec<f32> { (0..n).map(|i| float(from + 4 * i)).collect() };
        let [mean, scale, toward, c_mean, c_scale] =
            [0, 1, 2, 3, 4].map(|i| floats(ROOT_HEADER + 4 * i * dim, dim));
        if [fit, lambda]
            .iter()
            .chain(mean.iter().chain(&scale).chain(&toward))
            .chain(c_mean.iter().chain(&c_scale))
            .any(|v| !v.is_finite())
        {
            return bad("a centre, scale or metric value is not finite".into());
        }
        let at = ROOT_HEADER + 20 * dim;
        let rows: Vec<u32> = (0..lists).map(|j| word(bytes, at + 4 * j)).collect();
        let at = at + 4 * lists;
        let base_lists = lists - patches_n;
        let mut group_of: Vec<u16> = (0..base_lists)
            .map(|j| u16::from_le_bytes([bytes[at + 2 * j], bytes[at + 2 * j + 1]]))
            .collect();
        if group_of.iter().any(|&g| g as usize >= groups) {
            return bad(format!("a list's group is not below {groups}"));
        }
        let at = at + 2 * base_lists;
        let bases: Vec<u32> = (0..patches_n).map(|p| word(bytes, at + 4 * p)).collect();
        if bases.iter().any(|&b| b as usize >= base_lists) {
            return bad(format!("a patch's base list is not below {base_lists}"));
        }
        let patch_groups: Vec<u16> = bases.iter().map(|&b| group_of[b as usize]).collect();
        group_of.extend(patch_groups);
        let hash = |at: usize| name_hash_at(bytes, at);
        let at = at + 4 * patches_n;
        let hashes = (0..lists).map(|j| hash(at + NAME_HASH_BYTES * j)).collect();
        let group_hashes = (0..groups)
            .map(|g| hash(at + NAME_HASH_BYTES * (lists + g)))
            .collect();
        let total: u64 = rows.iter().map(|&s| u64::from(s)).sum();
        let (mut at, mut next, mut removed) = (fixed, 0u64, Vec::with_capacity(removed_n));
        for _ in 0..removed_n {
            let row = crate::varint::get(bytes, &mut at).map(|gap| next + u64::from(gap));
            match row {
                Some(r) if r < total => {
                    removed.push(r as u32);
                    next = r + 1;
                }
                _ => return bad(format!("the removed rows are not rows below {total}")),
            }
        }
        let directions = Vectors::from_bytes(&bytes[at..])?;
        if directions.len() != groups || directions.dim() != dim {
            return bad(format!(
                "{} group directions of width {}, expected {groups} of width {dim}",
                directions.len(),
                directions.dim()
            ));
        }
        if total != u64::from(count) + removed_n as u64 || total > u64::from(u32::MAX) {
            return bad(format!(
                "the list sizes do not add up to {count} items and {removed_n} removed rows"
            ));
        }
        let (sizes, row_starts) = live_sizes(&rows, &removed);
        let within = |p: u32, n: usize| (1..=n).contains(&(p as usize));
        if !within(probes.image, lists)
            || !within(probes.text, lists)
            || !within(probes.image_groups, groups)
            || !within(probes.text_groups, groups)
            || ![probes.image_gap, probes.text_gap]
                .iter()
                .all(|g| (0.0..=Probes::NO_GAP).contains(g))
        {
            return bad(format!(
                "probes {probes:?} are not within 1..={lists} lists, 1..={groups} groups and \
                 gaps 0..={}",
                Probes::NO_GAP
            ));
        }
        Ok(Self {
            count,
            probes,
            fit,
            quantizer: Quantizer { mean, scale },
            starts: starts(&sizes),
            sizes,
            rows,
            row_starts,
            removed,
            hashes,
            metric: Metric { toward, lambda },
            centroid_q: Quantizer {
                mean: c_mean,
                scale: c_scale,
            },
            members: members(&group_of[..base_lists], groups),
            patches: patches(lists, &bases),
            bases,
            group_of,
            directions,
            group_hashes,
        })
    }
}

fn starts(sizes: &[u32]) -> Vec<u32> {
    let mut at = 0u32;
    sizes
        .iter()
        .map(|&s| {
            let first = at;
            at = at.saturating_add(s);
            first
        })
        .collect()
}
