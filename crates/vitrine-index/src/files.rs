//! The files of an index and the one naming rule they follow: every file but the manifest is named
//! by its content (`{stem}.{first 16 hex digits of its SHA-256}.{ext}`), so a redeploy never mixes
//! two builds and caches may keep them for ever. The groups a reader needs (what to download to
//! search, what to keep offline) are built here, once, from the manifest's list.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::chunks::ChunkTable;
use crate::keywords::KeywordShard;
use crate::lists::Root;
use crate::{Error, Result};

/// The largest file an index may list: a reader never sets aside more for one download.
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// Hex digits of the SHA-256 a content-addressed name carries.
const NAME_HASH_DIGITS: usize = 16;

/// Bytes of the SHA-256 a content-addressed name carries: all a vectors root keeps of its list
/// and group files' hashes (the service worker checks cached files against no more either).
pub const NAME_HASH_BYTES: usize = NAME_HASH_DIGITS / 2;

/// The naming rule as a regular expression over a path relative to the index folder; capture 1
/// is the hash. The service worker gets it from the page (it checks cached bytes against it);
/// [`name_hash`] is the same rule in Rust, and a test keeps the two equal.
pub const HASHED_NAME_PATTERN: &str = r"^(?:[a-z0-9_-]+/)*[a-z0-9_-]+\.([0-9a-f]{16})\.[a-z0-9]+$";

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// The first [`NAME_HASH_BYTES`] of the SHA-256 of `bytes`: the hash their content-addressed
/// name carries.
pub fn name_hash_of(bytes: &[u8]) -> [u8; NAME_HASH_BYTES] {
    let full = Sha256::digest(bytes);
    let mut out = [0u8; NAME_HASH_BYTES];
    out.copy_from_slice(&full[..NAME_HASH_BYTES]);
    out
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The content-addressed name of a file: `{stem}.{hash16}.{ext}`.
pub fn hashed_name(stem: &str, ext: &str, sha256_hex: &str) -> String {
    format!("{stem}.{}.{ext}", &sha256_hex[..NAME_HASH_DIGITS])
}

/// The hash a content-addressed path carries (see [`HASHED_NAME_PATTERN`]), or `None` for
/// other names (the manifest, the app shell's files).
pub fn name_hash(path: &str) -> Option<&str> {
    let ok = |part: &str, extra: &[u8]| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b))
    };
    let name = match path.rsplit_once('/') {
        Some((dirs, name)) if dirs.split('/').all(|d| ok(d, b"_-")) => name,
        Some(_) => return None,
        None => path,
    };
    let mut parts = name.rsplitn(3, '.');
    let (ext, hash, stem) = (parts.next()?, parts.next()?, parts.next()?);
    let hex = hash.len() == NAME_HASH_DIGITS
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (ok(stem, b"_-") && ok(ext, b"") && hex).then_some(hash)
}

/// The [`NAME_HASH_BYTES`] a binary table keeps at `at` for a file it names (zeros past the
/// end: the tables check their length before reading).
pub(crate) fn name_hash_at(bytes: &[u8], at: usize) -> [u8; NAME_HASH_BYTES] {
    bytes
        .get(at..at + NAME_HASH_BYTES)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; NAME_HASH_BYTES])
}

/// A file of the index: relative path, size in bytes, SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// Path relative to the manifest, with `/` separators.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, lowercase hex: all 64 digits in the manifest, the name's 16 for
    /// the files a vectors root names.
    pub sha256: String,
}

impl FileRef {
    /// Describes `bytes` stored under their content-addressed name ([`hashed_name`]).
    pub fn for_content(stem: &str, ext: &str, bytes: &[u8]) -> Self {
        let sha256 = sha256_hex(bytes);
        Self {
            path: hashed_name(stem, ext, &sha256),
            size: bytes.len() as u64,
            sha256,
        }
    }

    /// Describes `bytes` under their content-addressed name, keeping only the hash the name
    /// carries: the files binary tables name (vectors root, chunk table) by [`NAME_HASH_BYTES`].
    pub fn named(stem: &str, ext: &str, bytes: &[u8]) -> Self {
        Self::from_name_hash(stem, ext, bytes.len() as u64, &name_hash_of(bytes))
    }

