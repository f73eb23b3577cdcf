//! The centroids of a partitioned index, split into groups of nearby lists so a cold query does
//! not download every centroid: the root keeps one direction per group, a query ranks those and
//! fetches the few group files it needs (each holding its lists' centroids), then ranks their
//! lists. At a million items this cuts the root from 1.57 MB to 0.16 MB.
//!
//! Group file, `lists/group.<hash>.bin` (little-endian): magic `VTRG`, u32 version 1, u32 `dim`,
//! u32 `count`, f32×count centroid lengths, i8 codes count×dim (under the root's centroid centre
//! and scale), for the group's lists in list order.

use crate::partition::{Centroids, assign, train};
use crate::vectors::Vectors;
use crate::{Error, Result};

const MAGIC: &[u8; 4] = b"VTRG";
const VERSION: u32 = 1;
pub(crate) const HEADER: usize = 16;
/// The stem of group file names.
pub const GROUP_STEM: &str = "lists/group";
/// The seed groups are trained with (fixed: equal centroids give equal groups).
const SEED: u64 = 0x6120_0F57_A700;

/// The group count for `lists` lists: `√lists` (≈ 53 at a million items), which balances the
/// root (one direction per group) against the group files a query fetches.
pub fn default_groups(lists: usize) -> usize {
    ((lists as f64).sqrt().round() as usize).clamp(1, lists.max(1))
}

/// Lists grouped by their centroids' directions.
#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    /// The group of each list.
    pub of: Vec<u32>,
    /// One direction per group (the mean of its centroids).
    pub directions: Vectors,
    /// Each group's file, in group order.
    pub files: Vec<Vec<u8>>,
}

/// Groups `centroids` (as decoded from their stored codes, so a rebuild that keeps the centroids
/// keeps the groups) by seeded k-means under their own metric.
pub fn group(centroids: &Centroids) -> Result<Grouping> {
    let unit = &centroids.unit;
    let (lists, dim) = (unit.len(), unit.dim());
    // The centroids as items are assigned to them, grouped under the same metric: lists narrow
    // along the text direction make groups narrow along it, so a text query needs few groups.
    let points = centroids.decoded();
    let metric = &centroids.metric;
    let wanted = default_groups(lists);
    let means = train(&points, dim, wanted, SEED, metric);
    let of: Vec<u32> = assign(&points, dim, &means, metric)
        .iter()
        .map(|a| a.0)
        .collect();
    let rows: Vec<Vec<f32>> = means
        .chunks_exact(dim)
        .map(|m| {
            if m.iter().all(|x| *x == 0.0) {
                let mut one = vec![0.0; dim];
                one[0] = 1.0;
                one
            } else {
                m.to_vec()
            }
        })
        .collect();
    let files = (0..rows.len() as u32)
        .map(|g| {
            let members: Vec<usize> = (0..lists).filter(|&j| of[j] == g).collect();
            group_bytes(centroids, &members)
        })
        .collect();
    Ok(Grouping {
        of,
        directions: Vectors::quantize(&rows)?,
        files,
    })
}

/// The file of a group holding lists `members` (in list order).
fn group_bytes(centroids: &Centroids, members: &[usize]) -> Vec<u8> {
    let dim = centroids.unit.dim();
    let mut out = Vec::with_capacity(HEADER + members.len() * (4 + dim));
    out.extend_from_slice(MAGIC);
    for w in [VERSION, dim as u32, members.len() as u32] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    for &j in members {
        let norm = centroids.norms.get(j).copied().unwrap_or(1.0);
        out.extend_from_slice(&norm.to_le_bytes());
    }
    for &j in members {
        out.extend(centroids.unit.codes(j).iter().map(|&c| c as u8));
    }
    out
}

/// A group file read back: its lists' centroid lengths and codes, in list order.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Each centroid's length.
    pub norms: Vec<f32>,
    /// Item-major int8 codes of the centroids' directions.
    pub codes: Vec<i8>,
}

impl Group {
    /// Reads group `g`'s file, which must hold `count` centroids of width `dim`.
    pub fn from_bytes(g: usize, bytes: &[u8], dim: usize, count: usize) -> Result<Self> {
        let bad = |what: String| Err(Error::Format(format!("centroid group file {g}: {what}")));
        let want = HEADER + count * (4 + dim);
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        if bytes.len() != want || &bytes[..4] != MAGIC || word(4) != VERSION {
            return bad(format!(
                "{} bytes, expected a group of {count} centroids ({want} bytes)",
                bytes.len()
            ));
        }
        if word(8) as usize != dim || word(12) as usize != count {
            return bad("its width or count differs from the root's".into());
        }
        let norms: Vec<f32> = (0..count)
            .map(|i| f32::from_bits(word(HEADER + 4 * i)))
            .collect();
        if norms.iter().any(|n| !n.is_finite()) {
            return bad("a centroid length is not finite".into());
        }
        let at = HEADER + 4 * count;
        Ok(Self {
            norms,
            codes: bytes[at..].iter().map(|&b| b as i8).collect(),
        })
    }
}
