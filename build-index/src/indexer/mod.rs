//! `build-index build`: catalogue in, static site index out. Reads the catalogue, embeds each
//! image (reusing the cache), classifies zero-shot facets, quantizes, checks recall, and writes
//! content-addressed files plus `manifest.json` atomically. Rows that cannot be used are skipped
//! with a reason and reported; everything else is indexed.

mod args;
mod budget;
mod cache;
mod chunks;
mod compute;
mod encoder;
mod facets;
mod filters;
mod import;
mod inputs;
mod keywords;
mod lists;
mod merge;
mod npy;
mod pipeline;
mod progress;
mod recall;
mod report;
mod shard;
mod site;
mod thumbs;
mod write;

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::UsageError;
use crate::catalogue;
pub(crate) use args::Args;
use args::check_ranges;
use inputs::Inputs;
use pipeline::ImageOutcome;
use report::{Report, ReportRow};

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let specs = facets::parse_specs(&args.facets, &args.facet_templates).map_err(UsageError)?;
    check_ranges(args).map_err(UsageError)?;
    let note = |m: &str| {
        if !args.quiet {
            eprintln!("{m}")
        }
    };
    let out = match (&args.shard, &args.out) {
        (Some(spec), out) => {
            let shard = shard::Shard::parse(spec, |k| std::env::var(k).ok())
                .map_err(|e| UsageError(e.into()))?;
            if out.is_some() {
                eprintln!(
                    "note: --out is ignored with --shard: a shard only fills the cache; run a \
                     final build without --shard"
                );
            }
            return shard::run(args, shard, &note);
        }
        (None, Some(out)) => out,
        (None, None) => {
            return Err(UsageError(anyhow::anyhow!(
                "--out DIR is required (where the site goes) unless --shard I/N fills the cache"
            ))
            .into());
        }
    };
    if let Some(host) = args.host_headers {
        crate::hosting::check(host, out).map_err(|e| UsageError(e.into()))?;
    }
    // Held until the site is written: an overlapping build waits, then reuses what this one cached.
    let _turn = write::lock_out(out, |dir| {
        note(&format!(
            "another build-index build is writing in {}; waiting for it to finish",
            dir.display()
        ))
    })?;
    write::check_out(out).map_err(|e| UsageError(e.into()))?;
    let inputs = Inputs::open(args, Some(out), &note)?;
    let Inputs {
        cat,
        ckpt,
        fingerprint,
        ..
    } = &inputs;
    check_filter_columns(cat, &args.filter_columns)?;
    let outcomes = inputs.embed(args, &cat.rows, &note)?;

    let mut skipped: Vec<ReportRow> = cat.skipped.iter().map(ReportRow::from).collect();
    let mut indexed = Vec::new();
    let (mut embedded, mut reused) = (0, 0);
    for (row, outcome) in cat.rows.iter().zip(outcomes) {
        match outcome {
            ImageOutcome::Done {
                embedding,
                thumb,
                reused: r,
            } => {
                if r {
                    reused += 1
                } else {
                    embedded += 1
                }
                indexed.push((row, embedding, thumb));
            }
            // The report is where a row's error becomes a sentence.
            ImageOutcome::Failed(error) => {
                skipped.push(ReportRow::new(row.row, &row.id, error.to_string()))
            }
        }
    }
    skipped.sort_by_key(|s| s.row());
    // Items are numbered list by list, so a list's metadata and thumbnails travel together.
    let dim = ckpt.config.projection_dim;
    let unit: Vec<f32> = indexed
        .iter()
        .flat_map(|(_, e, _)| vitrine_index::normalize(e))
        .collect();
    let texts = || {
        let titles: Vec<&str> = indexed.iter().map(|(r, _, _)| r.title.as_str()).collect();
        compute::metric_queries(ckpt, &titles)
    };
    let previous = previous_root(out, fingerprint);
    let arranged = lists::arrange(&unit, dim, args.partitions, previous, &texts)?;
    drop(unit);
    note(&arranged.note);
    let mut slots: Vec<Option<_>> = indexed.into_iter().map(Some).collect();
    let indexed: Vec<_> = arranged
        .lists
        .order
        .iter()
        .filter_map(|&i| slots[i as usize].take())
        .collect();
    let indexed_rows: Vec<&catalogue::Row> = indexed.iter().map(|(row, _, _)| *row).collect();
    let kept = |name: &str| {
        args.keep_columns
            .iter()
            .any(|k| k.trim().eq_ignore_ascii_case(name))
    };
    let filters = filters::build(&indexed_rows, &args.filter_columns);
    let keyword_index = keywords::build(&indexed_rows, kept("description"));
    let mut published = args.keep_columns.clone();
    published.extend(filters.columns.iter().cloned());
    published.extend(keyword_index.columns.iter().cloned());
    let report = Report {
        rows: cat.total,
        indexed: indexed.len(),
        embedded,
        reused,
        remote_images: indexed.iter().filter(|(_, _, t)| t.is_none()).count(),
        skipped,
        excluded: cat.excluded.iter().map(ReportRow::from).collect(),
        shortened: cat.shortened.iter().map(ReportRow::from).collect(),
        dropped_columns: report::dropped_columns(cat, &published),
        filters: filters.filters.iter().map(|f| f.key.clone()).collect(),
        searchable_columns: keyword_index.columns.clone(),
        damaged_cache_records: inputs.damaged_cache_records(),
        text_encoder: None,
        partition: None,
    };
    for n in report.notes().iter().chain(&filters.notes) {
        note(n);
    }
    let write_report = |r: &Report| -> Result<()> {
        match &args.report {
            Some(path) => r.write(path),
            None => Ok(()),
        }
    };
    if args.strict && !report.skipped.is_empty() {
        write_report(&report)?;
        bail!(
            "--strict: {} of {} rows cannot be used (listed above); nothing was written",
            report.skipped.len(),
            report.rows
        );
    }
    if indexed.is_empty() {
        write_report(&report)?;
        bail!(
            "no row of {} could be indexed (reasons above); nothing was written",
            args.catalogue.display()
        );
    }

    // The report describes the rows, so it is written even if a check below stops the build.
    write_report(&report)?;
    let embeddings: Vec<Vec<f32>> = indexed.iter().map(|(_, e, _)| e.clone()).collect();
    let titles: Vec<String> = indexed
        .iter()
        .map(|(row, _, _)| row.title.clone())
        .collect();
    let previous = crate::built::manifest(out).ok().map(|m| m.encoder.layout);
    let options = compute::ComputeOptions {
        specs: &specs,
        min_recall: args.min_recall.unwrap_or(0.99),
        min_probe_recall: args.min_recall.unwrap_or(0.95),
        max_probes: args.max_probes,
        fingerprint,
        encoder: args.text_encoder,
        gate: encoder::Gate {
            min_mean_cosine: args.min_encoder_cosine,
            min_recall: args.min_encoder_recall,
        },
        titles: &titles,
        previous_encoder: previous.as_deref(),
    };
    let computed = compute::compute(ckpt, &embeddings, arranged.lists, &options)?;
    note(&computed.encoder.note);
    let mut report = report;
    report.text_encoder = Some(report::TextEncoderReport {
        layout: computed.encoder.info.layout.clone(),
        bytes: computed.encoder.bytes.len() as u64,
        quality: computed.encoder.info.quality.clone(),
        note: computed.encoder.note.clone(),
    });
    report.partition = Some(computed.partition.clone());
    write_report(&report)?;
    let p = &computed.partition;
    if p.lists > 1 {
        note(&format!(
            "{} lists in {} groups; recall@10 {:.4} for text queries probing at most {} lists of \
             {} groups (gap {}), {:.4} for image queries probing at most {} lists of {} groups \
             (gap {}); --min-recall {}",
            p.lists,
            p.groups,
            p.text_recall,
            p.text_probes,
            p.text_group_probes,
            p.text_gap,
            p.image_recall,
            p.image_probes,
            p.image_group_probes,
            p.image_gap,
            p.min_recall
        ));
    }
    let recall = computed.recall.value;
    let catalogue_name = args
        .catalogue
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let mut info = std::collections::BTreeMap::new();
    info.insert("catalogue".to_string(), serde_json::json!(catalogue_name));
    info.insert("rows".to_string(), serde_json::json!(cat.total));
    info.insert(
        "skipped".to_string(),
        serde_json::json!(report.skipped.len()),
    );
    let options = site::SiteOptions {
        out,
        info,
        keep_columns: &args.keep_columns,
        filters,
        keywords: keyword_index,
    };
    let rows: Vec<(&catalogue::Row, Option<&[u8]>)> = indexed
        .iter()
        .map(|(row, _, thumb)| (*row, thumb.as_deref()))
        .collect();
    let build_id = site::write(options, ckpt, &rows, computed, &note)?;
    note(&format!(
        "indexed {} of {} rows ({} embedded, {} from cache, {} skipped); recall@10 {:.4}; build {} in {}",
        report.indexed,
        report.rows,
        embedded,
        reused,
        report.skipped.len(),
        recall,
        build_id,
        out.display()
    ));
    if let Some(host) = args.host_headers {
        let (path, notes) = crate::hosting::write(host, out)?;
        note(&format!("cache headers for {host:?}: {}", path.display()));
        for n in notes {
            eprintln!("warning: {n}");
        }
    }
    Ok(if report.skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// The vectors' root, centroids and list files of the site at `out`, if it was built with the
/// same model.
fn previous_root(out: &std::path::Path, fingerprint: &str) -> Option<lists::Previous> {
    let m = crate::built::manifest(out).ok()?;
    if !fingerprint.starts_with(&m.model.fingerprint) {
        return None;
    }
    let bytes = crate::built::read(out, &m.files.vectors).ok()?;
    let root = vitrine_index::lists::Root::from_bytes(&bytes).ok()?;
    // Its list files, then its group files.
    let mut lists = (0..root.file_count())
        .map(|j| crate::built::read(out, &root.file(j)).ok())
        .collect::<Option<Vec<_>>>()?;
    let groups = lists.split_off(root.lists());
    Some(lists::Previous {
        centroids: root.centroids(&groups).ok()?,
        root,
        lists,
    })
}

/// `--filter-column` must name columns the catalogue has.
fn check_filter_columns(cat: &catalogue::Catalogue, named: &[String]) -> Result<()> {
    let mut columns: Vec<&String> = Vec::new();
    for r in &cat.rows {
        for k in r.extra.keys() {
            if !columns.contains(&k) {
                columns.push(k);
            }
        }
    }
    for n in named {
        if !columns
            .iter()
            .any(|c| c.trim().eq_ignore_ascii_case(n.trim()))
        {
            let list: Vec<&str> = columns.iter().map(|c| c.as_str()).collect();
            return Err(UsageError(anyhow::anyhow!(
                "--filter-column {n:?}: the catalogue has no such column (other columns: {}); \
                 check the spelling",
                if list.is_empty() {
                    "none".to_string()
                } else {
                    list.join(", ")
                }
            ))
            .into());
        }
    }
    Ok(())
}