    /// The file of `size` bytes a binary table names by the hash its name carries.
    pub fn from_name_hash(stem: &str, ext: &str, size: u64, hash: &[u8; NAME_HASH_BYTES]) -> Self {
        let sha256 = hex(hash);
        Self {
            path: hashed_name(stem, ext, &sha256),
            size,
            sha256,
        }
    }

    /// The hash this file's name carries, as a binary table keeps it (zeros where the hex is
    /// not hex).
    pub fn name_hash_bytes(&self) -> [u8; NAME_HASH_BYTES] {
        let mut out = [0u8; NAME_HASH_BYTES];
        for (i, b) in out.iter_mut().enumerate() {
            *b = self
                .sha256
                .get(2 * i..2 * i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .unwrap_or(0);
        }
        out
    }

    /// Checks `bytes` against this reference (size, then hash: as many digits as it has, at least
    /// the name's).
    pub fn check(&self, bytes: &[u8]) -> Result<()> {
        if bytes.len() as u64 != self.size {
            return Err(Error::Integrity(format!(
                "{}: {} bytes, the index says {}",
                self.path,
                bytes.len(),
                self.size
            )));
        }
        if self.sha256.len() < NAME_HASH_DIGITS || !sha256_hex(bytes).starts_with(&self.sha256) {
            return Err(Error::Integrity(format!(
                "{}: content does not match the SHA-256 the index records for it",
                self.path
            )));
        }
        Ok(())
    }
}

/// The text encoder the page downloads: a [`FileRef`] each in the manifest, their bytes once
/// fetched (`EncoderFiles<Vec<u8>>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderFiles<T = FileRef> {
    /// The checkpoint's `config.json`.
    pub config: T,
    /// Text tower, `text_projection` and `logit_scale`: f16 safetensors or the quantized file
    /// (see the manifest's `encoder`).
    pub weights: T,
    /// `tokenizer.json`.
    pub tokenizer: T,
}

/// Everything a reader downloads before it can search, one `T` per file: a [`FileRef`] to fetch,
/// then the fetched bytes. [`SearchFiles::into_vec`] and [`SearchFiles::from_vec`] fix the one
/// order in which they travel as a list (largest first, for early progress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchFiles<T> {
    /// The text encoder.
    pub encoder: EncoderFiles<T>,
    /// The int8 vectors.
    pub vectors: T,
    /// The item table (ids, facet labels).
    pub items: T,
}

impl<T> EncoderFiles<T> {
    /// Borrows each file.
    pub fn as_ref(&self) -> EncoderFiles<&T> {
        EncoderFiles {
            config: &self.config,
            weights: &self.weights,
            tokenizer: &self.tokenizer,
        }
    }
}

impl<T> SearchFiles<T> {
    /// Borrows each file.
    pub fn as_ref(&self) -> SearchFiles<&T> {
        SearchFiles {
            encoder: self.encoder.as_ref(),
            vectors: &self.vectors,
            items: &self.items,
        }
    }

    /// The files as a list, in the one order [`SearchFiles::from_vec`] reads back.
    pub fn into_vec(self) -> Vec<T> {
        let EncoderFiles {
            config,
            weights,
            tokenizer,
        } = self.encoder;
        vec![weights, tokenizer, config, self.vectors, self.items]
    }

    /// The files from a list in [`SearchFiles::into_vec`]'s order; `None` unless it holds
    /// exactly one per file.
    pub fn from_vec(list: Vec<T>) -> Option<Self> {
        let [weights, tokenizer, config, vectors, items]: [T; 5] = list.try_into().ok()?;
        Some(Self {
            encoder: EncoderFiles {
                config,
                weights,
                tokenizer,
            },
            vectors,
            items,
        })
    }

