//! The previous build's chunks, read back from the site a rebuild replaces: its root and chunk
//! table (to cut kept lists where their chunks were) and, for a chunk whose items a new chunk
//! keeps, its pack and where each thumbnail sits in it (to keep the pack rather than write it
//! again). A previous site that cannot be read is simply not followed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use vitrine_index::chunks::ChunkTable;
use vitrine_index::lists::Root;
use vitrine_index::{FileRef, MetadataChunk, Thumbnail};

use super::sha16;
use crate::built;

/// A pack is kept while the bytes of thumbnails no item uses any more (items that left or
/// changed) are at most its size over this; past that it is written again without them, so a
/// page fetching a whole pack (hosts that ignore ranges) fetches little for nothing.
pub(crate) const DEAD: u64 = 4;

/// What a rebuild can keep of the previous build's chunks.
pub(crate) struct Previous {
    /// The site folder.
    pub(crate) site: PathBuf,
    /// The previous vectors' root.
    pub(crate) root: Root,
    /// The previous chunk table.
    pub(crate) table: ChunkTable,
}

/// A kept pack: its file, its bytes and each thumbnail in it by [`Thumbnail::sha256`].
pub(crate) type KeptPack = (FileRef, Vec<u8>, HashMap<String, Thumbnail>);

impl Previous {
    /// The chunks of the site at `site`, if it holds a readable one.
    pub(crate) fn read(site: &Path) -> Option<Self> {
        let manifest = built::manifest(site).ok()?;
        let root = Root::from_bytes(&built::read(site, &manifest.files.vectors).ok()?).ok()?;
        let table = built::chunk_table(site, &manifest).ok()?;
        Some(Self {
            site: site.to_path_buf(),
            root,
            table,
        })
    }

    /// Previous chunk `k`'s pack, if it holds every one of `thumbs` and they fill all but at
    /// most a [`DEAD`]th of it.
    pub(crate) fn pack_holding(&self, k: usize, thumbs: &[Option<&[u8]>]) -> Option<KeptPack> {
        let chunk = self.table.chunks.get(k)?;
        let pack = chunk.pack.as_ref()?;
        let metadata = built::read(&self.site, &chunk.metadata).ok()?;
        let placed: HashMap<String, Thumbnail> = MetadataChunk::from_json(&metadata, chunk.first)
            .ok()?
            .items
            .into_iter()
            .filter_map(|item| item.thumbnail)
            .map(|t| (t.sha256.clone(), t))
            .collect();
        let mut used: HashMap<String, u64> = HashMap::new();
        for jpeg in thumbs.iter().flatten() {
            let sha = sha16(jpeg);
            let t = placed.get(&sha)?;
            if t.size as usize != jpeg.len() {
                return None;
            }
            used.insert(sha, u64::from(t.size));
        }
        let live: u64 = used.values().sum();
        if live == 0 || (pack.size - live.min(pack.size)) * DEAD > pack.size {
            return None;
        }
        let bytes = built::read(&self.site, pack).ok()?;
        let placed = placed
            .into_iter()
            .filter(|(sha, _)| used.contains_key(sha))
            .collect();
        Some((pack.clone(), bytes, placed))
    }
}
