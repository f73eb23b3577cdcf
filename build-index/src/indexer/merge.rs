//! `--merge-cache DIR`: brings the embeddings and thumbnails that shard runs on other machines
//! left in their own cache folders into this build's `--cache` before it starts, so the final
//! build embeds nothing they already did. Damaged records are skipped and counted.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::cache::{self, EmbeddingCache, ThumbCache};

/// Why a folder cannot be merged (a usage error: exit 2).
#[derive(Debug, thiserror::Error)]
pub(crate) enum MergeError {
    /// The folder does not exist or is not a folder.
    #[error("--merge-cache {0}: no such folder; give the --cache folder a shard run filled")]
    Missing(PathBuf),
    /// The folder holds no embeddings of this model and preprocessing.
    #[error(
        "--merge-cache {0}: it holds no embeddings of this model (--model and the \
         preprocessing must be the shard runs' own); check the folder and --model"
    )]
    OtherModel(PathBuf),
}

/// What merging one folder brought in.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Merged {
    /// Embeddings this cache did not have.
    pub(crate) embeddings: usize,
    /// Thumbnails this cache did not have.
    pub(crate) thumbs: usize,
    /// Damaged embedding records and thumbnails left out.
    pub(crate) damaged: usize,
}

/// Records per append: a merge of a big cache never holds two copies of it in memory at once.
const CHUNK: usize = 4096;

/// Merges every folder of `from` into the caches, in order; a note per folder for stderr.
pub(crate) fn merge_all(
    from: &[PathBuf],
    identity: &str,
    embeddings: &EmbeddingCache,
    thumbs: &ThumbCache,
) -> Result<Vec<String>> {
    for dir in from {
        if !dir.is_dir() {
            return Err(crate::UsageError(MergeError::Missing(dir.clone()).into()).into());
        }
    }
    let mut notes = Vec::new();
    for dir in from {
        let m = merge(dir, identity, embeddings, thumbs)?;
        notes.push(format!(
            "merged {}: {} embeddings and {} thumbnails new to this cache{}",
            dir.display(),
            m.embeddings,
            m.thumbs,
            match m.damaged {
                0 => String::new(),
                n => format!(", {n} damaged records left out"),
            }
        ));
    }
    Ok(notes)
}

fn merge(
    dir: &Path,
    identity: &str,
    embeddings: &EmbeddingCache,
    thumbs: &ThumbCache,
) -> Result<Merged> {
    let parsed = cache::read_other(dir, identity, embeddings.dim())?
        .ok_or_else(|| crate::UsageError(MergeError::OtherModel(dir.to_path_buf()).into()))?;
    let (records, damaged) = parsed.into_records();
    let new: Vec<_> = records
        .into_iter()
        .filter(|(hash, _)| embeddings.get(hash).is_none())
        .collect();
    for chunk in new.chunks(CHUNK) {
        embeddings.put(chunk)?;
    }
    let (copied, bad_thumbs) = thumbs.merge_from(dir)?;
    Ok(Merged {
        embeddings: new.len(),
        thumbs: copied,
        damaged: damaged + bad_thumbs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_brings_in_what_is_missing_and_skips_damage() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let one = ([1u8; 32], vec![1.0f32, 2.0]);
        let two = ([2u8; 32], vec![3.0f32, 4.0]);
        {
            let shard = EmbeddingCache::open(a.path(), "m", 2).unwrap();
            shard.put(&[one.clone(), two.clone()]).unwrap();
            let t = ThumbCache::open(a.path(), 64).unwrap();
            t.put(&one.0, &[0xFF, 0xD8, 1, 0xFF, 0xD9]).unwrap();
            t.put(&two.0, &[0xFF, 0xD8, 2, 0xFF, 0xD9]).unwrap();
        }
        // Damage the second record's vector and the second thumbnail.
        let path = a.path().join("embeddings/m.bin");
        let mut bytes = std::fs::read(&path).unwrap();
        let record = 32 + 8 + 8;
        bytes[12 + record + 33] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let thumb = std::fs::read_dir(a.path().join("thumbs"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| std::fs::read(p).unwrap()[8 + 2] == 2)
            .unwrap();
        let mut bytes = std::fs::read(&thumb).unwrap();
        bytes[8 + 2] = 9;
        std::fs::write(&thumb, bytes).unwrap();

        let embeddings = EmbeddingCache::open(b.path(), "m", 2).unwrap();
        let thumbs = ThumbCache::open(b.path(), 64).unwrap();
        let m = merge(a.path(), "m", &embeddings, &thumbs).unwrap();
        assert_eq!(
            m,
            Merged {
                embeddings: 1,
                thumbs: 1,
                damaged: 2
            }
        );
        assert_eq!(embeddings.get(&one.0), Some(one.1.clone()));
        assert_eq!(embeddings.get(&two.0), None);
        assert!(thumbs.get(&one.0).is_some() && thumbs.get(&two.0).is_none());
        // Merging again finds nothing new; another model's folder and a missing one are refused.
        assert_eq!(
            merge(a.path(), "m", &embeddings, &thumbs)
                .unwrap()
                .embeddings,
            0
        );
        let e = merge_all(&[a.path().to_path_buf()], "other", &embeddings, &thumbs).unwrap_err();
        assert!(
            format!("{e:#}").contains("holds no embeddings of this model"),
            "{e:#}"
        );
        let gone = a.path().join("gone");
        let e = merge_all(&[gone], "m", &embeddings, &thumbs).unwrap_err();
        assert!(e.downcast_ref::<crate::UsageError>().is_some());
        assert!(format!("{e:#}").contains("gone: no such folder"), "{e:#}");
    }
}
