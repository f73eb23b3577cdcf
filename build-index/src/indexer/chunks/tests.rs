//! Chunk spans across a rebuild: a kept list is cut where its previous chunks were, less the
//! items that left, so each chunk's files can be kept; other lists are cut every `CHUNK_SIZE`.

use vitrine_index::FileRef;
use vitrine_index::chunks::{ChunkEntry, ChunkTable};

use super::{Previous, Span, spans};
use crate::indexer::lists::arrange;
use crate::indexer::lists::tests::{previous, vectors};

/// A chunk table over `spans` (file names made up: only the cuts matter here).
fn table(spans: &[Span]) -> ChunkTable {
    ChunkTable {
        chunks: spans
            .iter()
            .map(|s| ChunkEntry {
                first: s.first,
                count: s.count,
                metadata: FileRef::named("meta/chunk", "json", &s.first.to_le_bytes()),
                pack: None,
            })
            .collect(),
    }
}

#[test]
fn a_kept_list_is_cut_where_its_previous_chunks_were_less_the_items_that_left() {
    let texts = || Ok(vec![vec![0.5; 8]]);
    let unit = vectors(800, 1);
    let first = arrange(&unit, 8, Some(8), None, &texts).expect("first");
    let root = &first.lists.root;
    // A first build cuts every list every 64 items.
    let fresh = spans(root, None);
    assert!(fresh.iter().all(|s| s.previous.is_none() && s.count <= 64));
    // The largest list spans two chunks.
    let j = (0..root.lists())
        .max_by_key(|&j| root.range(j).1)
        .expect("lists");
    let (start, size) = root.range(j);
    assert!(size > 70, "{size}");
    let c = fresh
        .iter()
        .position(|s| s.first == start)
        .expect("its first chunk");
    assert_eq!(fresh[c].count, 64);
    let before = Previous {
        site: "unused".into(),
        root: root.clone(),
        table: table(&fresh),
    };
    // Its items 3, 5 (first chunk) and 70 (second chunk), in list order, leave.
    let gone = [3, 5, 70].map(|k| start + k);
    let leaving: Vec<u32> = gone.map(|k| first.lists.order[k as usize]).to_vec();
    let fewer: Vec<f32> = unit
        .chunks_exact(8)
        .enumerate()
        .filter(|(i, _)| !leaving.contains(&(*i as u32)))
        .flat_map(|(_, v)| v.to_vec())
        .collect();
    let rebuilt = arrange(&fewer, 8, Some(8), previous(&first), &texts).expect("rebuilt");
    assert!(rebuilt.note.contains("kept 8 of"), "{}", rebuilt.note);
    let got = spans(&rebuilt.lists.root, Some(&before));
    // Each previous chunk gives one chunk of its live items; the numbering closes up.
    let mut at = 0;
    let want: Vec<Span> = fresh
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let gone = gone
                .iter()
                .filter(|&&r| r >= s.first && r < s.first + s.count)
                .count() as u32;
            let span = Span {
                first: at,
                count: s.count - gone,
                previous: Some(k),
            };
            at += span.count;
            span
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!((got[c].count, got[c + 1].count), (62, 63));
    assert_eq!(at, 797);
}
