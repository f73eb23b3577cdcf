//! The index format as documentation: a small index is encoded, compared byte for byte with the
//! golden files in `tests/golden/` (so any format change is a visible diff), and decoded back.
//! Set `UPDATE_GOLDEN=1` to rewrite the golden files after an intended change.

mod common;

use std::collections::BTreeMap;

use vitrine_index::chunks::{ChunkEntry, ChunkTable, METADATA_STEM, PACK_STEM};
use vitrine_index::extend::extend;
use vitrine_index::filters::{Filter, FilterKind};
use vitrine_index::keywords::{
    Field, KeywordIndexBuilder, KeywordInfo, KeywordShard, KeywordShardData, title_term_count,
};
use vitrine_index::lists::Root;
use vitrine_index::partition::{Centroids, Metric, Partitioned, partition};
use vitrine_index::{
    EncoderFiles, EncoderFormat, EncoderInfo, EncoderQuality, FORMAT, FORMAT_VERSION, Facet,
    FacetValue, FileRef, Files, Item, ItemTable, Manifest, MetadataChunk, ModelInfo, PartitionInfo,
    QUANTIZATION, Quantization, Recall, Vectors,
};
use vitrine_index::{Quantizer, normalize};
use vitrine_index::{Thumbnail, sha256_hex};

use common::golden;

fn embeddings() -> Vec<Vec<f32>> {
    vec![
        vec![0.6, 0.8, 0.0, 0.0],
        vec![0.0, 1.0, 0.5, -0.5],
        vec![0.3, -0.2, 0.9, 0.1],
    ]
}

fn items() -> Vec<Item> {
    let mut facets = BTreeMap::new();
    facets.insert(
        "color".to_string(),
        FacetValue {
            label: "red".into(),
            probability: 0.75,
        },
    );
    let mut extra = BTreeMap::new();
    extra.insert("brand".to_string(), serde_json::json!("Acme"));
    vec![
        Item {
            id: "sku-1".into(),
            title: "Red <b>mug</b> — café".into(),
            description: Some("A mug.".into()),
            link: Some("https://shop.example/mug".into()),
            price: Some("12.00 EUR".into()),
            thumbnail: Some(Thumbnail {
                offset: 0,
                size: 4,
                sha256: sha256_hex(b"jpeg")[..16].to_string(),
            }),
            image: None,
            facets,
            extra,
        },
        Item {
            id: "sku-2".into(),
            title: "Plain".into(),
            description: None,
            link: None,
            price: None,
            thumbnail: None,
            image: None,
            facets: BTreeMap::new(),
            extra: BTreeMap::new(),
        },
        Item {
            id: "sku-3".into(),
            title: "Third".into(),
            description: None,
            link: None,
            price: None,
            thumbnail: None,
            image: Some("https://images.shop.example/sku-3.jpg".into()),
            facets: BTreeMap::new(),
            extra: BTreeMap::new(),
        },
    ]
}

/// The items' keyword index: one shard.
fn keyword_shards() -> Vec<(String, Vec<u8>)> {
    let mut b = KeywordIndexBuilder::default();
    for (i, item) in items().iter().enumerate() {
        b.add(i as u32, Field::Id, &item.id);
        b.add(i as u32, Field::Title, &item.title);
        if let Some(brand) = item.extra.get("brand").and_then(|v| v.as_str()) {
            b.add(i as u32, Field::Brand, brand);
        }
    }
    b.finish(3)
}

/// The golden vectors as lists: `lists` centroids taken from the first items, under a metric
/// that weighs a text direction more.
fn lists(lists: usize) -> Partitioned {
    let unit: Vec<f32> = embeddings().iter().flat_map(|e| normalize(e)).collect();
    let metric = Metric {
        toward: vec![0.1, 0.2, 0.3, 0.4],
        lambda: 0.5,
    };
    let centroids = Centroids::from_means(&unit[..4 * lists], 4, metric).unwrap();
    partition(&unit, 4, centroids, Quantizer::fit(&unit, 4)).unwrap()
}

