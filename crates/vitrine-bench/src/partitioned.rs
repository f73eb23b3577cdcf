//! A warm query against a partitioned index of the partition benchmark's 1M-item shape (its list
//! count and the probe counts it measured, lists of the mean size, random codes): the index part of
//! a query in the browser, ranking the root's groups, their lists' centroids and scanning the
//! probed lists.

use vitrine_index::lists::{ListIndex, Probes, QueryKind, Root, list_bytes};
use vitrine_index::name_hash_of;
use vitrine_index::partition::{Centroids, Metric, default_lists};
use vitrine_index::{Quantizer, normalize};

use crate::{median, now, synthetic};

/// Items of the shape.
const ITEMS: usize = 1_000_000;
/// The probe counts `vitrine-bench-partition` chose at 1M items (README, "A partitioned index").
/// (A query probes at most these lists; the bench times the most.)
const PROBES: Probes = Probes {
    image: 8,
    text: 21,
    image_groups: 19,
    text_groups: 25,
    image_gap: Probes::NO_GAP,
    text_gap: Probes::NO_GAP,
};
/// Results asked for, as the page does.
const K: usize = 48;

/// `n` pseudo-random int8 codes from `seed`.
fn codes(seed: u64, n: usize) -> Vec<i8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 56) as u8 as i8
        })
        .collect()
}

/// List `j`'s file: `size` random items.
fn list_file(j: usize, size: u32, dim: usize) -> Vec<u8> {
    list_bytes(dim, &codes(j as u64 + 1, size as usize * dim))
}

/// Median times of warm text and image queries (the root parsed, their lists loaded), and the
/// root's size and parse time.
pub(crate) fn run(dim: usize) -> Result<serde_json::Value, String> {
    let err = |e: vitrine_index::Error| e.to_string();
    let lists = default_lists(ITEMS);
    let sizes: Vec<u32> = (0..lists)
        .map(|j| ((j + 1) * ITEMS / lists - j * ITEMS / lists) as u32)
        .collect();
    let hashes = sizes
        .iter()
        .enumerate()
        .map(|(j, &n)| name_hash_of(&list_file(j, n, dim)))
        .collect();
    let sample: Vec<f32> = synthetic(2_000, dim)
        .iter()
        .flat_map(|v| normalize(v))
        .collect();
    let means: Vec<f32> = synthetic(lists, dim)
        .iter()
        .flat_map(|v| normalize(v).into_iter().map(|x| 0.7 * x))
        .collect();
    let centroids = Centroids::from_means(&means, dim, Metric::plain(dim)).map_err(err)?;
    let (mut root, groups) =
        Root::new(Quantizer::fit(&sample, dim), &centroids, sizes, hashes, 0.7).map_err(err)?;
    root.set_probes(PROBES);
    let bytes = root.to_bytes();
    let t = now();
    let root = Root::from_bytes(&bytes).map_err(err)?;
    let parse_ms = now() - t;
    let mut index = ListIndex::new(root);
    let queries: Vec<Vec<f32>> = synthetic(lists + 8, dim)[lists..]
        .iter()
        .map(|v| normalize(v))
        .collect();
    let mut out = serde_json::Map::new();
    for (name, kind) in [("text", QueryKind::Text), ("image", QueryKind::Image)] {
        let mut times = Vec::new();
        for q in &queries {
            // Load what the query needs (its groups, then its lists), as the page does.
            while let Err(need) = index.search(q, kind, K, None) {
                for j in need.0 {
                    let lists = index.root().lists();
                    let bytes = match j.checked_sub(lists) {
                        Some(g) => groups[g].clone(),
                        None => list_file(j, index.root().range(j).1, dim),
                    };
                    index.add_file(j, &bytes).map_err(err)?;
                }
            }
            for i in 0..6 {
                let t = now();
                let hits = index
                    .search(q, kind, K, None)
                    .map_err(|e| format!("lists {:?} not loaded", e.0))?;
                if i > 0 {
                    times.push(now() - t);
                }
                if hits.len() != K {
                    return Err(format!("{} hits, expected {K}", hits.len()));
                }
            }
        }
        out.insert(format!("{name}_query_ms"), median(times).into());
    }
    out.insert("lists".into(), lists.into());
    out.insert("text_probes".into(), PROBES.text.into());
    out.insert("image_probes".into(), PROBES.image.into());
    out.insert("groups".into(), index.root().groups().into());
    out.insert("text_group_probes".into(), PROBES.text_groups.into());
    out.insert("image_group_probes".into(), PROBES.image_groups.into());
    out.insert("root_bytes".into(), bytes.len().into());
    out.insert("root_parse_ms".into(), parse_ms.into());
    Ok(out.into())
}
