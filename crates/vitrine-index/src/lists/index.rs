//! A partitioned index as a reader holds it: the root, and the list and group files loaded so
//! far. Searching asks for the files it lacks ([`NeedFiles`]): first the groups a query ranks,
//! then the lists it probes; the caller fetches them and asks again.

use super::{LIST_HEADER, LIST_MAGIC, LIST_VERSION, QueryKind, Root, word};
use crate::groups::Group;
use crate::rank::{ScanQuery, scan};
use crate::{Error, Hit, Result};

/// The files beside the root a search needs that are not loaded yet, by [`Root::file`] number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedFiles(pub Vec<usize>);

/// A partitioned index with the lists and groups loaded so far.
#[derive(Debug, Clone)]
pub struct ListIndex {
    root: Root,
    lists: Vec<Option<Vec<i8>>>,
    groups: Vec<Option<Group>>,
}

impl ListIndex {
    /// An index with no list or group loaded.
    pub fn new(root: Root) -> Self {
        let lists = vec![None; root.lists()];
        let groups = vec![None; root.groups()];
        Self {
            root,
            lists,
            groups,
        }
    }

    /// The root.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Adds file `j` beside the root ([`Root::file`]: a list, or a group after the lists), from
    /// its bytes (checked against the root's hash by the caller). A list keeps its live rows
    /// only, so its items are numbered as the root numbers them.
    pub fn add_file(&mut self, j: usize, bytes: &[u8]) -> Result<()> {
        let dim = self.root.dim();
        if let Some(g) = j.checked_sub(self.lists.len()) {
            let Some(members) = self.root.members.get(g) else {
                return Err(Error::Format(format!(
                    "vectors file {j}: the root has {} lists and {} groups",
                    self.lists.len(),
                    self.groups.len()
                )));
            };
            self.groups[g] = Some(Group::from_bytes(g, bytes, dim, members.len())?);
            return Ok(());
        }
        let bad = |what: String| Err(Error::Format(format!("list file {j}: {what}")));
        let rows = self.root.rows[j];
        let want = LIST_HEADER + rows as usize * dim;
        if bytes.len() != want || &bytes[..4] != LIST_MAGIC || word(bytes, 4) != LIST_VERSION {
            return bad(format!("{} bytes, expected a list of {want}", bytes.len()));
        }
        if word(bytes, 8) as usize != dim || word(bytes, 12) != rows {
            return bad("its width or count differs from the root's".into());
        }
        let mut removed = self.root.removed_in(j).peekable();
        let mut codes = Vec::with_capacity(self.root.sizes[j] as usize * dim);
        for (r, row) in bytes[LIST_HEADER..].chunks_exact(dim).enumerate() {
            if removed.next_if_eq(&(r as u32)).is_none() {
                codes.extend(row.iter().map(|&b| b as i8));
            }
        }
        self.lists[j] = Some(codes);
        Ok(())
    }

    /// Whether file `j` beside the root is loaded.
    pub fn has(&self, j: usize) -> bool {
        match j.checked_sub(self.lists.len()) {
            None => self.lists[j].is_some(),
            Some(g) => self.groups.get(g).is_some_and(Option::is_some),
        }
    }

