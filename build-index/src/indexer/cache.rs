//! The build cache that makes rebuilds cheap and resumable: embeddings keyed by image content hash
//! (one append-only file per model + preprocessing identity, written as each batch finishes, so a
//! killed build loses nothing) and thumbnails keyed by image hash and size.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// SHA-256 of an image file's bytes.
pub(crate) type ImageHash = [u8; 32];

const MAGIC: &[u8; 8] = b"VTRCACH2";

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
    path: PathBuf,
    known: Mutex<HashMap<ImageHash, Vec<f32>>>,
    file: Mutex<File>,
    /// Records found damaged (bad checksum, NaN) and dropped when the cache was opened.
    damaged: usize,
}

/// Bytes of a record's checksum: the start of the SHA-256 of its hash and vector.
const CHECKSUM: usize = 8;

fn checksum(body: &[u8]) -> [u8; CHECKSUM] {
    let digest = Sha256::digest(body);
    let mut out = [0u8; CHECKSUM];
    out.copy_from_slice(&digest[..CHECKSUM]);
    out
}

/// Records of an older layout (`VTRCACH1`: hash and vector, no checksum), which are read once
/// and rewritten with checksums.
const OLD_MAGIC: &[u8; 8] = b"VTRCACH1";

/// What the file held: records by image hash, how many were dropped, whether to rewrite it.
pub(crate) struct Parsed {
    known: HashMap<ImageHash, Vec<f32>>,
    damaged: usize,
    rewrite: bool,
}

fn vector(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Reads a cache file's records, dropping damaged and non-finite ones and duplicates.
fn parse(bytes: &[u8], dim: usize) -> Option<Parsed> {
    let width_ok = bytes.len() >= 12
        && u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize == dim;
    let (checked, body) = match bytes.get(..8) {
        Some(m) if m == MAGIC && width_ok => (true, &bytes[12..]),
        Some(m) if m == OLD_MAGIC && width_ok => (false, &bytes[12..]),
        _ => return None,
    };
    let record = 32 + 4 * dim + if checked { CHECKSUM } else { 0 };
    let mut parsed = Parsed {
        known: HashMap::new(),
        damaged: 0,
        rewrite: !checked,
    };
    for rec in body.chunks_exact(record) {
        let (data, sum) = rec.split_at(32 + 4 * dim);
        let v = vector(&data[32..]);
        if (checked && sum != checksum(data)) || !v.iter().all(|x| x.is_finite()) {
            parsed.damaged += 1;
            parsed.rewrite = true;
            continue;
        }
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&data[..32]);
        if parsed.known.insert(hash, v).is_some() {
            // Two builds that embedded the same image at once: kept once.
            parsed.rewrite = true;
        }
    }
    Some(parsed)
}

/// A record as written: hash, vector, checksum.
fn record(hash: &ImageHash, v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + 4 * v.len() + CHECKSUM);
    out.extend_from_slice(hash);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    let sum = checksum(&out);
    out.extend_from_slice(&sum);
    out
}