/// The chunk table of one chunk of the three items, with a pack holding one JPEG.
fn chunk_table(chunk: &[u8]) -> ChunkTable {
    ChunkTable {
        chunks: vec![ChunkEntry {
            first: 0,
            count: 3,
            metadata: FileRef::named(METADATA_STEM, "json", chunk),
            pack: Some(FileRef::named(PACK_STEM, "bin", b"jpeg")),
        }],
    }
}

fn manifest(vectors: &[u8], catalog: &[u8], chunk: &[u8]) -> Manifest {
    let mut m = Manifest {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        build_id: String::new(),
        model: ModelInfo {
            id: "openai/clip-vit-base-patch32".into(),
            fingerprint: "f00d".into(),
            dim: 4,
            max_tokens: 77,
            logit_scale: 100.0,
        },
        encoder: EncoderInfo {
            format: EncoderFormat::Quantized,
            layout: "q8e4a7".into(),
            quality: EncoderQuality {
                prompts: 1208,
                mean_cosine: 0.9991,
                min_cosine: 0.9952,
                recall_at_10: 0.982,
                min_mean_cosine: 0.99,
                min_recall: 0.95,
            },
        },
        count: 3,
        quantization: Quantization {
            kind: QUANTIZATION.into(),
            bytes_per_vector: 4,
        },
        recall: Recall {
            k: 10,
            image_queries: 3,
            text_queries: 2,
            value: 1.0,
            threshold: 0.99,
        },
        partition: PartitionInfo {
            lists: 1,
            groups: 1,
            image_probes: 1,
            text_probes: 1,
            image_group_probes: 1,
            text_group_probes: 1,
            image_gap: 2.0,
            text_gap: 2.0,
            image_queries: 3,
            image_recall: 1.0,
            text_queries: 2,
            text_recall: 1.0,
            min_recall: 0.95,
        },
        facets: vec![Facet {
            name: "color".into(),
            template: "a photo of a {} product".into(),
            labels: vec!["red".into(), "blue".into()],
            counts: vec![2, 1],
        }],
        filters: vec![
            Filter {
                key: "brand".into(),
                label: "Brand".into(),
                kind: FilterKind::Values {
                    values: vec!["Acme".into()],
                    counts: vec![1],
                },
            },
            Filter {
                key: "price".into(),
                label: "Price".into(),
                kind: FilterKind::Range {
                    min: 12.0,
                    max: 12.0,
                    currency: Some("EUR".into()),
                },
            },
        ],
        keywords: KeywordInfo {
            unmatched_weight: 1.386_294_4,
            terms: 9,
        },
        info: BTreeMap::new(),
        files: Files {
            vectors: FileRef::for_content("vectors", "bin", vectors),
            lists: vec![FileRef::for_content("lists/list", "bin", b"l")],
            items: FileRef::for_content("items", "json", catalog),
            chunks: FileRef::for_content("chunks", "bin", &chunk_table(chunk).to_bytes()),
            keywords: keyword_shards()
                .into_iter()
                .map(|(first, bytes)| KeywordShard {
                    first,
                    file: FileRef::for_content("keywords/kw", "bin", &bytes),
                })
                .collect(),
            encoder: EncoderFiles {
                config: FileRef::for_content("encoder/config", "json", b"{}"),
                weights: FileRef::for_content("encoder/text", "vtq", b"w"),
                tokenizer: FileRef::for_content("encoder/tokenizer", "json", b"t"),
            },
        },
    };
    m.seal();
    m
}

