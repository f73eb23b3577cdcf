//! Writes item metadata in chunks of up to `CHUNK_SIZE` items that never span two lists of the
//! vectors, each with a thumbnail pack (its thumbnails end to end, each stored once), and the
//! chunk table naming them: a list's metadata and thumbnails travel together, and a rebuild that
//! keeps a list keeps its chunks' files.

use std::collections::HashMap;

use anyhow::Result;
use vitrine_index::chunks::{ChunkEntry, ChunkTable, METADATA_STEM, PACK_STEM};
use vitrine_index::{CHUNK_SIZE, FileRef, Item, MetadataChunk, Thumbnail, sha256_hex};

use super::write::Staging;

/// Writes the chunks of `items` (with `thumbs[i]` the JPEG of item `i`, if it has one) over the
/// lists' item ranges `(first, count)`, in order, and returns their table.
pub(crate) fn write(
    staging: &Staging,
    mut items: Vec<Item>,
    thumbs: &[Option<&[u8]>],
    lists: impl Iterator<Item = (u32, u32)>,
) -> Result<ChunkTable> {
    let mut table = ChunkTable::default();
    for (first, count) in lists {
        let end = (first + count) as usize;
        for start in (first as usize..end).step_by(CHUNK_SIZE) {
            let stop = (start + CHUNK_SIZE).min(end);
            let mut pack = Vec::new();
            let mut placed: HashMap<String, Thumbnail> = HashMap::new();
            for i in start..stop {
                let Some(jpeg) = thumbs[i] else { continue };
                let sha = sha256_hex(jpeg)[..16].to_string();
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
            let chunk = MetadataChunk {
                first: start as u32,
                items: items[start..stop].to_vec(),
            };
            let metadata = put(staging, METADATA_STEM, "json", &serde_json::to_vec(&chunk)?)?;
            let pack = if pack.is_empty() {
                None
            } else {
                Some(put(staging, PACK_STEM, "bin", &pack)?)
            };
            table.chunks.push(ChunkEntry {
                first: start as u32,
                count: (stop - start) as u32,
                metadata,
                pack,
            });
        }
    }
    Ok(table)
}

fn put(staging: &Staging, stem: &str, ext: &str, bytes: &[u8]) -> Result<FileRef> {
    let r = FileRef::named(stem, ext, bytes);
    staging.write(&r.path, bytes)?;
    Ok(r)
}