impl EmbeddingCache {
    /// Opens (or creates) `dir/embeddings/<identity>.bin` for vectors of width `dim`. Every
    /// record carries a checksum: a damaged or non-finite record is dropped (its image is
    /// embedded again), duplicates are kept once, and the file is then rewritten compactly. A
    /// torn record at the end (a build killed mid-write) is cut off; a file of another width is
    /// reset.
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
        let record_len = (32 + 4 * dim + CHECKSUM) as u64;
        let (known, damaged) = match parse(&bytes, dim) {
            Some(parsed) if !parsed.rewrite => {
                cut_torn_tail(&file, record_len)?;
                (parsed.known, 0)
            }
            parsed => {
                let (known, damaged) =
                    parsed.map_or_else(Default::default, |p| (p.known, p.damaged));
                let mut fresh = MAGIC.to_vec();
                fresh.extend_from_slice(&(dim as u32).to_le_bytes());
                let mut sorted: Vec<(&ImageHash, &Vec<f32>)> = known.iter().collect();
                sorted.sort_by_key(|(h, _)| **h);
                for (hash, v) in sorted {
                    fresh.extend_from_slice(&record(hash, v));
                }
                // In place, under the lock: a sharing build appends after what is written here.
                file.set_len(0)
                    .and_then(|()| file.write_all(&fresh))
                    .map_err(|e| crate::local::write_error(&path, e))?;
                (known, damaged)
            }
        };
        file.seek(SeekFrom::End(0))?;
        file.unlock()?;
        Ok(Self {
            dim,
            path,
            known: Mutex::new(known),
            file: Mutex::new(file),
            damaged,
        })
    }

    /// The width of the vectors.
    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    /// Records dropped as damaged when the cache was opened.
    pub(crate) fn damaged(&self) -> usize {
        self.damaged
    }

    /// The cached embedding of an image, if any.
    pub(crate) fn get(&self, hash: &ImageHash) -> Option<Vec<f32>> {
        self.known.lock().ok()?.get(hash).cloned()
    }

    /// Records new embeddings (appended in one write, so a kill never tears a record; a torn tail
    /// left by a kill mid-write is cut at the next open). Non-finite embeddings are refused.
    pub(crate) fn put(&self, entries: &[(ImageHash, Vec<f32>)]) -> Result<()> {
        let mut buf = Vec::with_capacity(entries.len() * (32 + 4 * self.dim + CHECKSUM));
        for (hash, v) in entries {
            anyhow::ensure!(
                v.len() == self.dim,
                "embedding of width {} in a cache of {}",
                v.len(),
                self.dim
            );
            anyhow::ensure!(
                v.iter().all(|x| x.is_finite()),
                "a non-finite embedding cannot be cached"
            );
            buf.extend_from_slice(&record(hash, v));
        }
        let mut file = self
            .file
            .lock()
            .map_err(|_| anyhow::anyhow!("cache lock poisoned"))?;
        // Appends are whole records; the lock keeps a sharing build from reading half of one.
        file.lock().context("cannot lock the embedding cache")?;
        let written = cut_torn_tail(&file, (32 + 4 * self.dim + CHECKSUM) as u64)
            .and_then(|()| file.write_all(&buf))
            .map_err(|e| crate::local::write_error(&self.path, e));
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

/// What `--merge-cache` found in another cache folder's file for this identity: its intact
/// records and how many were damaged; `None` if the folder has no embeddings of this model.
pub(crate) fn read_other(dir: &Path, identity: &str, dim: usize) -> Result<Option<Parsed>> {
    let path = dir.join("embeddings").join(format!("{identity}.bin"));
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    // A shard still appending to it finishes its record first.
    file.lock_shared()
        .with_context(|| format!("cannot lock {}", path.display()))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(parse(&bytes, dim))
}

impl Parsed {
    /// The intact records, sorted by image hash, and how many were dropped as damaged.
    pub(crate) fn into_records(self) -> (Vec<(ImageHash, Vec<f32>)>, usize) {
        let mut records: Vec<_> = self.known.into_iter().collect();
        records.sort_by_key(|(h, _)| *h);
        (records, self.damaged)
    }
}

/// Cuts a record torn by a build killed mid-write (one sharing this cache) before appending.
fn cut_torn_tail(file: &File, record: u64) -> std::io::Result<()> {
    let len = file.metadata()?.len();
    let whole = 12 + len.saturating_sub(12) / record * record;
    if whole != len {
        file.set_len(whole)?;
    }
    Ok(())
}

/// Thumbnails already made, one file each: `thumbs/<image hash>-<size>-v<version>.thumb`, the
/// JPEG after a checksum of it, so a damaged copy is made again rather than published.
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
            "{}-{}-v{}.thumb",
            vitrine_index::hex(hash),
            self.size,
            super::thumbs::VERSION
        ))
    }

    /// The cached thumbnail of an image, if there is an intact one.
    pub(crate) fn get(&self, hash: &ImageHash) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.path(hash)).ok()?;
        let (sum, jpeg) = bytes.split_at_checked(CHECKSUM)?;
        (sum == checksum(jpeg) && super::thumbs::looks_complete(jpeg)).then(|| jpeg.to_vec())
    }

    /// Copies the intact thumbnails of this size from another cache folder that this one lacks
    /// (`--merge-cache`); returns how many were copied and how many were damaged.
    pub(crate) fn merge_from(&self, other: &Path) -> Result<(usize, usize)> {
        let suffix = format!("-{}-v{}.thumb", self.size, super::thumbs::VERSION);
        let (mut copied, mut damaged) = (0, 0);
        let Ok(entries) = std::fs::read_dir(other.join("thumbs")) else {
            return Ok((0, 0));
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str().filter(|n| n.ends_with(&suffix)) else {
                continue;
            };
            if self.dir.join(name).exists() {
                continue;
            }
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            match bytes.split_at_checked(CHECKSUM) {
                Some((sum, jpeg))
                    if sum == checksum(jpeg) && super::thumbs::looks_complete(jpeg) =>
                {
                    let tmp = self.dir.join(format!("{name}.tmp{}", std::process::id()));
                    std::fs::write(&tmp, &bytes).map_err(|e| crate::local::write_error(&tmp, e))?;
                    std::fs::rename(&tmp, self.dir.join(name))
                        .context("cannot store a merged thumbnail")?;
                    copied += 1;
                }
                _ => damaged += 1,
            }
        }
        Ok((copied, damaged))
    }

    /// Stores a thumbnail (written to a temporary name, then renamed into place).
    pub(crate) fn put(&self, hash: &ImageHash, jpeg: &[u8]) -> Result<()> {
        let path = self.path(hash);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut bytes = checksum(jpeg).to_vec();
        bytes.extend_from_slice(jpeg);
        std::fs::write(&tmp, bytes).map_err(|e| crate::local::write_error(&tmp, e))?;
        std::fs::rename(&tmp, &path).context("cannot store a cached thumbnail")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