#[test]
fn an_index_encodes_to_the_golden_files_and_decodes_back() {
    let vectors = Vectors::quantize(&embeddings()).unwrap();
    let vbytes = vectors.to_bytes();
    golden("vectors.bin", &vbytes);
    assert_eq!(Vectors::from_bytes(&vbytes).unwrap(), vectors);
    // Two lists: item 0 and item 1 are the centroids, item 2 joins item 1's.
    let two = lists(2);
    golden("vectors-root.bin", &two.root.to_bytes());
    golden("list.bin", &two.files[0]);
    // √2 rounds to one group, holding both centroids.
    assert_eq!(two.groups.len(), 1);
    golden("group.bin", &two.groups[0]);
    assert_eq!(Root::from_bytes(&two.root.to_bytes()).unwrap(), two.root);
    assert_eq!(two.root.lists(), 2);
    assert_eq!(two.order, [0, 1, 2]);
    assert_eq!((two.root.range(0), two.root.range(1)), ((0, 1), (1, 2)));
    // A rebuild where item 2 changed: its row is removed and it forms a third list.
    let mut unit: Vec<f32> = embeddings().iter().flat_map(|e| normalize(e)).collect();
    unit[8..12].copy_from_slice(&normalize(&[0.1, 0.2, 0.9, 0.4]));
    let centroids = two.root.centroids(&two.groups).unwrap();
    let rebuilt = extend(&unit, 4, &two.root, &centroids, two.files.clone()).unwrap();
    golden("vectors-root-rebuilt.bin", &rebuilt.lists.root.to_bytes());
    let root = Root::from_bytes(&rebuilt.lists.root.to_bytes()).unwrap();
    assert_eq!(root, rebuilt.lists.root);
    assert_eq!((rebuilt.kept, rebuilt.removed, rebuilt.added), (2, 1, 1));
    assert_eq!(rebuilt.lists.files[..2], two.files[..], "list files kept");
    assert_eq!((root.lists(), root.removed(), root.count()), (3, 1, 3));
    assert_eq!([root.rows(1), root.range(1).1, root.range(2).1], [2, 1, 1]);
    assert_eq!(rebuilt.lists.order, [0, 1, 2]);
    let one = lists(1);
    assert_eq!(one.order, [0, 1, 2]);
    assert_eq!(one.root.file(0).size, 16 + 3 * 4);
    assert_eq!(one.root.file(1).size, 16 + (4 + 4));

    let mut facets = BTreeMap::new();
    facets.insert("color".to_string(), vec![0u16, 1, 0]);
    let catalog = ItemTable {
        count: 3,
        facets,
        values: BTreeMap::from([("brand".to_string(), vec![1u16, 0, 0])]),
        numbers: BTreeMap::from([("price".to_string(), vec![Some(12.0), None, None])]),
        title_terms: items().iter().map(|i| title_term_count(&i.title)).collect(),
    };
    let cbytes = serde_json::to_vec(&catalog).unwrap();
    golden("items.json", &cbytes);
    assert_eq!(ItemTable::from_json(&cbytes, 3).unwrap(), catalog);
    assert!(ItemTable::from_json(&cbytes, 4).is_err());

    let chunk = MetadataChunk {
        first: 0,
        items: items(),
    };
    let chunk_bytes = serde_json::to_vec(&chunk).unwrap();
    golden("metadata-chunk.json", &chunk_bytes);
    assert_eq!(MetadataChunk::from_json(&chunk_bytes, 0).unwrap(), chunk);
    let table = chunk_table(&chunk_bytes);
    golden("chunks.bin", &table.to_bytes());
    assert_eq!(ChunkTable::from_bytes(&table.to_bytes(), 3).unwrap(), table);
    // The thumbnail is cut from its pack (or taken whole from a ranged answer) and checked.
    let thumb = chunk.items[0].thumbnail.clone().unwrap();
    assert_eq!(thumb.range(), "bytes=0-3");
    assert_eq!(thumb.cut(b"jpeg").unwrap(), b"jpeg");
    assert!(thumb.cut(b"jpeX").is_err());

    let shards = keyword_shards();
    assert_eq!(shards.len(), 1);
    golden("keywords.bin", &shards[0].1);
    let shard = KeywordShardData::from_bytes(&shards[0].1, 3).unwrap();
    let cafe = shard.get("cafe").expect("café is folded to cafe");
    assert_eq!((cafe.items, cafe.postings.len()), (1, 1));
    assert_eq!(cafe.postings[0].fields, Field::Title as u8);
    let sku = shard.get("sku").unwrap();
    assert_eq!(
        sku.postings.iter().map(|p| p.item).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(sku.weight < cafe.weight, "a rarer term weighs more");
    assert_eq!(
        shard.get("acme").unwrap().postings[0].fields,
        Field::Brand as u8
    );
    assert!(
        KeywordShardData::from_bytes(&shards[0].1, 2).is_err(),
        "items out of range"
    );

    let root = one.root.to_bytes();
    let m = manifest(&root, &cbytes, &chunk_bytes);
    let json = m.to_json();
    golden("manifest.json", &json);
    assert_eq!(Manifest::from_json(&json).unwrap(), m);
    for f in [&m.files.vectors, &m.files.items] {
        assert!(f.path.contains(&f.sha256[..16]));
    }
    m.files.vectors.check(&root).unwrap();
}

#[test]
fn the_build_id_changes_with_any_content() {
    let a = manifest(b"a", b"c", b"m");
    let b = manifest(b"b", b"c", b"m");
    assert_eq!(a.build_id.len(), 16);
    assert_ne!(a.build_id, b.build_id);
    assert_eq!(a.build_id, manifest(b"a", b"c", b"m").build_id);
}

#[test]
fn other_versions_and_formats_are_refused_with_a_reason() {
    let m = manifest(b"a", b"c", b"m");
    let json = String::from_utf8(m.to_json()).unwrap();
    let newer = json.replace(
        &format!("\"version\": {FORMAT_VERSION},"),
        &format!("\"version\": {},", FORMAT_VERSION + 1),
    );
    let err = Manifest::from_json(newer.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("version {}", FORMAT_VERSION + 1)) && err.contains("redeploy"),
        "{err}"
    );
    let other = json.replace("\"vitrine-index\"", "\"something-else\"");
    assert!(Manifest::from_json(other.as_bytes()).is_err());
}

