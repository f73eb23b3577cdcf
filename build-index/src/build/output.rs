//! Turns the embedded rows into the site's files: facets, int8 vectors (after the recall check),
//! metadata chunks, the catalog file, thumbnails and the exported text encoder, all named by
//! content hash and listed in a sealed `manifest.json`, written through [`Staging`].

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use vitrine_clip::Checkpoint;
use vitrine_index::{
    CHUNK_SIZE, Catalog, Chunk, EncoderFiles, FORMAT, FORMAT_VERSION, FileRef, Files, Item,
    MANIFEST, Manifest, MetadataChunk, ModelInfo, QUANTIZATION, Quantization, Vectors, sha256_hex,
};

use super::Args;
use super::facets::{self, FacetSpec};
use super::recall;
use super::write::Staging;
use crate::catalogue::Row;

/// What `write` reports back.
pub(crate) struct Summary {
    pub(crate) recall: f64,
    pub(crate) build_id: String,
}

/// Inputs of the site writer.
pub(crate) struct Site<'a> {
    pub(crate) args: &'a Args,
    pub(crate) ckpt: &'a Checkpoint,
    pub(crate) specs: &'a [FacetSpec],
    pub(crate) recall_prompts: &'a [&'a str],
    pub(crate) rows: usize,
    pub(crate) skipped: usize,
    pub(crate) fingerprint: &'a str,
}

impl Site<'_> {
    /// Computes, checks and writes everything; nothing is written if a check fails.
    pub(crate) fn write(&self, indexed: &[(&Row, Vec<f32>, Vec<u8>)]) -> Result<Summary> {
        let ckpt = self.ckpt;
        let tokenizer = ckpt.tokenizer()?;
        let text = ckpt.text_encoder()?;
        let embeddings: Vec<Vec<f32>> = indexed.iter().map(|(_, e, _)| e.clone()).collect();
        let facet_results = facets::classify(self.specs, &tokenizer, &text, &embeddings)?;
        let vectors = Vectors::quantize(&embeddings)?;

        let mut prompts: Vec<String> = self.recall_prompts.iter().map(|p| p.to_string()).collect();
        for s in self.specs {
            prompts.extend(s.labels.iter().map(|l| s.template.replacen("{}", l, 1)));
        }
        let ids: Vec<Vec<u32>> = prompts
            .iter()
            .map(|p| tokenizer.encode(p))
            .collect::<Result<_, _>>()?;
        let batch: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        let text_queries = text.encode_batch(&batch)?;
        let recall = recall::measure(
            &embeddings,
            &vectors,
            &text_queries,
            10,
            self.args.min_recall,
        );
        if recall.value < self.args.min_recall {
            bail!(
                "recall@10 of the int8 index is {:.4}, below --min-recall {}; nothing was written \
                 (the embeddings may be degenerate: check the model)",
                recall.value,
                self.args.min_recall
            );
        }

        let staging = Staging::new(&self.args.out)?;
        let mut thumbnails: BTreeMap<String, FileRef> = BTreeMap::new();
        let mut items = Vec::with_capacity(indexed.len());
        for (i, (row, _, thumb)) in indexed.iter().enumerate() {
            let sha = sha256_hex(thumb);
            let path = format!("thumbs/{}.jpg", &sha[..16]);
            if !thumbnails.contains_key(&path) {
                staging.write(&path, thumb)?;
                thumbnails.insert(
                    path.clone(),
                    FileRef {
                        path: path.clone(),
                        size: thumb.len() as u64,
                        sha256: sha,
                    },
                );
            }
            let facets = facet_results
                .iter()
                .map(|(f, values)| (f.name.clone(), values[i].1.clone()))
                .collect();
            items.push(Item {
                id: row.id.clone(),
                title: row.title.clone(),
                description: row.description.clone(),
                link: row.link.as_deref().and_then(vitrine_index::safe_link),
                price: row.price.clone(),
                thumbnail: Some(path),
                facets,
                extra: row.extra.clone(),
            });
        }

        let put = |stem: &str, ext: &str, bytes: &[u8]| -> Result<FileRef> {
            let r = FileRef::for_content(stem, ext, bytes);
            staging.write(&r.path, bytes)?;
            Ok(r)
        };
        let catalog = Catalog {
            ids: items.iter().map(|i| i.id.clone()).collect(),
            facets: facet_results
                .iter()
                .map(|(f, v)| (f.name.clone(), v.iter().map(|(l, _)| *l).collect()))
                .collect(),
        };
        let catalog_ref = put("catalog", "json", &serde_json::to_vec(&catalog)?)?;
        let vectors_ref = put("vectors", "bin", &vectors.to_bytes())?;
        let mut metadata = Vec::new();
        for (n, chunk) in items.chunks(CHUNK_SIZE).enumerate() {
            let first = (n * CHUNK_SIZE) as u32;
            let bytes = serde_json::to_vec(&MetadataChunk {
                first,
                items: chunk.to_vec(),
            })?;
            let file = put(&format!("meta/{n}"), "json", &bytes)?;
            metadata.push(Chunk {
                first,
                count: chunk.len() as u32,
                file,
            });
        }
        let read = |name: &str| {
            let p = ckpt.dir.join(name);
            std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))
        };
        let encoder = EncoderFiles {
            config: put("encoder/config", "json", &read("config.json")?)?,
            weights: put("encoder/text", "safetensors", &ckpt.export_text_encoder()?)?,
            tokenizer: put("encoder/tokenizer", "json", &read("tokenizer.json")?)?,
        };

        let catalogue_name = self
            .args
            .catalogue
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let mut info = BTreeMap::new();
        info.insert("catalogue".to_string(), serde_json::json!(catalogue_name));
        info.insert("rows".to_string(), serde_json::json!(self.rows));
        info.insert("skipped".to_string(), serde_json::json!(self.skipped));
        let mut manifest = Manifest {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            build_id: String::new(),
            model: ModelInfo {
                id: ckpt.name(),
                fingerprint: self.fingerprint[..16].to_string(),
                dim: vectors.dim() as u32,
                max_tokens: text.max_len() as u32,
                logit_scale: text.logit_scale(),
            },
            count: items.len() as u32,
            quantization: Quantization {
                kind: QUANTIZATION.into(),
                bytes_per_vector: vectors.dim() as u32,
            },
            recall: recall.clone(),
            facets: facet_results.into_iter().map(|(f, _)| f).collect(),
            info,
            files: Files {
                vectors: vectors_ref,
                catalog: catalog_ref,
                metadata,
                encoder,
                thumbnails: thumbnails.into_values().collect(),
            },
        };
        manifest.seal();
        staging.write(MANIFEST, &manifest.to_json())?;
        staging.commit()?;
        Ok(Summary {
            recall: recall.value,
            build_id: manifest.build_id,
        })
    }
}
