//! `build-index search`: ranks with the site's own files only (the exported f16 text encoder, the
//! int8 vectors) through `vitrine-search`, the code the page runs, so the maintainer sees what
//! shoppers will see.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;
use vitrine_index::MetadataChunk;
use vitrine_search::Engine;

use crate::built;

/// Arguments of `build-index search`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("query").required(true).args(["text", "like"])))]
pub(crate) struct Args {
    /// The built index (the folder holding manifest.json).
    #[arg(long, value_name = "OUT")]
    site: PathBuf,
    /// A text query; `a + b - c` and `2:a` combine terms.
    #[arg(long)]
    text: Option<String>,
    /// "More like this": the item with this id first, then the most similar.
    #[arg(long, value_name = "ID")]
    like: Option<String>,
    /// Number of results.
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// Only items with this facet label, `name=label` (repeatable).
    #[arg(long = "facet", value_name = "NAME=LABEL")]
    facets: Vec<String>,
    /// Print `{"results": [{"id", "score"}, …]}`.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Output {
    results: Vec<Result1>,
}

#[derive(Serialize)]
struct Result1 {
    id: String,
    score: f32,
}

/// Loads a site's search engine from disk (every file checked against the manifest).
pub(crate) fn load(site: &Path) -> Result<Engine> {
    let manifest = built::manifest(site)?;
    let files = manifest
        .files
        .search()
        .into_vec()
        .into_iter()
        .map(|f| built::read(site, f))
        .collect::<Result<Vec<_>>>()?;
    let files = vitrine_index::SearchFiles::from_vec(files).expect("one read per search file");
    Engine::new(manifest, files).with_context(|| site.display().to_string())
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let engine = load(&args.site)?;
    let selected: Vec<(String, String)> = args
        .facets
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| {
                    crate::UsageError(anyhow::anyhow!("--facet {f:?}: expected NAME=LABEL"))
                })
        })
        .collect::<Result<_, _>>()?;
    check_facets(&engine.manifest().facets, &selected)?;
    let filter = engine.facet_filter(&selected);
    let hits = match (&args.text, &args.like) {
        (Some(text), _) => engine.search_text(text, args.k, filter.as_deref())?,
        (None, Some(id)) => engine.like(id, args.k, filter.as_deref())?,
        (None, None) => unreachable!("clap requires --text or --like"),
    };
    let ids = &engine.items().ids;
    if args.json {
        let results = hits
            .iter()
            .map(|h| Result1 {
                id: ids[h.index as usize].clone(),
                score: h.score,
            })
            .collect();
        println!("{}", serde_json::to_string(&Output { results })?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut titles = std::collections::HashMap::new();
    let files = &engine.manifest().files;
    let mut read = std::collections::BTreeSet::new();
    for h in &hits {
        let Some((n, chunk)) = files.chunk_of(h.index) else {
            continue;
        };
        if read.insert(n) {
            let c = MetadataChunk::from_json(&built::read(&args.site, &chunk.file)?)?;
            for (i, item) in c.items.into_iter().enumerate() {
                titles.insert(c.first as usize + i, item.title);
            }
        }
    }
    for (rank, h) in hits.iter().enumerate() {
        let i = h.index as usize;
        let title = titles.get(&i).map_or("", String::as_str);
        println!("{:>3}  {:.4}  {}  {}", rank + 1, h.score, ids[i], title);
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