    /// Pairs each file of `self` with the same file of `other`.
    pub fn zip<U>(self, other: SearchFiles<U>) -> SearchFiles<(T, U)> {
        let pairs: Vec<(T, U)> = self.into_vec().into_iter().zip(other.into_vec()).collect();
        SearchFiles::from_vec(pairs).expect("both hold every search file")
    }
}

/// The files to keep for offline use, relative to the index folder: those needed to search and
/// show results (`core`), the thumbnail packs, which a page may skip when they are large, and
/// the lists and groups of a partitioned index, kept once a search fetched them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineFiles {
    /// Encoder, vectors (root, and the list and group of an unpartitioned index), item table, chunk table,
    /// metadata chunks and keyword shards.
    pub core: Vec<String>,
    /// Every thumbnail pack.
    pub thumbnails: Vec<String>,
    /// The packs' total size in bytes.
    pub thumbnail_bytes: u64,
    /// Files kept once fetched, never fetched ahead: the lists and groups of a partitioned index.
    #[serde(default)]
    pub on_demand: Vec<String>,
}

/// Every file besides the manifest; the metadata chunks and thumbnail packs are in the chunk
/// table, the lists and groups of a partitioned index in the vectors' root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Files {
    /// The root of the int8 vectors ([`crate::lists`]): group directions, each list's and each
    /// group's file.
    pub vectors: FileRef,
    /// The list file and group file of an index that is one list, downloaded with the root and
    /// kept offline; empty when partitioned (the root describes the lists and groups, fetched as
    /// queries need them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lists: Vec<FileRef>,
    /// The item table ([`crate::ItemTable`]): each item's facet labels, filter values and title
    /// term count.
    pub items: FileRef,
    /// The chunk table ([`crate::chunks`]): item metadata and thumbnail packs.
    pub chunks: FileRef,
    /// The keyword index's shards, in term order.
    pub keywords: Vec<KeywordShard>,
    /// The text encoder.
    pub encoder: EncoderFiles,
}

impl Files {
    /// What a reader downloads before it can search.
    pub fn search(&self) -> SearchFiles<&FileRef> {
        SearchFiles {
            encoder: self.encoder.as_ref(),
            vectors: &self.vectors,
            items: &self.items,
        }
    }

    /// The files the manifest lists, the big ones first.
    pub fn all(&self) -> Vec<&FileRef> {
        let mut out = self.search().into_vec();
        out.extend(&self.lists);
        out.push(&self.chunks);
        out.extend(self.keywords.iter().map(|s| &s.file));
        out
    }

    /// Every file of the site: those the manifest lists, the list and group files `root` names and the
    /// metadata chunks and thumbnail packs of `table`.
    pub fn site_files(&self, root: &Root, table: &ChunkTable) -> Vec<FileRef> {
        let mut out: Vec<FileRef> = self.all().into_iter().cloned().collect();
        for f in root
            .files()
            .into_iter()
            .chain(table.metadata_files().cloned())
            .chain(table.packs().cloned())
        {
            if !out.iter().any(|o| o.path == f.path) {
                out.push(f);
            }
        }
        out
    }

    /// What to keep offline, given the chunk table and, once loaded, the vectors' root.
    pub fn offline(&self, table: &ChunkTable, root: Option<&Root>) -> OfflineFiles {
        let mut core: Vec<String> = self.all().into_iter().map(|f| f.path.clone()).collect();
        core.extend(table.metadata_files().map(|f| f.path.clone()));
        let on_demand = match root {
            Some(root) if self.lists.is_empty() => {
                root.files().into_iter().map(|f| f.path).collect()
            }
            _ => Vec::new(),
        };
        OfflineFiles {
            core,
            thumbnails: table.packs().map(|f| f.path.clone()).collect(),
            thumbnail_bytes: table.packs().map(|f| f.size).sum(),
            on_demand,
        }
    }

