//! The chunk table: where each metadata chunk and its thumbnail pack are, so the manifest stays
//! the same size at any catalogue size. A chunk holds up to [`crate::CHUNK_SIZE`] consecutive
//! items of one list; its pack holds their thumbnails end to end (a page fetches one with an HTTP
//! Range request, or the whole pack where the host ignores ranges).
//!
//! Layout (little-endian), `chunks.<hash>.bin`: magic `VTRC`, u32 version 2, u32 chunk count,
//! then per chunk (each starts where the previous ends): u32 item count, u32 metadata size, 8
//! bytes the hash the metadata file's name carries, u32 pack size, 8 bytes the pack's (size 0
//! and zeros: no thumbnails). 28 bytes a chunk: about 0.5 MB of every first load at a
//! million items (1.4 MB with whole SHA-256s and first items).

use crate::files::{FileRef, NAME_HASH_BYTES, name_hash_at};
use crate::{Error, Result};

const MAGIC: &[u8; 4] = b"VTRC";
const VERSION: u32 = 2;
const HEADER: usize = 12;
const ENTRY: usize = 12 + 2 * NAME_HASH_BYTES;
/// Stem of metadata chunk names.
pub const METADATA_STEM: &str = "meta/chunk";
/// Stem of thumbnail pack names.
pub const PACK_STEM: &str = "thumbs/pack";

/// One chunk: its items, metadata file and thumbnail pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkEntry {
    /// First item.
    pub first: u32,
    /// Number of items.
    pub count: u32,
    /// The metadata file (JSON).
    pub metadata: FileRef,
    /// The thumbnail pack, if any item has a thumbnail.
    pub pack: Option<FileRef>,
}

impl ChunkEntry {
    /// Whether the chunk holds item `index`.
    pub fn holds(&self, index: u32) -> bool {
        index >= self.first && index - self.first < self.count
    }
}

/// Every chunk, in item order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkTable {
    /// The chunks, covering items `0..count` in order.
    pub chunks: Vec<ChunkEntry>,
}

impl ChunkTable {
    /// The chunk holding item `index`, with its position.
    pub fn chunk_of(&self, index: u32) -> Option<(usize, &ChunkEntry)> {
        let n = self.chunks.partition_point(|c| c.first <= index);
        let i = n.checked_sub(1)?;
        let c = &self.chunks[i];
        c.holds(index).then_some((i, c))
    }

    /// Every metadata file, in item order.
    pub fn metadata_files(&self) -> impl Iterator<Item = &FileRef> {
        self.chunks.iter().map(|c| &c.metadata)
    }

    /// Every thumbnail pack, in item order.
    pub fn packs(&self) -> impl Iterator<Item = &FileRef> {
        self.chunks.iter().filter_map(|c| c.pack.as_ref())
    }

    /// The table file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + ENTRY * self.chunks.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.chunks.len() as u32).to_le_bytes());
        for c in &self.chunks {
            for w in [c.count, c.metadata.size as u32] {
                out.extend_from_slice(&w.to_le_bytes());
            }
            out.extend_from_slice(&c.metadata.name_hash_bytes());
            let (size, sha) = c.pack.as_ref().map_or((0, [0u8; NAME_HASH_BYTES]), |p| {
                (p.size as u32, p.name_hash_bytes())
            });
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&sha);
        }
        out
    }

    /// Reads the table and checks that its chunks cover items `0..count` in order.
    pub fn from_bytes(bytes: &[u8], count: u32) -> Result<Self> {
        let bad = |what: String| Err(Error::Format(format!("chunk table: {what}")));
        if bytes.len() < HEADER || &bytes[..4] != MAGIC {
            return bad("not a vitrine chunk table (bad magic)".into());
        }
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        if word(4) != VERSION {
            return Err(Error::Version(format!(
                "chunk table: layout version {} is not supported (this reader reads {VERSION}); \
                 rebuild the index with this version of build-index",
                word(4)
            )));
        }
        let n = word(8) as usize;
        if n.checked_mul(ENTRY).and_then(|b| b.checked_add(HEADER)) != Some(bytes.len()) {
            return bad(format!("{} bytes cannot hold {n} chunks", bytes.len()));
        }
        let mut chunks = Vec::with_capacity(n);
        let mut next = 0u32;
        for i in 0..n {
            let at = HEADER + ENTRY * i;
            let (first, items) = (next, word(at));
            if items == 0 {
                return bad(format!(
                    "chunk {i} (from item {first}) holds no item; the index is damaged, rebuild it"
                ));
            }
            next = first.saturating_add(items);
            let hash = |at: usize| name_hash_at(bytes, at);
            let (meta_at, pack_at) = (at + 8, at + 12 + NAME_HASH_BYTES);
            let pack_size = word(pack_at - 4);
            chunks.push(ChunkEntry {
                first,
                count: items,
                metadata: FileRef::from_name_hash(
                    METADATA_STEM,
                    "json",
                    u64::from(word(at + 4)),
                    &hash(meta_at),
                ),
                pack: (pack_size > 0).then(|| {
                    FileRef::from_name_hash(PACK_STEM, "bin", u64::from(pack_size), &hash(pack_at))
                }),
            });
        }
        if next != count {
            return bad(format!(
                "the chunks hold {next} items, the manifest counts {count}; the index is damaged"
            ));
        }
        Ok(Self { chunks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ChunkTable {
        ChunkTable {
            chunks: vec![
                ChunkEntry {
                    first: 0,
                    count: 3,
                    metadata: FileRef::named(METADATA_STEM, "json", b"a"),
                    pack: Some(FileRef::named(PACK_STEM, "bin", b"jpegs")),
                },
                ChunkEntry {
                    first: 3,
                    count: 2,
                    metadata: FileRef::named(METADATA_STEM, "json", b"b"),
                    pack: None,
                },
            ],
        }
    }

    #[test]
    fn a_table_round_trips_and_finds_each_item_s_chunk() {
        let t = table();
        let bytes = t.to_bytes();
        assert_eq!(bytes.len(), 12 + 2 * 28);
        assert_eq!(ChunkTable::from_bytes(&bytes, 5).unwrap(), t);
        assert_eq!(t.chunk_of(2).map(|c| c.0), Some(0));
        assert_eq!(t.chunk_of(3).map(|c| c.0), Some(1));
        assert_eq!(t.chunk_of(5), None);
        assert_eq!(t.packs().count(), 1);
    }

    #[test]
    fn gaps_wrong_counts_and_truncation_are_refused() {
        let bytes = table().to_bytes();
        let err = |b: &[u8], n| ChunkTable::from_bytes(b, n).unwrap_err().to_string();
        assert!(
            err(&bytes, 6).contains("hold 5 items"),
            "{}",
            err(&bytes, 6)
        );
        assert!(err(&bytes[..50], 5).contains("cannot hold"));
        let mut empty = bytes.clone();
        empty[12 + 28] = 0;
        assert!(err(&empty, 5).contains("chunk 1 (from item 3) holds no item"));
        let mut version = bytes.clone();
        version[4] = 1;
        assert!(err(&version, 5).contains("rebuild the index"));
    }
}
