//! `build-index verify`: every file the manifest lists exists with its size and SHA-256, and the
//! index loads as the page loads it, so a deploy (rsync, S3 sync, CDN upload) can be checked
//! before shoppers see it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use vitrine_index::MANIFEST;

use crate::built;

/// Arguments of `build-index verify`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The built index (the folder holding manifest.json).
    #[arg(long, value_name = "OUT")]
    site: PathBuf,
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let mpath = args.site.join(MANIFEST);
    let manifest = built::manifest(&args.site)?;
    // With the files the vectors' root and the chunk table name (a damaged root or table is
    // reported below with the other files).
    let files = built::site_files(&args.site, &manifest);
    let mut bad = 0;
    // The build id is a hash of the manifest itself: it catches an edited or damaged manifest.
    let mut sealed = manifest.clone();
    sealed.seal();
    let manifest_ok = sealed.build_id == manifest.build_id;
    if !manifest_ok {
        eprintln!(
            "bad: {MANIFEST}: its content does not match its build id {} (edited or damaged \
             after the build); deploy the manifest build-index wrote",
            manifest.build_id
        );
    }
    for f in &files {
        let problem = match std::fs::read(args.site.join(&f.path)) {
            Err(e) => Some(format!("{}: {e}", f.path)),
            Ok(b) => f.check(&b).err().map(|e| e.to_string()),
        };
        if let Some(p) = problem {
            eprintln!("bad: {p}");
            bad += 1;
        }
    }
    if bad > 0 || !manifest_ok {
        bail!(
            "{}{bad} of {} files are missing or damaged in {}",
            if manifest_ok {
                ""
            } else {
                "the manifest is damaged; "
            },
            files.len(),
            args.site.display()
        );
    }
    // Matching hashes prove the files arrived as written; loading them as the page does proves
    // the page can use them.
    crate::search::load(&args.site).map_err(|e| {
        eprintln!("bad: the index does not load as the page loads it: {e:#}");
        anyhow::anyhow!(
            "{} holds the files its manifest lists, but they do not load; rebuild the index",
            args.site.display()
        )
    })?;
    // Each chunk holds the items the table says, and each thumbnail is where its item says.
    let table = built::chunk_table(&args.site, &manifest)?;
    for chunk in &table.chunks {
        let parsed = vitrine_index::MetadataChunk::from_json(
            &built::read(&args.site, &chunk.metadata)?,
            chunk.first,
        )?;
        if parsed.items.len() != chunk.count as usize {
            bail!(
                "{}: holds {} items, the chunk table says {}; rebuild the index",
                chunk.metadata.path,
                parsed.items.len(),
                chunk.count
            );
        }
        let pack = match &chunk.pack {
            Some(p) => built::read(&args.site, p)?,
            None => Vec::new(),
        };
        for item in &parsed.items {
            if let Some(t) = &item.thumbnail {
                t.cut(&pack).map_err(|e| {
                    anyhow::anyhow!(
                        "{}: item {}: {e}; rebuild the index",
                        chunk.metadata.path,
                        item.id
                    )
                })?;
            }
        }
    }
    println!(
        "ok: {} files match manifest {} (build {})",
        files.len(),
        mpath.display(),
        manifest.build_id
    );
    Ok(ExitCode::SUCCESS)
}