    /// Checks what a reader relies on before it downloads anything: every path is a
    /// content-addressed name whose hash is the file's (so no path leaves the index folder), no
    /// file is larger than [`MAX_FILE_BYTES`], and keyword shards are in term order (the chunk table
    /// checks its own chunks).
    pub(crate) fn check_bounds(&self) -> Result<()> {
        for f in self.all() {
            let hex = f.sha256.len() == 64
                && f.sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex || name_hash(&f.path) != Some(&f.sha256[..NAME_HASH_DIGITS]) {
                return Err(Error::Format(format!(
                    "manifest.json lists {:?}, which is not the content-addressed name of its \
                     file; the manifest is damaged or was not written by build-index",
                    f.path
                )));
            }
            if f.size > MAX_FILE_BYTES {
                return Err(Error::Format(format!(
                    "manifest.json says {} is {} bytes, more than an index file may be \
                     ({MAX_FILE_BYTES}); the manifest is damaged",
                    f.path, f.size
                )));
            }
        }
        if let Some(w) = self.keywords.windows(2).find(|w| w[0].first >= w[1].first) {
            return Err(Error::Format(format!(
                "manifest.json: the keyword shard {} is out of term order; the manifest is damaged",
                w[1].file.path
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_are_recognised_and_other_names_are_not() {
        let r = FileRef::for_content("meta/0", "json", b"x");
        assert_eq!(name_hash(&r.path), Some(&r.sha256[..16]));
        assert_eq!(
            name_hash("thumbs/t.0123456789abcdef.jpg"),
            Some("0123456789abcdef")
        );
        for other in [
            "manifest.json",
            "vectors.0123456789abcde.bin",
            "vectors.0123456789ABCDEF.bin",
            "../x.0123456789abcdef.bin",
            "a/.0123456789abcdef.bin",
            "vitrine-web-0123456789abcdef_bg.wasm",
        ] {
            assert_eq!(name_hash(other), None, "{other}");
        }
    }

    #[test]
    fn a_file_named_by_its_name_hash_has_the_same_name_and_checks_the_same_bytes() {
        let (full, named) = (
            FileRef::for_content("meta/chunk", "json", b"x"),
            FileRef::named("meta/chunk", "json", b"x"),
        );
        assert_eq!(named.path, full.path);
        assert_eq!(named.sha256, full.sha256[..NAME_HASH_DIGITS]);
        assert_eq!(named.name_hash_bytes(), full.name_hash_bytes());
        assert_eq!(
            FileRef::from_name_hash("meta/chunk", "json", 1, &named.name_hash_bytes()),
            named
        );
        named.check(b"x").unwrap();
        assert!(named.check(b"y").is_err());
    }

    #[test]
    fn the_pattern_the_service_worker_gets_is_the_rust_rule() {
        let pattern = regex::Regex::new(HASHED_NAME_PATTERN).unwrap();
        for name in [
            "vectors.0123456789abcdef.bin",
            "meta/12.0123456789abcdef.json",
            "thumbs/thumb.0123456789abcdef.jpg",
            "encoder/text.fedcba9876543210.safetensors",
            "manifest.json",
            "vectors.0123456789abcde.bin",
            "vectors.0123456789ABCDEF.bin",
            "../x.0123456789abcdef.bin",
            "a/.0123456789abcdef.bin",
            "a b/x.0123456789abcdef.bin",
            "x.0123456789abcdef.",
            "x.0123456789abcdef.json?v=1",
            "/abs.0123456789abcdef.json",
        ] {
            let by_regex = pattern
                .captures(name)
                .and_then(|c| c.get(1))
                .map(|m| m.as_str());
            assert_eq!(by_regex, name_hash(name), "{name}");
        }
    }

    #[test]
    fn search_files_travel_in_one_order() {
        let f = SearchFiles {
            encoder: EncoderFiles {
                config: 1,
                weights: 2,
                tokenizer: 3,
            },
            vectors: 4,
            items: 5,
        };
        assert_eq!(SearchFiles::from_vec(f.clone().into_vec()), Some(f.clone()));
        assert_eq!(SearchFiles::<i32>::from_vec(vec![1, 2]), None);
        let zipped = f.clone().zip(f);
        assert_eq!(zipped.vectors, (4, 4));
        assert_eq!(zipped.encoder.config, (1, 1));
    }
}