#[test]
fn a_flipped_byte_fails_the_integrity_check() {
    let vbytes = Vectors::quantize(&embeddings()).unwrap().to_bytes();
    let r = FileRef::for_content("vectors", "bin", &vbytes);
    let mut bad = vbytes.clone();
    bad[20] ^= 1;
    let err = r.check(&bad).unwrap_err().to_string();
    assert!(err.contains("SHA-256"), "{err}");
    assert!(
        r.check(&vbytes[1..])
            .unwrap_err()
            .to_string()
            .contains("bytes")
    );
}

#[test]
fn manifests_that_point_outside_the_index_or_ask_too_much_are_refused() {
    let m = manifest(b"a", b"c", b"m");
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        f(&mut v);
        Manifest::from_json(&serde_json::to_vec(&v).unwrap())
            .unwrap_err()
            .to_string()
    };
    let err = edit(&|v| v["files"]["vectors"]["path"] = "../../etc/passwd".into());
    assert!(
        err.contains("../../etc/passwd") && err.contains("content-addressed"),
        "{err}"
    );
    let err = edit(&|v| v["files"]["items"]["size"] = u64::MAX.into());
    assert!(err.contains("more than an index file may be"), "{err}");
    let err = edit(&|v| v["count"] = 4_000_000_000u64.into());
    assert!(err.contains("items"), "{err}");
    assert!(Manifest::from_json(&m.to_json()).is_ok());
}

#[test]
fn a_chunk_answers_only_for_its_own_items() {
    let chunk = MetadataChunk {
        first: 10,
        items: items(),
    };
    assert_eq!(chunk.item(11).unwrap().id, "sku-2");
    for outside in [9, 13, u32::MAX] {
        let err = chunk.item(outside).unwrap_err().to_string();
        assert!(err.contains("no item"), "{err}");
    }
}
