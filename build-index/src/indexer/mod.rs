//! `build-index build`: catalogue in, static site index out. Reads the catalogue, embeds each
//! image (reusing the cache), classifies zero-shot facets, quantizes, checks recall, and writes
//! content-addressed files plus `manifest.json` atomically. Rows that cannot be used are skipped
//! with a reason and reported; everything else is indexed.

mod budget;
mod cache;
mod compute;
mod encoder;
mod facets;
mod filters;
mod keywords;
mod pipeline;
mod progress;
mod recall;
mod report;
mod site;
mod thumbs;
mod write;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use vitrine_clip::{Checkpoint, DEFAULT_MAX_PIXELS, DEFAULT_MODEL};

use crate::UsageError;
use crate::catalogue::{self, ColumnOptions, ImageRef};
use crate::fetch::{FetchOptions, Fetcher};
use crate::local::Confinement;
use budget::DecodeBudget;
use pipeline::ImageOutcome;
use progress::Progress;
use report::{Report, ReportRow};

/// Arguments of `build-index build`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The catalogue: a folder of images, a CSV/TSV with a header, or JSON Lines.
    #[arg(long, value_name = "FILE|DIR")]
    catalogue: PathBuf,
    /// A checkpoint folder in Hugging Face layout, or a hub id.
    #[arg(long, default_value = DEFAULT_MODEL, value_name = "DIR|HUB_ID")]
    model: String,
    /// Where the site's index goes (replaced atomically).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Also write a JSON report of indexed and skipped rows here.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Cache of embeddings, thumbnails and downloads [default: $VITRINE_CACHE or ~/.cache/vitrine].
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Catalogue column holding the id.
    #[arg(long, value_name = "NAME")]
    id_column: Option<String>,
    /// Catalogue column holding the image path or URL.
    #[arg(long, value_name = "NAME")]
    image_column: Option<String>,
    /// Catalogue column holding the title.
    #[arg(long, value_name = "NAME")]
    title_column: Option<String>,
    /// A zero-shot facet, e.g. `color=black,white,red` (repeatable).
    #[arg(long = "facet", value_name = "NAME=LABEL,LABEL,…")]
    facets: Vec<String>,
    /// Prompt of the facet in the same position, `{}` for the label (repeatable)
    /// [default: "a photo of a {}"].
    #[arg(long = "facet-template", value_name = "TEMPLATE")]
    facet_templates: Vec<String>,
    /// User-Agent for downloads; add a contact (URL or e-mail) so site owners can reach you.
    #[arg(long, value_name = "TEXT")]
    user_agent: Option<String>,
    /// Seconds between two requests to the same host (randomly jittered ±50%).
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    delay: f64,
    /// Requests in flight per host.
    #[arg(long, default_value_t = 1, value_name = "N")]
    per_host: usize,
    /// Images per inference batch (larger batches use the CPU better: 17 img/s at 8, 19 at 32
    /// for ViT-B/32 on 2 cores).
    #[arg(long, default_value_t = 16, value_name = "N")]
    batch_size: usize,
    /// Decoding threads [default: the number of cores].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Images over this many pixels are skipped (decompression bombs).
    #[arg(long, default_value_t = DEFAULT_MAX_PIXELS, value_name = "PIXELS")]
    max_pixels: u64,
    /// Longest side of thumbnails in pixels.
    #[arg(long, default_value_t = 256, value_name = "PIXELS")]
    thumb_size: u32,
    /// The page's text encoder: `auto` ships the smallest layout that passes the quality gate
    /// (q8e4 ≈ 54 MB, q8e8 ≈ 65 MB, f16 ≈ 127 MB at ViT-B/32 size); a layout named here that
    /// misses the gate fails the build (status 1).
    #[arg(long, value_enum, default_value = "auto")]
    text_encoder: encoder::EncoderChoice,
    /// The text encoder's gate: mean cosine of its query vectors to the f32 checkpoint's.
    #[arg(long, default_value_t = 0.99, value_name = "FRACTION")]
    min_encoder_cosine: f64,
    /// The text encoder's gate: recall@10 of its rankings against the f32 query's.
    #[arg(long, default_value_t = 0.95, value_name = "FRACTION")]
    min_encoder_recall: f64,
    /// Fail (status 1, nothing written) if recall@10 of the int8 index is below this.
    #[arg(long, default_value_t = 0.99, value_name = "FRACTION")]
    min_recall: f64,
    /// Treat any skipped row as an error: status 1 and nothing written.
    #[arg(long)]
    strict: bool,
    /// Also publish this catalogue column in the item metadata (repeatable; `description` for
    /// the description). By default only what the page shows is published: id, title, price,
    /// link, thumbnail.
    #[arg(long = "keep-column", value_name = "NAME")]
    keep_columns: Vec<String>,
    /// Offer this catalogue column as a filter on the page (repeatable). Brand, product type,
    /// availability, condition, custom labels, price and sale price are offered when present.
    #[arg(long = "filter-column", value_name = "NAME")]
    filter_columns: Vec<String>,
    /// Also write the cache headers this host needs into the site's root (the folder holding
    /// --out): `_headers` for Netlify and Cloudflare Pages, `s3-upload.sh` for S3 (+ CloudFront).
    /// See the README's deploy recipes.
    #[arg(long, value_enum, value_name = "HOST")]
    host_headers: Option<crate::hosting::Host>,
    /// Memory the decoding threads share, in MB: an image is decoded when its share fits, and
    /// refused when it alone needs more.
    #[arg(long, default_value_t = 1024, value_name = "MB")]
    decode_memory: u64,
    /// Seconds one image URL may take over all its attempts.
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
    download_timeout: f64,
    /// Allow image URLs (and redirects) to loopback, private and link-local addresses; by
    /// default only public addresses are downloaded from.
    #[arg(long)]
    allow_private_network: bool,
    /// Allow local image paths outside the catalogue's folder (`..`, absolute paths, links
    /// leading out of it); by default they are refused.
    #[arg(long)]
    allow_outside_paths: bool,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let specs = facets::parse_specs(&args.facets, &args.facet_templates).map_err(UsageError)?;
    check_ranges(args).map_err(UsageError)?;
    if let Some(host) = args.host_headers {
        crate::hosting::check(host, &args.out).map_err(|e| UsageError(e.into()))?;
    }
    let columns = ColumnOptions {
        id: args.id_column.clone(),
        image: args.image_column.clone(),
        title: args.title_column.clone(),
    };
    let note = |m: &str| {
        if !args.quiet {
            eprintln!("{m}")
        }
    };
    // Held until the site is written: an overlapping build waits, then reuses what this one cached.
    let _turn = write::lock_out(&args.out, |dir| {
        note(&format!(
            "another build-index build is writing in {}; waiting for it to finish",
            dir.display()
        ))
    })?;
    write::check_out(&args.out).map_err(|e| UsageError(e.into()))?;
    let cache_dir = args.cache.clone().unwrap_or_else(cache::default_dir);
    // A folder catalogue may hold the site and the cache (`--out shop/search`): not products.
    let cat = catalogue::read(&args.catalogue, &columns, &[&args.out, &cache_dir])?;
    check_filter_columns(&cat, &args.filter_columns)?;
    let ckpt = Checkpoint::open(&args.model)?;
    note(&format!(
        "{} rows in {}; model {}",
        cat.total,
        args.catalogue.display(),
        args.model
    ));

    let fingerprint = vitrine_index::hex(&ckpt.fingerprint()?);
    let identity = model_identity(&ckpt, &fingerprint)?;
    let dim = ckpt.config.projection_dim;
    let embeddings = cache::EmbeddingCache::open(&cache_dir, &identity, dim)?;
    let thumbs = cache::ThumbCache::open(&cache_dir, args.thumb_size)?;
    let fetcher = if cat.rows.iter().any(|r| matches!(r.image, ImageRef::Url(_))) {
        let mut opts = FetchOptions {
            delay: Duration::from_secs_f64(args.delay),
            per_host: args.per_host.max(1),
            url_deadline: Duration::from_secs_f64(args.download_timeout),
            allow_private_network: args.allow_private_network,
            ..FetchOptions::default()
        };
        match &args.user_agent {
            Some(ua) => opts.user_agent = ua.clone(),
            None => note(&format!(
                "note: downloading images as \"{}\"; add --user-agent \"myshop-search \
                 (ops@myshop.example)\" so the image hosts can reach you",
                opts.user_agent
            )),
        }
        Some(Fetcher::new(&cache_dir.join("http"), opts)?)
    } else {
        None
    };

    let folder = if args.catalogue.is_dir() {
        args.catalogue.clone()
    } else {
        let parent = args.catalogue.parent().unwrap_or(Path::new(""));
        if parent.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            parent.to_path_buf()
        }
    };
    let local = Confinement::new(&folder, args.allow_outside_paths)
        .with_context(|| format!("cannot read the catalogue's folder {}", folder.display()))?;
    let budget = DecodeBudget::new(args.decode_memory << 20);
    let preprocessor = ckpt.preprocessor();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let io_workers = if fetcher.is_some() { 4 } else { 0 };
    let settings = pipeline::Settings {
        preprocessor: &preprocessor,
        embeddings: &embeddings,
        thumbs: &thumbs,
        fetcher: fetcher.as_ref(),
        local: &local,
        budget: &budget,
        max_pixels: args.max_pixels,
        thumb_size: args.thumb_size,
        batch_size: args.batch_size,
        workers: args.jobs.unwrap_or(cores) + io_workers,
    };
    let progress = Progress::new(cat.rows.len() as u64, args.quiet);
    let mut load = || -> Result<_> {
        progress.note("loading the image tower");
        Ok(ckpt.image_encoder()?)
    };
    let outcomes = pipeline::run(&cat.rows, &settings, &mut load, &progress)?;
    progress.finish();
    if let Some(f) = &fetcher {
        let st = f.stats();
        note(&format!(
            "downloads: {} downloaded, {} unchanged (304), {} fresh in cache, {} retries, {} failed, \
             {} from the cache as the server kept failing",
            st.downloaded, st.revalidated, st.fresh, st.retries, st.failed, st.stale
        ));
    }

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
        skipped,
        excluded: cat.excluded.iter().map(ReportRow::from).collect(),
        shortened: cat.shortened.iter().map(ReportRow::from).collect(),
        dropped_columns: report::dropped_columns(&cat, &published),
        filters: filters.filters.iter().map(|f| f.key.clone()).collect(),
        searchable_columns: keyword_index.columns.clone(),
        damaged_cache_records: embeddings.damaged(),
        text_encoder: None,
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
    let previous = crate::built::manifest(&args.out)
        .ok()
        .map(|m| m.encoder.layout);
    let options = compute::ComputeOptions {
        specs: &specs,
        min_recall: args.min_recall,
        fingerprint: &fingerprint,
        encoder: args.text_encoder,
        gate: encoder::Gate {
            min_mean_cosine: args.min_encoder_cosine,
            min_recall: args.min_encoder_recall,
        },
        titles: &titles,
        previous_encoder: previous.as_deref(),
    };
    let computed = compute::compute(&ckpt, &embeddings, &options)?;
    note(&computed.encoder.note);
    let mut report = report;
    report.text_encoder = Some(report::TextEncoderReport {
        layout: computed.encoder.info.layout.clone(),
        bytes: computed.encoder.bytes.len() as u64,
        quality: computed.encoder.info.quality.clone(),
        note: computed.encoder.note.clone(),
    });
    write_report(&report)?;
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
        out: &args.out,
        info,
        keep_columns: &args.keep_columns,
        filters,
        keywords: keyword_index,
    };
    let rows: Vec<(&catalogue::Row, &[u8])> = indexed
        .iter()
        .map(|(row, _, thumb)| (*row, thumb.as_slice()))
        .collect();
    let build_id = site::write(options, &ckpt, &rows, computed)?;
    note(&format!(
        "indexed {} of {} rows ({} embedded, {} from cache, {} skipped); recall@10 {:.4}; build {} in {}",
        report.indexed,
        report.rows,
        embedded,
        reused,
        report.skipped.len(),
        recall,
        build_id,
        args.out.display()
    ));
    if let Some(host) = args.host_headers {
        let (path, notes) = crate::hosting::write(host, &args.out)?;
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

/// Refuses values no build needs, as usage errors (exit 2) rather than an allocation failure
/// (exit 101/134) hours later.
fn check_ranges(args: &Args) -> Result<()> {
    let checks: [(bool, &str); 8] = [
        (
            (1..=MAX_BATCH).contains(&args.batch_size),
            "--batch-size must be 1 to 256",
        ),
        (
            (0.0..=1.0).contains(&args.min_recall)
                && (0.0..=1.0).contains(&args.min_encoder_cosine)
                && (0.0..=1.0).contains(&args.min_encoder_recall),
            "--min-recall, --min-encoder-cosine and --min-encoder-recall must be within 0..1",
        ),
        (
            args.delay >= 0.0 && args.delay < 3600.0,
            "--delay must be within 0..3600 seconds",
        ),
        (
            (1..=MAX_PIXELS).contains(&args.max_pixels),
            "--max-pixels must be 1 to 1000000000 (a gigapixel)",
        ),
        (
            args.jobs.is_none_or(|j| (1..=256).contains(&j)),
            "--jobs must be 1 to 256",
        ),
        (
            (16..=2048).contains(&args.thumb_size),
            "--thumb-size must be 16 to 2048 pixels",
        ),
        (
            (64..=1 << 20).contains(&args.decode_memory),
            "--decode-memory must be 64 to 1048576 MB",
        ),
        (
            args.download_timeout > 0.0 && args.download_timeout <= 86_400.0,
            "--download-timeout must be more than 0 and at most 86400 seconds",
        ),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, message)) => bail!("{message}"),
        None => Ok(()),
    }
}

/// The largest `--batch-size`.
const MAX_BATCH: usize = 256;
/// The largest `--max-pixels`: a gigapixel.
const MAX_PIXELS: u64 = 1_000_000_000;

/// The embedding cache key: the checkpoint's fingerprint and the preprocessing that fed it.
fn model_identity(ckpt: &Checkpoint, fingerprint: &str) -> Result<String> {
    let mut h = Sha256::new();
    h.update(fingerprint.as_bytes());
    h.update(serde_json::to_vec(&ckpt.preprocess)?);
    h.update(vitrine_clip::PREPROCESS_VERSION.to_le_bytes());
    Ok(vitrine_index::hex(&h.finalize())[..24].to_string())
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
