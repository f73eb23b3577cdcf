//! The centroids of a partitioned index, split into groups of nearby lists so a cold query does
//! not download every centroid: the root keeps one direction per group, a query ranks those and
//! fetches the few group files it needs (each holding its lists' centroids), then ranks their
//! lists. At a million items this cuts the root from 1.57 MB to 0.16 MB.
//!
//! Group file, `lists/group.<hash>.bin` (little-endian): magic `VTRG`, u32 version 1, u32 `dim`,
//! u32 `count`, f32×count centroid lengths, i8 codes count×dim (under the root's centroid centre
//! and scale), for the group's lists in list order.

use crate::partition::{Centroids, Metric, assign, train};
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
/// keeps the groups) by seeded k-means under their own metric, [`default_groups`] of them, then
/// bisects every group of more than twice the mean number of lists.
pub fn group(centroids: &Centroids) -> Result<Grouping> {
    let unit = &centroids.unit;
    let (lists, dim) = (unit.len(), unit.dim());
    // The centroids as items are assigned to them, grouped under the same metric: lists narrow
    // along the text direction make groups narrow along it, so a text query needs few groups.
    let points = centroids.decoded();
    let metric = &centroids.metric;
    let wanted = default_groups(lists);
    let means = train(&points, dim, wanted, SEED, metric);
    let mut of: Vec<u32> = assign(&points, dim, &means, metric)
        .iter()
        .map(|a| a.0)
        .collect();
    split_large(
        &points,
        dim,
        &mut of,
        (2 * lists).div_ceil(wanted).max(2),
        metric,
    );
    let groups = of.iter().max().map_or(0, |&g| g as usize + 1);
    let rows: Vec<Vec<f32>> = (0..groups as u32)
        .map(|g| {
            let mut sum = vec![0f32; dim];
            for (j, _) in of.iter().enumerate().filter(|(_, o)| **o == g) {
                sum.iter_mut()
                    .zip(&points[j * dim..(j + 1) * dim])
                    .for_each(|(s, x)| *s += x);
            }
            if sum.iter().all(|x| *x == 0.0) {
                sum[0] = 1.0;
            }
            sum
        })
        .collect();
    Ok(kept(centroids, of, Vectors::quantize(&rows)?))
}

/// Lists grouped as `of` says under `directions` (one per group), with each group's file: how
/// a rebuild that adds lists to the previous groups keeps the files of the groups it left alone.
pub(crate) fn kept(centroids: &Centroids, of: Vec<u32>, directions: Vectors) -> Grouping {
    let files = (0..directions.len() as u32)
        .map(|g| {
            let members: Vec<usize> = (0..of.len()).filter(|&j| of[j] == g).collect();
            group_bytes(centroids, &members)
        })
        .collect();
    Grouping {
        of,
        directions,
        files,
    }
}

/// Bisects every group of more than `limit` lists (2-means on its centroids, or halves in list
/// order when they do not separate) until none is left: a dense region of lists would otherwise
/// make one large group file that most queries near it fetch whole.
fn split_large(points: &[f32], dim: usize, of: &mut [u32], limit: usize, metric: &Metric) {
    loop {
        let groups = of.iter().max().map_or(0, |&g| g as usize + 1);
        let mut counts = vec![0usize; groups];
        of.iter().for_each(|&g| counts[g as usize] += 1);
        let Some(g) = (0..groups).find(|&g| counts[g] > limit) else {
            return;
        };
        let members: Vec<usize> = (0..of.len()).filter(|&j| of[j] == g as u32).collect();
        let sub: Vec<f32> = members
            .iter()
            .flat_map(|&j| points[j * dim..(j + 1) * dim].iter().copied())
            .collect();
        let two = train(&sub, dim, 2, SEED, metric);
        let halves = assign(&sub, dim, &two, metric);
        let mut moved: Vec<usize> = (0..members.len()).filter(|&i| halves[i].0 == 1).collect();
        if moved.is_empty() || moved.len() == members.len() {
            moved = (members.len() / 2..members.len()).collect();
        }
        moved
            .into_iter()
            .for_each(|i| of[members[i]] = groups as u32);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::Rng;

    #[test]
    fn no_group_holds_more_than_twice_the_mean_number_of_lists() {
        // 100 lists: 70 at one spot (k-means alone puts them in one group), 30 spread out.
        let dim = 8;
        let mut rng = Rng::new(5);
        let mut noise = || (rng.next_u64() % 1000) as f32 / 1000.0 - 0.5;
        let means: Vec<f32> = (0..100)
            .flat_map(|j| {
                let row: Vec<f32> = (0..dim)
                    .map(|d| if j < 70 { f32::from(d == 0) } else { noise() })
                    .collect();
                row
            })
            .collect();
        let centroids = Centroids::from_means(&means, dim, Metric::plain(dim)).unwrap();
        let grouping = group(&centroids).unwrap();
        let groups = grouping.directions.len();
        assert!(groups >= default_groups(100), "{groups}");
        let mut counts = vec![0usize; groups];
        grouping.of.iter().for_each(|&g| counts[g as usize] += 1);
        let limit = (2 * 100usize).div_ceil(default_groups(100));
        assert!(counts.iter().all(|&c| c <= limit), "{counts:?}");
        assert_eq!(grouping.files.len(), groups);
        // Seeded: the same centroids give the same groups.
        assert_eq!(group(&centroids).unwrap(), grouping);
    }
}
