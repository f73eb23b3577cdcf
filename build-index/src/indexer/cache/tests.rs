//! Tests of the build cache: reopening, torn tails, damage, old layouts, thumbnails.

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

#[test]
fn damaged_and_non_finite_records_are_dropped_duplicates_kept_once_and_the_file_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("embeddings/m.bin");
    let a = ([1u8; 32], vec![0.5f32, -1.0, 2.0]);
    let b = ([2u8; 32], vec![3.0f32, 4.0, 5.0]);
    let c = EmbeddingCache::open(dir.path(), "m", 3).unwrap();
    c.put(&[a.clone(), b.clone()]).unwrap();
    assert!(c.put(&[([3u8; 32], vec![f32::NAN, 0.0, 0.0])]).is_err());
    // A second build appended the same records again (two builds at once).
    c.put(&[a.clone(), b.clone()]).unwrap();
    drop(c);
    let record = 32 + 12 + CHECKSUM;
    assert_eq!(
        std::fs::metadata(&path).unwrap().len() as usize,
        12 + 4 * record
    );
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[12 + 40] ^= 0x10; // a bit of a's vector, in its first copy
    bytes[12 + record + 40] ^= 0x10; // and in b's
    std::fs::write(&path, &bytes).unwrap();
    let c = EmbeddingCache::open(dir.path(), "m", 3).unwrap();
    assert_eq!(c.damaged(), 2);
    assert_eq!(c.get(&a.0), Some(a.1.clone()), "the intact copy is kept");
    assert_eq!(c.get(&b.0), Some(b.1.clone()));
    drop(c);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len() as usize,
        12 + 2 * record,
        "compacted: one record per image"
    );
}

#[test]
fn an_older_cache_is_read_once_without_its_non_finite_records() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("embeddings")).unwrap();
    let mut old = OLD_MAGIC.to_vec();
    old.extend_from_slice(&2u32.to_le_bytes());
    for (h, v) in [(1u8, [1.0f32, 2.0]), (2, [f32::NAN, 1.0])] {
        old.extend_from_slice(&[h; 32]);
        for x in v {
            old.extend_from_slice(&x.to_le_bytes());
        }
    }
    std::fs::write(dir.path().join("embeddings/m.bin"), old).unwrap();
    let c = EmbeddingCache::open(dir.path(), "m", 2).unwrap();
    assert_eq!(c.get(&[1u8; 32]), Some(vec![1.0, 2.0]));
    assert_eq!(c.get(&[2u8; 32]), None);
    assert_eq!(c.damaged(), 1);
    drop(c);
    let c = EmbeddingCache::open(dir.path(), "m", 2).unwrap();
    assert_eq!((c.get(&[1u8; 32]), c.damaged()), (Some(vec![1.0, 2.0]), 0));
}

#[test]
fn a_damaged_cached_thumbnail_is_not_returned() {
    let dir = tempfile::tempdir().unwrap();
    let thumbs = ThumbCache::open(dir.path(), 64).unwrap();
    let jpeg = [0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];
    thumbs.put(&[7u8; 32], &jpeg).unwrap();
    assert_eq!(thumbs.get(&[7u8; 32]).as_deref(), Some(&jpeg[..]));
    let path = thumbs.path(&[7u8; 32]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[CHECKSUM + 2] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(thumbs.get(&[7u8; 32]), None);
}
