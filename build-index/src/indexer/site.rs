//! Writes the site's files from the embedded rows and what `compute` made of them: metadata
//! chunks, the item table (with filter values), thumbnails, the vectors, the keyword shards and
//! the exported text encoder, all named by content hash and listed in a sealed `manifest.json`,
//! written through [`Staging`].

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use vitrine_clip::Checkpoint;
use vitrine_index::keywords::KeywordShard;
use vitrine_index::{
    EncoderFiles, FORMAT, FORMAT_VERSION, FileRef, Files, Item, ItemTable, MANIFEST, Manifest,
    QUANTIZATION, Quantization,
};

use super::compute::Computed;
use super::filters::Filters;
use super::keywords::KeywordIndex;
use super::write::Staging;
use crate::catalogue::{ImageRef, Row};

/// Where and what to write besides the computed parts.
pub(crate) struct SiteOptions<'a> {
    /// The site folder (replaced atomically).
    pub(crate) out: &'a Path,
    /// Extra build facts for the manifest's `info` (catalogue file name, row counts).
    pub(crate) info: BTreeMap<String, serde_json::Value>,
    /// Catalogue columns to publish besides what the page shows (`--keep-column`).
    pub(crate) keep_columns: &'a [String],
    /// Filters and each item's values.
    pub(crate) filters: Filters,
    /// The keyword index.
    pub(crate) keywords: KeywordIndex,
}

/// Writes every file of the site and its sealed manifest, then swaps the folder into place;
/// returns the build id. `indexed` is each row with its thumbnail (`None`: the page shows the
/// row's image URL), in the vectors' order; `note` takes what the log says of kept files.
pub(crate) fn write(
    options: SiteOptions<'_>,
    ckpt: &Checkpoint,
    indexed: &[(&Row, Option<&[u8]>)],
    computed: Computed,
    note: &dyn Fn(&str),
) -> Result<String> {
    let Computed {
        model,
        facets: facet_results,
        vectors,
        lists,
        partition,
        recall,
        encoder: exported,
    } = computed;
    let staging = Staging::new(options.out)?;
    let mut items = Vec::with_capacity(indexed.len());
    for (i, (row, thumb)) in indexed.iter().enumerate() {
        let facets = facet_results
            .iter()
            .map(|(f, values)| (f.name.clone(), values[i].1.clone()))
            .collect();
        let kept = |name: &str| {
            options
                .keep_columns
                .iter()
                .any(|k| k.trim().eq_ignore_ascii_case(name))
        };
        items.push(Item {
            id: row.id.clone(),
            title: row.title.clone(),
            // Only what the page shows, and what the maintainer asks for, is published.
            description: row.description.clone().filter(|_| kept("description")),
            link: row.link.as_deref().and_then(vitrine_index::safe_link),
            price: row.price.clone(),
            // Placed in its chunk's pack by `chunks::write`.
            thumbnail: None,
            image: match (&row.image, thumb) {
                (ImageRef::Url(url), None) => vitrine_index::safe_link(url),
                _ => None,
            },
            facets,
            extra: row
                .extra
                .iter()
                .filter(|(k, _)| kept(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        });
    }

    let put = |stem: &str, ext: &str, bytes: &[u8]| -> Result<FileRef> {
        let r = FileRef::for_content(stem, ext, bytes);
        staging.write(&r.path, bytes)?;
        Ok(r)
    };
    let SiteOptions {
        filters,
        keywords,
        info,
        ..
    } = options;
    let table = ItemTable {
        count: items.len() as u32,
        facets: facet_results
            .iter()
            .map(|(f, v)| (f.name.clone(), v.iter().map(|(l, _)| *l).collect()))
            .collect(),
        values: filters.values,
        numbers: filters.numbers,
        title_terms: keywords.title_terms,
    };
    let items_ref = put("items", "json", &serde_json::to_vec(&table)?)?;
    let vectors_ref = put("vectors", "bin", &lists.root.to_bytes())?;
    let flat = lists.root.lists() == 1;
    let mut list_refs: Vec<FileRef> = Vec::with_capacity(lists.files.len() + lists.groups.len());
    for (r, bytes) in lists.site_files() {
        if !list_refs.iter().any(|f| f.path == r.path) {
            staging.write(&r.path, bytes)?;
        }
        list_refs.push(if flat {
            // The manifest records whole SHA-256s (a root keeps only the 8 bytes a name carries).
            FileRef {
                sha256: vitrine_index::sha256_hex(bytes),
                ..r
            }
        } else {
            r
        });
    }
    let thumbs: Vec<Option<&[u8]>> = indexed.iter().map(|(_, t)| *t).collect();
    // The site being replaced is still in place: chunks of the list files it shares keep theirs.
    let previous = super::chunks::Previous::read(options.out);
    let (chunk_table, kept_packs) =
        super::chunks::write(&staging, items, &thumbs, &lists.root, previous.as_ref())?;
    if let Some(p) = &previous {
        note(&format!(
            "thumbnails: kept {kept_packs} of the previous build's {} packs; {} new",
            p.table.packs().count(),
            chunk_table.packs().count() - kept_packs
        ));
    }
    let chunks_ref = put("chunks", "bin", &chunk_table.to_bytes())?;
    let keyword_shards = keywords
        .shards
        .iter()
        .map(|(first, bytes)| {
            Ok(KeywordShard {
                first: first.clone(),
                file: put("keywords/kw", "bin", bytes)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let read = |name: &str| {
        let p = ckpt.dir.join(name);
        std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))
    };
    let encoder = EncoderFiles {
        config: put("encoder/config", "json", &read("config.json")?)?,
        weights: put("encoder/text", exported.ext, &exported.bytes)?,
        tokenizer: put("encoder/tokenizer", "json", &read("tokenizer.json")?)?,
    };

    let mut manifest = Manifest {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        build_id: String::new(),
        count: indexed.len() as u32,
        quantization: Quantization {
            kind: QUANTIZATION.into(),
            bytes_per_vector: vectors.dim() as u32,
        },
        model,
        encoder: exported.info,
        recall,
        partition,
        facets: facet_results.into_iter().map(|(f, _)| f).collect(),
        filters: filters.filters,
        keywords: keywords.info,
        info,
        files: Files {
            vectors: vectors_ref,
            // One list (and its group) is part of the site's first download and kept offline;
            // the root describes the lists and groups of a partitioned index.
            lists: if flat { list_refs } else { Vec::new() },
            items: items_ref,
            chunks: chunks_ref,
            keywords: keyword_shards,
            encoder,
        },
    };
    manifest.seal();
    staging.write(MANIFEST, &manifest.to_json())?;
    staging.commit()?;
    Ok(manifest.build_id)
}
