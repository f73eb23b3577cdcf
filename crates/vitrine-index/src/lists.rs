//! The vectors as a partitioned index: a small root (centroids, list sizes and hashes, the int8
//! centre and scale, the measured probe counts) and one list file of int8 codes per list. Items
//! are numbered in list order, so list `j` holds items `start[j] .. start[j] + size[j]`; a query
//! ranks the centroids, fetches the few lists its kind needs and scores them as the flat scan
//! does. A small catalogue is one list: the same ranking as scanning everything.
//!
//! Root, `vectors.<hash>.bin` (little-endian): magic `VTRR`, u32 version 1, u32 `dim`, u32
//! `count`, u32 `lists`, u32 image probes, u32 text probes, f32 `fit`, f32 metric `lambda`,
//! f32×dim mean, f32×dim scale, f32×dim metric direction, u32×lists sizes, f32×lists centroid
//! lengths, 32 bytes×lists SHA-256 of each list file, then the centroid directions as a vectors
//! file (`VTRV`). List, `lists/list.<hash>.bin`: magic `VTRL`, u32 version 1, u32 `dim`, u32
//! `count`, i8 codes.

use crate::files::{FileRef, hashed_name, hex};
use crate::partition::{Centroids, Metric};
use crate::rank::{ScanQuery, scan};
use crate::vectors::{Quantizer, Vectors};
use crate::{Error, Hit, Result};

const ROOT_MAGIC: &[u8; 4] = b"VTRR";
const LIST_MAGIC: &[u8; 4] = b"VTRL";
const VERSION: u32 = 1;
const ROOT_HEADER: usize = 36;
const LIST_HEADER: usize = 16;
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

/// Lists a query scans, by kind (measured at build time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probes {
    /// For image queries.
    pub image: u32,
    /// For text queries.
    pub text: u32,
}