    fn need(&self, files: impl IntoIterator<Item = usize>) -> Result<(), NeedFiles> {
        let missing: Vec<usize> = files.into_iter().filter(|&j| !self.has(j)).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(NeedFiles(missing))
        }
    }

    /// The non-empty base lists of `groups` (which must be loaded; a list with a non-empty patch
    /// is non-empty), nearest centroid first (ties to the lower list).
    pub fn ranked_lists(
        &self,
        embedding: &[f32],
        groups: &[usize],
    ) -> Result<Vec<usize>, NeedFiles> {
        let scored = self.scored_lists(embedding, groups)?;
        Ok(scored.into_iter().map(|(j, _)| j).collect())
    }

    /// [`ListIndex::ranked_lists`] with each list's centroid cosine to the query.
    pub fn scored_lists(
        &self,
        embedding: &[f32],
        groups: &[usize],
    ) -> Result<Vec<(usize, f32)>, NeedFiles> {
        let lists = self.root.lists();
        self.need(groups.iter().map(|g| lists + g))?;
        let q = &self.root.centroid_q;
        let query = ScanQuery::new(&q.mean, &q.scale, embedding);
        let dim = self.root.dim();
        let mut scored: Vec<(i32, usize)> = Vec::new();
        for &g in groups {
            let Some(group) = &self.groups[g] else {
                continue;
            };
            for (i, &j) in self.root.members[g].iter().enumerate() {
                if self.root.size_with_patches(j as usize) > 0 {
                    let codes = &group.codes[i * dim..(i + 1) * dim];
                    scored.push((query.raw_codes(codes), j as usize));
                }
            }
        }
        scored.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        Ok(scored
            .into_iter()
            .map(|(raw, j)| (j, query.score(raw)))
            .collect())
    }

    /// The lists a query of `kind` scans: of the groups [`Root::plan_groups`] picks, the
    /// nearest non-empty lists as its [`Probes`](super::Probes) allow (at most its list count,
    /// none trailing the nearest by more than its gap), each followed by its patch lists; with
    /// `allowed`, lists holding allowed items only, and more until they hold at least `k`.
    pub fn plan(
        &self,
        embedding: &[f32],
        kind: QueryKind,
        k: usize,
        allowed: Option<&[bool]>,
    ) -> Result<Vec<usize>, NeedFiles> {
        let probes = self.root.probes;
        let (most, gap) = (probes.of(kind) as usize, probes.gap(kind));
        let groups = self.root.plan_groups(embedding, kind, k, allowed);
        let (mut out, mut held, mut top, mut bases) = (Vec::new(), 0usize, None, 0usize);
        for (j, score) in self.scored_lists(embedding, &groups)? {
            let here = self.root.allowed_in(j, allowed);
            if here == 0 {
                continue;
            }
            let top = *top.get_or_insert(score);
            let probed = bases >= most || score < top - gap;
            if probed && (allowed.is_none() || held >= k) {
                break;
            }
            // A list whose rows all left may still have a live patch.
            if self.root.sizes[j] > 0 {
                out.push(j);
            }
            bases += 1;
            let patches = self.root.patches_of(j).iter().map(|&p| p as usize);
            out.extend(patches.filter(|&p| self.root.sizes[p] > 0));
            held += here;
        }
        Ok(out)
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
    pub fn decode(&self, item: u32) -> Result<Vec<f32>, NeedFiles> {
        let q = &self.root.quantizer;
        let codes = self
            .codes(item)
            .ok_or(NeedFiles(vec![self.root.list_of(item)]))?;
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
    ) -> Result<Vec<Hit>, NeedFiles> {
        self.need(lists.iter().copied())?;
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
    /// [`ListIndex::plan`] picks.
    pub fn search(
        &self,
        embedding: &[f32],
        kind: QueryKind,
        k: usize,
        filter: Option<&[bool]>,
    ) -> Result<Vec<Hit>, NeedFiles> {
        self.search_window(embedding, kind, k, k, filter)
    }

    /// Up to `window` best allowed items for `embedding` (for ranking fused with keywords), from
    /// lists planned to hold only the `shown` items a page displays: a filter allowing few items
    /// would otherwise have the plan fetch lists until they hold the whole window, most of a
    /// large index.
    pub fn search_window(
        &self,
        embedding: &[f32],
        kind: QueryKind,
        shown: usize,
        window: usize,
        filter: Option<&[bool]>,
    ) -> Result<Vec<Hit>, NeedFiles> {
        let lists = self.plan(embedding, kind, shown, filter)?;
        self.scan(embedding, &lists, window, filter)
    }

    /// "More like this": item `item` first, then the `k - 1` items most similar to its vector.
    pub fn like(
        &self,
        item: u32,
        k: usize,
        filter: Option<&[bool]>,
    ) -> Result<Vec<Hit>, NeedFiles> {
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
