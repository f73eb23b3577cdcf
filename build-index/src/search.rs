//! `build-index search`: ranks with the site's own files only (the exported text encoder, the
//! int8 vectors, the keyword shards, the filter values) through `vitrine-search`, the code the
//! page runs, so the maintainer sees what shoppers will see.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;
use vitrine_index::{MetadataChunk, SearchMode};
use vitrine_search::{Engine, Query, Selection};

use crate::built;

/// Arguments of `build-index search`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("query").args(["text", "like"])))]
pub(crate) struct Args {
    /// The built index (the folder holding manifest.json).
    #[arg(long, value_name = "OUT")]
    site: PathBuf,
    /// A text query; `a + b - c` and `2:a` combine terms. Without --text or --like: every item
    /// in catalogue order (browsing, with filters).
    #[arg(long)]
    text: Option<String>,
    /// How text is ranked: CLIP and keywords fused, CLIP alone, or keywords alone.
    #[arg(long, default_value = "hybrid", value_parser = ["hybrid", "semantic", "keyword"])]
    mode: String,
    /// "More like this": the item with this id first, then the most similar.
    #[arg(long, value_name = "ID")]
    like: Option<String>,
    /// Number of results.
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// Only items with this facet label, `name=label` (repeatable).
    #[arg(long = "facet", value_name = "NAME=LABEL")]
    facets: Vec<String>,
    /// Only items with this filter value or in this range: `brand=Acme`, `price=10-50`
    /// (repeatable; values of one filter are alternatives).
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    filters: Vec<String>,
    /// Print `{"mode", "results": [{"id", "score"}, …], "counts"}`: the mode the text was
    /// ranked in and how the candidates spread over facets and filters (the page's counts).
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Output {
    mode: SearchMode,
    results: Vec<Result1>,
    counts: vitrine_index::filters::Counts,
}

#[derive(Serialize)]
struct Result1 {
    id: String,
    score: f32,
}

/// Loads a site's search engine from disk, every file checked against the manifest.
pub(crate) fn load(site: &Path) -> Result<Engine> {
    let manifest = built::manifest(site)?;
    let files = manifest.files.clone();
    let context = || site.display().to_string();
    let mut engine =
        Engine::open(manifest, &built::read(site, &files.items)?).with_context(context)?;
    engine
        .add_vectors(&built::read(site, &files.vectors)?)
        .with_context(context)?;
    // Every list and group, read once: the page fetches only those a query needs, and ranks
    // the same.
    for (j, file) in built::vector_files(site, &files)?.iter().enumerate() {
        engine
            .add_vector_file(j, &built::read(site, file)?)
            .with_context(context)?;
    }
    let encoder = vitrine_index::EncoderFiles {
        config: built::read(site, &files.encoder.config)?,
        weights: built::read(site, &files.encoder.weights)?,
        tokenizer: built::read(site, &files.encoder.tokenizer)?,
    };
    engine.add_encoder(encoder).with_context(context)?;
    for (n, shard) in files.keywords.iter().enumerate() {
        engine
            .keywords_mut()
            .insert(n, &built::read(site, &shard.file)?)
            .with_context(context)?;
    }
    Ok(engine)
}

/// `NAME=VALUE` pairs of a repeatable flag.
fn pairs(flag: &str, values: &[String]) -> Result<Vec<(String, String)>, crate::UsageError> {
    values
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                .ok_or_else(|| {
                    crate::UsageError(anyhow::anyhow!("{flag} {f:?}: expected NAME=VALUE"))
                })
        })
        .collect()
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let engine = load(&args.site)?;
    let selection = Selection {
        facets: pairs("--facet", &args.facets)?,
        filters: pairs("--filter", &args.filters)?,
    };
    check_facets(&engine.manifest().facets, &selection.facets)?;
    let query = match (&args.text, &args.like) {
        (Some(text), _) => Query::Text(text.clone()),
        (None, Some(id)) => Query::Like(id.clone()),
        (None, None) => Query::Browse,
    };
    let mode = SearchMode::from_name(&args.mode).expect("clap checks the mode");
    let outcome = engine
        .search(&query, mode, &selection, args.k)
        .map_err(|e| match e {
            vitrine_search::Error::Selection(why) => {
                crate::UsageError(anyhow::anyhow!("{why}")).into()
            }
            e => anyhow::Error::from(e),
        })?;
    let hits = outcome.hits;
    // Ids and titles from the results' metadata chunks, each read once.
    let table = built::chunk_table(&args.site, engine.manifest())?;
    let mut shown = std::collections::HashMap::new();
    let mut read = std::collections::BTreeSet::new();
    for h in &hits {
        let Some((n, chunk)) = table.chunk_of(h.index) else {
            anyhow::bail!(
                "{}: no metadata chunk holds item {}; the index is damaged, rebuild it",
                args.site.display(),
                h.index
            );
        };
        if read.insert(n) {
            let c =
                MetadataChunk::from_json(&built::read(&args.site, &chunk.metadata)?, chunk.first)?;
            for (i, item) in c.items.into_iter().enumerate() {
                shown.insert(c.first + i as u32, item);
            }
        }
    }
    let items = hits
        .iter()
        .map(|h| {
            shown.get(&h.index).with_context(|| {
                format!(
                    "{}: the metadata chunk of item {} does not hold it; the index is damaged, \
                     rebuild it",
                    args.site.display(),
                    h.index
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if args.json {
        let results = hits
            .iter()
            .zip(&items)
            .map(|(h, item)| Result1 {
                id: item.id.clone(),
                score: h.score,
            })
            .collect();
        let output = Output {
            mode: outcome.mode,
            results,
            counts: outcome.counts,
        };
        println!("{}", serde_json::to_string(&output)?);
        return Ok(ExitCode::SUCCESS);
    }
    for (rank, (h, item)) in hits.iter().zip(&items).enumerate() {
        println!(
            "{:>3}  {:.4}  {}  {}",
            rank + 1,
            h.score,
            item.id,
            item.title
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A usage error unless every `(facet, label)` names a facet of the site and one of its labels
/// (a typo would otherwise filter nothing and look like it worked).
fn check_facets(
    facets: &[vitrine_index::Facet],
    selected: &[(String, String)],
) -> Result<(), crate::UsageError> {
    for (name, label) in selected {
        let Some(facet) = facets.iter().find(|f| f.name == *name) else {
            let known: Vec<&str> = facets.iter().map(|f| f.name.as_str()).collect();
            return Err(crate::UsageError(anyhow::anyhow!(
                "--facet {name}={label}: this site has no facet {name:?} (it has: {}); build \
                 the index with --facet {name}=LABEL,... to add it",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        };
        if !facet.labels.contains(label) {
            return Err(crate::UsageError(anyhow::anyhow!(
                "--facet {name}={label}: {label:?} is not a label of {name:?} (its labels: {})",
                facet.labels.join(", ")
            )));
        }
    }
    Ok(())
}
