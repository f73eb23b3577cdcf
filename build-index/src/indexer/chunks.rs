//! Writes item metadata in chunks of up to `CHUNK_SIZE` items that never span two lists of the
//! vectors, each with a thumbnail pack (its thumbnails end to end, each stored once), and the
//! chunk table naming them: a list's metadata and thumbnails travel together. A list file a
//! rebuild keeps keeps its chunks' spans of rows ([`spans`]), so an unchanged chunk keeps its
//! files and a chunk that only lost items keeps its pack ([`previous`]): the thumbnails, most of
//! a site's bytes, are uploaded again only for new and rewritten lists.

mod previous;

use std::collections::HashMap;

use anyhow::Result;
use vitrine_index::chunks::{ChunkEntry, ChunkTable, METADATA_STEM, PACK_STEM};
use vitrine_index::lists::Root;
use vitrine_index::{CHUNK_SIZE, FileRef, Item, MetadataChunk, Thumbnail, sha256_hex};

pub(crate) use previous::Previous;

use super::write::Staging;

/// One chunk to write: its items, and the previous build's chunk over the same rows of a kept
/// list file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// First item.
    pub(crate) first: u32,
    /// Number of items.
    pub(crate) count: u32,
    /// The previous chunk (its position in the previous table) whose rows this one keeps.
    pub(crate) previous: Option<usize>,
}

/// Writes the chunks of `items` (with `thumbs[i]` the JPEG of item `i`, if it has one) over the
/// lists of `root`, following the previous build's chunks where `root` kept its list files, and
/// returns their table and how many packs it kept.
pub(crate) fn write(
    staging: &Staging,
    mut items: Vec<Item>,
    thumbs: &[Option<&[u8]>],
    root: &Root,
    previous: Option<&Previous>,
) -> Result<(ChunkTable, usize)> {
    let mut table = ChunkTable::default();
    let mut kept_packs = 0;
    for span in spans(root, previous) {
        let (start, stop) = (span.first as usize, (span.first + span.count) as usize);
        let reused = match (previous, span.previous) {
            (Some(p), Some(k)) => p.pack_holding(k, &thumbs[start..stop]),
            _ => None,
        };
        let pack = match reused {
            Some((pack, bytes, placed)) => {
                for i in start..stop {
                    if let Some(jpeg) = thumbs[i] {
                        items[i].thumbnail = Some(placed[&sha16(jpeg)].clone());
                    }
                }
                kept_packs += 1;
                staging.write(&pack.path, &bytes)?;
                Some(pack)
            }
            None => {
                let mut pack = Vec::new();
                let mut placed: HashMap<String, Thumbnail> = HashMap::new();
                for i in start..stop {
                    let Some(jpeg) = thumbs[i] else { continue };
                    let sha = sha16(jpeg);
                    let thumb = placed.entry(sha.clone()).or_insert_with(|| {
                        let t = Thumbnail {
                            offset: pack.len() as u32,
                            size: jpeg.len() as u32,
                            sha256: sha,
                        };
                        pack.extend_from_slice(jpeg);
                        t
                    });
                    items[i].thumbnail = Some(thumb.clone());
                }
                (!pack.is_empty())
                    .then(|| put(staging, PACK_STEM, "bin", &pack))
                    .transpose()?
            }
        };
        let chunk = MetadataChunk {
            first: span.first,
            items: items[start..stop].to_vec(),
        };
        let metadata = put(staging, METADATA_STEM, "json", &serde_json::to_vec(&chunk)?)?;
        table.chunks.push(ChunkEntry {
            first: span.first,
            count: span.count,
            metadata,
            pack,
        });
    }
    Ok((table, kept_packs))
}

/// The first 16 hex digits of a thumbnail's SHA-256, as [`Thumbnail::sha256`] holds them.
pub(crate) fn sha16(jpeg: &[u8]) -> String {
    sha256_hex(jpeg)[..16].to_string()
}

fn put(staging: &Staging, stem: &str, ext: &str, bytes: &[u8]) -> Result<FileRef> {
    let r = FileRef::named(stem, ext, bytes);
    staging.write(&r.path, bytes)?;
    Ok(r)
}

/// The chunks of `root`'s lists, in item order: a list file the previous build wrote too (same
/// name) is cut where its previous chunks were, row for row, so each chunk holds the live items
/// of one previous chunk (none dropped: rows of departed items were in it); other lists are cut
/// every `CHUNK_SIZE` items.
pub(crate) fn spans(root: &Root, previous: Option<&Previous>) -> Vec<Span> {
    let kept: HashMap<String, usize> = previous
        .map(|p| {
            (0..p.root.lists())
                .map(|j| (p.root.file(j).path, j))
                .collect()
        })
        .unwrap_or_default();
    let mut spans = Vec::new();
    for j in 0..root.lists() {
        let (first, count) = root.range(j);
        let old = previous.zip(kept.get(&root.file(j).path).copied());
        match old.and_then(|(p, old)| rows_of_chunks(p, old)) {
            Some(cuts) => {
                let removed: Vec<u32> = root.removed_in(j).collect();
                let mut at = first;
                for (k, (from, to)) in cuts {
                    let gone = removed.iter().filter(|&&r| r >= from && r < to).count() as u32;
                    let n = to - from - gone;
                    if n > 0 {
                        spans.push(Span {
                            first: at,
                            count: n,
                            previous: Some(k),
                        });
                    }
                    at += n;
                }
                debug_assert_eq!(at, first + count, "the cuts cover the list's rows");
            }
            None => spans.extend((0..count).step_by(CHUNK_SIZE).map(|s| Span {
                first: first + s,
                count: (count - s).min(CHUNK_SIZE as u32),
                previous: None,
            })),
        }
    }
    spans
}

/// Each chunk of the previous build over its list `j`, with the rows of `j`'s file it spans
/// (from its first item's row to the next chunk's, the last to the file's end), or `None` when
/// the previous table does not cut that list.
fn rows_of_chunks(p: &Previous, j: usize) -> Option<Vec<(usize, (u32, u32))>> {
    let (first, count) = p.root.range(j);
    let rows = p.root.rows(j);
    let removed: Vec<u32> = p.root.removed_in(j).collect();
    // The row of each live item of the list, in order.
    let live: Vec<u32> = (0..rows)
        .filter(|r| removed.binary_search(r).is_err())
        .collect();
    let chunks = &p.table.chunks;
    let from = chunks.partition_point(|c| c.first < first);
    let to = chunks.partition_point(|c| c.first < first + count);
    if from == to || chunks[from].first != first {
        return None;
    }
    let starts: Vec<u32> = (from..to)
        .map(|k| live.get((chunks[k].first - first) as usize).copied())
        .collect::<Option<_>>()?;
    Some(
        (from..to)
            .zip(starts.iter().enumerate().map(|(i, &s)| {
                let end = starts.get(i + 1).copied().unwrap_or(rows);
                (if i == 0 { 0 } else { s }, end)
            }))
            .collect(),
    )
}

#[cfg(test)]
mod tests;
