//! Helpers of the partition benchmark: how CLIP-like the data is, what else a first load holds,
//! and a parallel map.

use std::io::Write;

use vitrine_index::chunks::{ChunkEntry, ChunkTable, METADATA_STEM, PACK_STEM};
use vitrine_index::lists::{ListIndex, QueryKind, Root};
use vitrine_index::partition::dot;
use vitrine_index::{CHUNK_SIZE, FileRef, ItemTable};

use crate::data::{self, DIM, Mixture};
use crate::{DATA_SEED, MB, TEXT_QUERIES};

/// Per query of `kind`: the bytes of the group files and of the list files a cold query fetches
/// (planned for [`vitrine_search::WINDOW`] results, as the page does).
pub(crate) fn cold(
    root: &Root,
    index: &ListIndex,
    queries: &[Vec<f32>],
    kind: QueryKind,
) -> Vec<(f64, f64)> {
    let k = vitrine_search::WINDOW;
    let size = |j: usize| root.file(j).size as f64;
    queries
        .iter()
        .map(|q| {
            let groups = root.plan_groups(q, kind, k, None);
            let lists = index.plan(q, kind, k, None).unwrap_or_default();
            let groups: f64 = groups.iter().map(|&g| size(root.lists() + g)).sum();
            (groups, lists.iter().map(|&j| size(j)).sum())
        })
        .collect()
}

pub(crate) fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// What the page's first load holds beside the vectors at this size: the chunk table (one entry
/// per chunk of the lists) and an item table of title term counts (3 to 9, at random), with no
/// facet or filter (a shop's facets and filters add to it; ids live in the keyword shards).
pub(crate) fn first_load(root: &Root) -> anyhow::Result<String> {
    let file = |stem: &str, at: u32| FileRef::named(stem, "bin", &at.to_le_bytes());
    let chunks: Vec<ChunkEntry> = (0..root.lists())
        .flat_map(|j| {
            let (first, count) = root.range(j);
            (first..first + count)
                .step_by(CHUNK_SIZE)
                .map(move |s| ChunkEntry {
                    first: s,
                    count: (first + count - s).min(CHUNK_SIZE as u32),
                    metadata: file(METADATA_STEM, s),
                    pack: Some(file(PACK_STEM, s)),
                })
        })
        .collect();
    let count = chunks.len();
    let table = ChunkTable { chunks }.to_bytes().len() as f64;
    let n = root.count() as usize;
    let mut rng = data::Rng::new(DATA_SEED, 0x717E);
    let items = ItemTable {
        count: n as u32,
        title_terms: (0..n).map(|_| (3 + rng.below(7)) as u8).collect(),
        ..ItemTable::default()
    };
    let json = serde_json::to_vec(&items)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&json)?;
    let gzipped = gz.finish()?.len() as f64;
    Ok(format!(
        "first load beside the vectors (the page's tables): chunk table {:.2} MB ({} chunks); \
         item table of title term counts (no facets or filters; ids are in the keyword shards), {:.1} MB ({:.1} MB \
         gzipped)",
        table / MB,
        count,
        json.len() as f64 / MB,
        gzipped / MB
    ))
}

/// Cosines that say how CLIP-like the data is: random pairs, items to their sub-topic centre and
/// their 10th neighbour (int8 scores, exact scan), text queries to their best image.
pub(crate) fn realism(
    mix: &Mixture,
    unit: &[f32],
    labels: &[u32],
    index: &ListIndex,
    order: &[u32],
) {
    let n = labels.len();
    let row = |i: usize| &unit[i * DIM..(i + 1) * DIM];
    let mut rng = data::Rng::new(DATA_SEED, 0xC05);
    let pairs: Vec<f64> = (0..1000)
        .map(|_| f64::from(dot(row(rng.below(n)), row(rng.below(n)))))
        .collect();
    let sample: Vec<u32> = (0..n as u32).step_by(n.div_ceil(1000)).collect();
    let all: Vec<usize> = (0..index.root().lists()).collect();
    let scan = |q: &[f32], k: usize| index.scan(q, &all, k, None).unwrap_or_default();
    let per_item: Vec<(f64, f64, f64)> = parallel(&sample, |&k| {
        let input = order[k as usize] as usize;
        let own = labels[input];
        let hits: Vec<_> = scan(row(input), 11)
            .into_iter()
            .filter(|h| h.index != k)
            .take(10)
            .collect();
        let same = hits
            .iter()
            .filter(|h| labels[order[h.index as usize] as usize] == own)
            .count();
        let centre = dot(row(input), &mix.centre(own as usize));
        let tenth = hits.last().map_or(0.0, |h| h.score);
        (f64::from(centre), f64::from(tenth), same as f64 / 10.0)
    });
    let texts: Vec<Vec<f32>> = (0..TEXT_QUERIES).map(|q| mix.text(q)).collect();
    let best = parallel(&texts, |t: &Vec<f32>| {
        f64::from(scan(t, 1).first().map_or(0.0, |h| h.score))
    });
    let text_pairs: Vec<f64> = (0..200)
        .map(|i| f64::from(dot(&texts[i], &texts[i + 200])))
        .collect();
    let col = |f: fn(&(f64, f64, f64)) -> f64| mean(&per_item.iter().map(f).collect::<Vec<_>>());
    println!(
        "  realism: random image pairs cos {:.3} (CLIP ≈ 0.5); items to sub-topic centre {:.3}; \
         to 10th neighbour {:.3} ({} items, {:.0}% of 10-NN in own sub-topic)",
        mean(&pairs),
        col(|r| r.0),
        col(|r| r.1),
        sample.len(),
        100.0 * col(|r| r.2)
    );
    println!(
        "           text to best image cos {:.3} (CLIP ≈ 0.3), text pairs cos {:.3}, {} sub-topics",
        mean(&best),
        mean(&text_pairs),
        mix.subs()
    );
}

/// `f` over `items` on every core, in order.
pub(crate) fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let per = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|part| s.spawn(|| part.iter().map(&f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("benchmark threads do not panic"))
            .collect()
    })
}