impl Probes {
    /// The count for `kind`.
    pub fn of(self, kind: QueryKind) -> u32 {
        match kind {
            QueryKind::Image => self.image,
            QueryKind::Text => self.text,
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
    pub(crate) sizes: Vec<u32>,
    pub(crate) starts: Vec<u32>,
    pub(crate) hashes: Vec<[u8; 32]>,
    pub(crate) centroids: Centroids,
}

/// A list file's bytes.
pub fn list_bytes(dim: usize, codes: &[i8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(LIST_HEADER + codes.len());
    out.extend_from_slice(LIST_MAGIC);
    for w in [VERSION, dim as u32, (codes.len() / dim.max(1)) as u32] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend(codes.iter().map(|&c| c as u8));
    out
}

/// The SHA-256 of a list file, which names it and which the root keeps to check it.
pub fn list_hash(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

impl Root {
    /// Describes lists of `sizes` items whose files hash to `hashes` (see [`list_hash`]), with
    /// `centroids` (one per list) and the items' `quantizer`; every list is probed until
    /// [`Root::set_probes`].
    pub fn new(
        quantizer: Quantizer,
        centroids: Centroids,
        sizes: Vec<u32>,
        hashes: Vec<[u8; 32]>,
        fit: f32,
    ) -> Self {
        let all = sizes.len() as u32;
        let starts = starts(&sizes);
        Self {
            count: sizes.iter().sum(),
            probes: Probes {
                image: all,
                text: all,
            },
            fit,
            quantizer,
            sizes,
            starts,
            hashes,
            centroids,
        }
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
    /// Lists a query scans, by kind (measured at build time).
    pub fn probes(&self) -> Probes {
        self.probes
    }
    /// Sets the probe counts.
    pub fn set_probes(&mut self, probes: Probes) {
        let clamp = |p: u32| p.clamp(1, self.lists() as u32);
        self.probes = Probes {
            image: clamp(probes.image),
            text: clamp(probes.text),
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
    /// The centroids.
    pub fn centroids(&self) -> &Centroids {
        &self.centroids
    }
    /// Items of list `j`: first item and count.
    pub fn range(&self, j: usize) -> (u32, u32) {
        (self.starts[j], self.sizes[j])
    }
    /// The list holding item `item`.
    pub fn list_of(&self, item: u32) -> usize {
        self.starts
            .partition_point(|&s| s <= item)
            .saturating_sub(1)
    }
    /// List `j`'s file.
    pub fn list_file(&self, j: usize) -> FileRef {
        let sha256 = hex(&self.hashes[j]);
        FileRef {
            path: hashed_name(LIST_STEM, "bin", &sha256),
            size: (LIST_HEADER + self.sizes[j] as usize * self.dim()) as u64,
            sha256,
        }
    }
    /// Every list file, in list order.
    pub fn list_files(&self) -> Vec<FileRef> {
        (0..self.lists()).map(|j| self.list_file(j)).collect()
    }

    /// Non-empty lists, nearest centroid first (ties to the lower list).
    pub fn ranked_lists(&self, embedding: &[f32]) -> Vec<usize> {
        let unit = &self.centroids.unit;
        unit.search(&unit.query(embedding), self.lists(), None)
            .into_iter()
            .map(|h| h.index as usize)
            .filter(|&j| self.sizes[j] > 0)
            .collect()
    }

    /// The lists a query of `kind` scans: the nearest non-empty lists, as many as its probe
    /// count; with `allowed`, lists holding allowed items only, until they hold at least `k`.
    pub fn plan(
        &self,
        embedding: &[f32],
        kind: QueryKind,
        k: usize,
        allowed: Option<&[bool]>,
    ) -> Vec<usize> {
        let probes = self.probes.of(kind) as usize;
        let ranked = self.ranked_lists(embedding);
        let Some(allowed) = allowed else {
            return ranked.into_iter().take(probes).collect();
        };
        let (mut out, mut held) = (Vec::new(), 0usize);
        for j in ranked {
            let (first, n) = self.range(j);
            let here = (first..first + n)
                .filter(|&i| allowed.get(i as usize).copied().unwrap_or(false))
                .count();
            if here == 0 {
                continue;
            }
            out.push(j);
            held += here;
            if out.len() >= probes && held >= k {
                break;
            }
        }
        out
    }

    /// The root file (see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(ROOT_MAGIC);
        let head = [
            VERSION,
            self.dim() as u32,
            self.count,
            self.lists() as u32,
            self.probes.image,
            self.probes.text,
        ];
        head.iter()
            .for_each(|w| out.extend_from_slice(&w.to_le_bytes()));
        let metric = &self.centroids.metric;
        let floats = [self.fit, metric.lambda].into_iter();
        let floats = floats
            .chain(self.quantizer.mean.iter().copied())
            .chain(self.quantizer.scale.iter().copied())
            .chain(metric.toward.iter().copied());
        floats.for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        self.sizes
            .iter()
            .for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
        self.centroids
            .norms
            .iter()
            .for_each(|n| out.extend_from_slice(&n.to_le_bytes()));
        self.hashes.iter().for_each(|h| out.extend_from_slice(h));
        out.extend(self.centroids.unit.to_bytes());
        out
    }

    /// Reads a root file, checking its magic, version, sizes, probe counts and centroids.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |what: String| Err(Error::Format(format!("vectors root: {what}")));
        if bytes.len() < ROOT_HEADER || &bytes[..4] != ROOT_MAGIC {
            return bad("not a vitrine vectors root (bad magic)".into());
        }
        if word(bytes, 4) != VERSION {
            return bad(format!(
                "layout version {} is not supported",
                word(bytes, 4)
            ));
        }
        let (dim, count, lists) = (
            word(bytes, 8) as usize,
            word(bytes, 12),
            word(bytes, 16) as usize,
        );
        let probes = Probes {
            image: word(bytes, 20),
            text: word(bytes, 24),
        };
        let float = |at: usize| f32::from_bits(word(bytes, at));
        let (fit, lambda) = (float(28), float(32));
        let fixed = ROOT_HEADER
            .checked_add(12usize.saturating_mul(dim))
            .and_then(|n| n.checked_add(40usize.checked_mul(lists)?));
        let Some(fixed) = fixed.filter(|&n| dim > 0 && lists > 0 && n <= bytes.len()) else {
            return bad(format!(
                "{} bytes cannot hold {lists} lists of width {dim}",
                bytes.len()
            ));
        };
        let floats =
            |from: usize, n: usize| -> Vec<f32> { (0..n).map(|i| float(from + 4 * i)).collect() };
        let mean = floats(ROOT_HEADER, dim);
        let scale = floats(ROOT_HEADER + 4 * dim, dim);
        let toward = floats(ROOT_HEADER + 8 * dim, dim);
        let at = ROOT_HEADER + 12 * dim;
        let sizes: Vec<u32> = (0..lists).map(|j| word(bytes, at + 4 * j)).collect();
        let norms = floats(at + 4 * lists, lists);
        if [fit, lambda]
            .iter()
            .chain(&mean)
            .chain(&scale)
            .chain(&toward)
            .chain(&norms)
            .any(|v| !v.is_finite())
        {
            return bad("a centre, scale, metric or centroid length is not finite".into());
        }
        let at = at + 8 * lists;
        let hashes = (0..lists)
            .map(|j| {
                bytes[at + 32 * j..at + 32 * j + 32]
                    .try_into()
                    .unwrap_or([0; 32])
            })
            .collect();
        let unit = Vectors::from_bytes(&bytes[fixed..])?;
        if unit.len() != lists || unit.dim() != dim {
            return bad(format!(
                "{} centroids of width {}, expected {lists} of width {dim}",
                unit.len(),
                unit.dim()
            ));
        }
        if sizes.iter().map(|&s| u64::from(s)).sum::<u64>() != u64::from(count) {
            return bad(format!("the list sizes do not add up to {count} items"));
        }
        let within = |p: u32| (1..=lists).contains(&(p as usize));
        if !within(probes.image) || !within(probes.text) {
            return bad(format!(
                "probes {} (image) and {} (text) are not within 1..={lists}",
                probes.image, probes.text
            ));
        }
        Ok(Self {
            count,
            probes,
            fit,
            quantizer: Quantizer { mean, scale },
            starts: starts(&sizes),
            sizes,
            hashes,
            centroids: Centroids {
                unit,
                norms,
                metric: Metric { toward, lambda },
            },
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

/// The lists a search needs that are not loaded yet, nearest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedLists(pub Vec<usize>);

/// A partitioned index with the lists loaded so far.
#[derive(Debug, Clone)]
pub struct ListIndex {
    root: Root,
    lists: Vec<Option<Vec<i8>>>,
}

impl ListIndex {
    /// An index with no list loaded.
    pub fn new(root: Root) -> Self {
        let lists = vec![None; root.lists()];
        Self { root, lists }
    }

    /// The root.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Adds list `j` from its file (checked against the root's hash by the caller).
    pub fn add_list(&mut self, j: usize, bytes: &[u8]) -> Result<()> {
        let bad = |what: String| Err(Error::Format(format!("list file {j}: {what}")));
        if j >= self.lists.len() {
            return bad(format!("the root has {} lists", self.lists.len()));
        }
        let dim = self.root.dim();
        let want = LIST_HEADER + self.root.sizes[j] as usize * dim;
        if bytes.len() != want || &bytes[..4] != LIST_MAGIC || word(bytes, 4) != VERSION {
            return bad(format!("{} bytes, expected a list of {want}", bytes.len()));
        }
        if word(bytes, 8) as usize != dim || word(bytes, 12) != self.root.sizes[j] {
            return bad("its width or count differs from the root's".into());
        }
        self.lists[j] = Some(bytes[LIST_HEADER..].iter().map(|&b| b as i8).collect());
        Ok(())
    }

    /// Whether list `j` is loaded.
    pub fn has(&self, j: usize) -> bool {
        self.lists.get(j).is_some_and(Option::is_some)
    }

    fn need(&self, lists: &[usize]) -> Result<(), NeedLists> {
        let missing: Vec<usize> = lists.iter().copied().filter(|&j| !self.has(j)).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(NeedLists(missing))
        }
    }

    /// The int8 codes of item `item`, if its list is loaded.
    fn codes(&self, item: u32) -> Option<&[i8]> {
        let j = self.root.list_of(item);
        let dim = self.root.dim();
        let local = (item - self.root.starts[j]) as usize;
        self.lists[j]
            .as_deref()
            .map(|c| &c[local * dim..(local + 1) * dim])
    }

    /// Item `item` decoded back to floats, if its list is loaded.
    pub fn decode(&self, item: u32) -> Result<Vec<f32>, NeedLists> {
        let q = &self.root.quantizer;
        let codes = self
            .codes(item)
            .ok_or(NeedLists(vec![self.root.list_of(item)]))?;
        Ok(codes
            .iter()
            .enumerate()
            .map(|(d, &c)| q.mean[d] + q.scale[d] * f32::from(c))
            .collect())
    }

    /// The `k` best items for `embedding` over `lists` (which must be loaded).
    pub fn scan(
        &self,
        embedding: &[f32],
        lists: &[usize],
        k: usize,
        filter: Option<&[bool]>,
    ) -> Result<Vec<Hit>, NeedLists> {
        self.need(lists)?;
        let q = ScanQuery::new(
            &self.root.quantizer.mean,
            &self.root.quantizer.scale,
            embedding,
        );
        let segments = lists
            .iter()
            .map(|&j| (self.root.starts[j], self.lists[j].as_deref().unwrap_or(&[])));
        Ok(scan(&q, self.root.dim(), segments, k, filter))
    }

    /// The `k` most similar items to `embedding`, a query of `kind`, over the lists
    /// [`Root::plan`] picks.
    pub fn search(
        &self,
        embedding: &[f32],
        kind: QueryKind,
        k: usize,
        filter: Option<&[bool]>,
    ) -> Result<Vec<Hit>, NeedLists> {
        let lists = self.root.plan(embedding, kind, k, filter);
        self.scan(embedding, &lists, k, filter)
    }

    /// "More like this": item `item` first, then the `k - 1` items most similar to its vector.
    pub fn like(
        &self,
        item: u32,
        k: usize,
        filter: Option<&[bool]>,
    ) -> Result<Vec<Hit>, NeedLists> {
        let v = self.decode(item)?;
        let q = ScanQuery::new(&self.root.quantizer.mean, &self.root.quantizer.scale, &v);
        let own = self.codes(item).map_or(0.0, |c| q.score_codes(c));
        let mut hits = vec![Hit {
            index: item,
            score: own,
        }];
        if k > 1 {
            let rest = self.search(&v, QueryKind::Image, k, filter)?;
            hits.extend(rest.into_iter().filter(|h| h.index != item).take(k - 1));
        }
        hits.truncate(k);
        Ok(hits)
    }
}
