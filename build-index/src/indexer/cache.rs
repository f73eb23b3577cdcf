//! The build cache that makes rebuilds cheap and resumable: embeddings keyed by image content hash
//! (one append-only file per model + preprocessing identity, written as each batch finishes, so a
//! killed build loses nothing) and thumbnails keyed by image hash and size.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

/// SHA-256 of an image file's bytes.
pub(crate) type ImageHash = [u8; 32];

const MAGIC: &[u8; 8] = b"VTRCACH1";

/// The default cache folder: `$VITRINE_CACHE`, else `$XDG_CACHE_HOME/vitrine`, else `~/.cache/vitrine`.
pub(crate) fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VITRINE_CACHE") {
        return dir.into();
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("vitrine");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("vitrine")
}

/// Embeddings already computed for one model identity.
pub(crate) struct EmbeddingCache {
    dim: usize,
    known: Mutex<HashMap<ImageHash, Vec<f32>>>,
    file: Mutex<File>,
}

impl EmbeddingCache {
    /// Opens (or creates) `dir/embeddings/<identity>.bin` for vectors of width `dim`. A torn
    /// record at the end (a build killed mid-write) is cut off; a file of another width is reset.
    pub(crate) fn open(dir: &Path, identity: &str, dim: usize) -> Result<Self> {
        let folder = dir.join("embeddings");
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create the cache folder {}", folder.display()))?;
        let path = folder.join(format!("{identity}.bin"));
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .with_context(|| format!("cannot open the embedding cache {}", path.display()))?;
        // Builds of other sites may share this cache: one at a time checks or starts the file.
        file.lock()
            .with_context(|| format!("cannot lock the embedding cache {}", path.display()))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let record = 32 + 4 * dim;
        let header_ok = bytes.len() >= 12
            && &bytes[..8] == MAGIC
            && u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize == dim;
        let mut known = HashMap::new();
        if header_ok {
            let body = &bytes[12..];
            for rec in body.chunks_exact(record) {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(&rec[..32]);
                let v = rec[32..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                known.insert(hash, v);
            }
            cut_torn_tail(&file, record)?;
        } else {
            file.set_len(0)?;
            let mut header = MAGIC.to_vec();
            header.extend_from_slice(&(dim as u32).to_le_bytes());
            file.write_all(&header)?;
        }
        file.seek(SeekFrom::End(0))?;
        file.unlock()?;
        Ok(Self {
            dim,
            known: Mutex::new(known),
            file: Mutex::new(file),
        })
    }

    /// The cached embedding of an image, if any.
    pub(crate) fn get(&self, hash: &ImageHash) -> Option<Vec<f32>> {
        self.known.lock().ok()?.get(hash).cloned()
    }

    /// Records new embeddings (appended in one write, so a kill never tears a record; a torn tail
    /// left by a kill mid-write is cut at the next open).
    pub(crate) fn put(&self, entries: &[(ImageHash, Vec<f32>)]) -> Result<()> {
        let mut buf = Vec::with_capacity(entries.len() * (32 + 4 * self.dim));
        for (hash, v) in entries {
            anyhow::ensure!(
                v.len() == self.dim,
                "embedding of width {} in a cache of {}",
                v.len(),
                self.dim
            );
            buf.extend_from_slice(hash);
            for x in v {
                buf.extend_from_slice(&x.to_le_bytes());
            }
        }
        let mut file = self
            .file
            .lock()
            .map_err(|_| anyhow::anyhow!("cache lock poisoned"))?;
        // Appends are whole records; the lock keeps a sharing build from reading half of one.
        file.lock().context("cannot lock the embedding cache")?;
        let written = cut_torn_tail(&file, 32 + 4 * self.dim)
            .and_then(|()| file.write_all(&buf))
            .context("cannot write to the embedding cache");
        file.unlock()?;
        written?;
        drop(file);
        if let Ok(mut known) = self.known.lock() {
            for (hash, v) in entries {
                known.insert(*hash, v.clone());
            }
        }
        Ok(())
    }
}

/// Cuts a record torn by a build killed mid-write (one sharing this cache) before appending.
fn cut_torn_tail(file: &File, record: usize) -> std::io::Result<()> {
    let len = file.metadata()?.len();
    let whole = 12 + len.saturating_sub(12) / record as u64 * record as u64;
    if whole != len {
        file.set_len(whole)?;
    }
    Ok(())
}

/// Thumbnails already made, one file each: `thumbs/<image hash>-<size>.jpg`.
pub(crate) struct ThumbCache {
    dir: PathBuf,
    size: u32,
}

impl ThumbCache {
    /// Opens the thumbnail folder for thumbnails of `size` pixels.
    pub(crate) fn open(dir: &Path, size: u32) -> Result<Self> {
        let dir = dir.join("thumbs");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the cache folder {}", dir.display()))?;
        Ok(Self { dir, size })
    }

    fn path(&self, hash: &ImageHash) -> PathBuf {
        self.dir.join(format!(
            "{}-{}-v{}.jpg",
            vitrine_index::hex(hash),
            self.size,
            super::thumbs::VERSION
        ))
    }

    /// The cached thumbnail of an image, if any.
    pub(crate) fn get(&self, hash: &ImageHash) -> Option<Vec<u8>> {
        std::fs::read(self.path(hash))
            .ok()
            .filter(|b| super::thumbs::looks_complete(b))
    }

    /// Stores a thumbnail (written to a temporary name, then renamed into place).
    pub(crate) fn put(&self, hash: &ImageHash, jpeg: &[u8]) -> Result<()> {
        let path = self.path(hash);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, jpeg).context("cannot write a cached thumbnail")?;
        std::fs::rename(&tmp, &path).context("cannot store a cached thumbnail")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_survive_reopening_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let a = ([1u8; 32], vec![0.5f32, -1.0, 2.0]);
        let b = ([2u8; 32], vec![3.0f32, 4.0, 5.0]);
        {
            let c = EmbeddingCache::open(dir.path(), "m", 3).unwrap();
            c.put(&[a.clone(), b.clone()]).unwrap();
        }
        let path = dir.path().join("embeddings/m.bin");
        let len = std::fs::metadata(&path).unwrap().len();
        // A kill in the middle of the second record's write.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 5)
            .unwrap();
        let c = EmbeddingCache::open(dir.path(), "m", 3).unwrap();
        assert_eq!(c.get(&a.0), Some(a.1.clone()));
        assert_eq!(c.get(&b.0), None);
        c.put(std::slice::from_ref(&b)).unwrap();
        let c = EmbeddingCache::open(dir.path(), "m", 3).unwrap();
        assert_eq!(c.get(&b.0), Some(b.1));
        // A different width starts afresh instead of misreading.
        let c = EmbeddingCache::open(dir.path(), "m", 4).unwrap();
        assert_eq!(c.get(&a.0), None);
    }
}
