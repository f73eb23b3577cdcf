//! The chunk table: where each metadata chunk and its thumbnail pack are, so the manifest stays
//! the same size at any catalogue size. A chunk holds up to [`crate::CHUNK_SIZE`] consecutive
//! items of one list; its pack holds their thumbnails end to end (a page fetches one with an HTTP
//! Range request, or the whole pack where the host ignores ranges).
//!
//! Layout (little-endian), `chunks.<hash>.bin`: magic `VTRC`, u32 version 1, u32 chunk count,
//! then per chunk: u32 first item, u32 item count, u32 metadata size, 32 bytes metadata SHA-256,
//! u32 pack size, 32 bytes pack SHA-256 (size 0 and zeros: no thumbnails).

use crate::files::{FileRef, hashed_name, hex};
use crate::{Error, Result};

const MAGIC: &[u8; 4] = b"VTRC";
const VERSION: u32 = 1;
const HEADER: usize = 12;
const ENTRY: usize = 80;
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

fn file(stem: &str, ext: &str, size: u32, sha: &[u8]) -> FileRef {
    let sha256 = hex(sha);
    FileRef {
        path: hashed_name(stem, ext, &sha256),
        size: u64::from(size),
        sha256,
    }
}

fn sha_bytes(r: &FileRef) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(r.sha256.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0);
    }
    out
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
            for w in [c.first, c.count, c.metadata.size as u32] {
                out.extend_from_slice(&w.to_le_bytes());
            }
            out.extend_from_slice(&sha_bytes(&c.metadata));
            let (size, sha) = c
                .pack
                .as_ref()
                .map_or((0, [0u8; 32]), |p| (p.size as u32, sha_bytes(p)));
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
            return bad(format!("layout version {} is not supported", word(4)));
        }
        let n = word(8) as usize;
        if n.checked_mul(ENTRY).and_then(|b| b.checked_add(HEADER)) != Some(bytes.len()) {
            return bad(format!("{} bytes cannot hold {n} chunks", bytes.len()));
        }
        let mut chunks = Vec::with_capacity(n);
        let mut next = 0u32;
        for i in 0..n {
            let at = HEADER + ENTRY * i;
            let (first, items) = (word(at), word(at + 4));
            if first != next || items == 0 {
                return bad(format!(
                    "chunk {i} starts at item {first} with {items} items, expected the next chunk \
                     at item {next}; the index is damaged, rebuild it"
                ));
            }
            next = first.saturating_add(items);
            let pack_size = word(at + 44);
            chunks.push(ChunkEntry {
                first,
                count: items,
                metadata: file(
                    METADATA_STEM,
                    "json",
                    word(at + 8),
                    &bytes[at + 12..at + 44],
                ),
                pack: (pack_size > 0)
                    .then(|| file(PACK_STEM, "bin", pack_size, &bytes[at + 48..at + 80])),
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
                    metadata: FileRef::for_content(METADATA_STEM, "json", b"a"),
                    pack: Some(FileRef::for_content(PACK_STEM, "bin", b"jpegs")),
                },
                ChunkEntry {
                    first: 3,
                    count: 2,
                    metadata: FileRef::for_content(METADATA_STEM, "json", b"b"),
                    pack: None,
                },
            ],
        }
    }

    #[test]
    fn a_table_round_trips_and_finds_each_item_s_chunk() {
        let t = table();
        let bytes = t.to_bytes();
        assert_eq!(bytes.len(), 12 + 2 * 80);
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
        assert!(err(&bytes[..100], 5).contains("cannot hold"));
        let mut gap = bytes.clone();
        gap[12 + 80] = 4;
        assert!(err(&gap, 5).contains("expected the next chunk at item 3"));
    }
}
