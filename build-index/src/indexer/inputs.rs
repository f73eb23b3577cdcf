//! What every build reads before it embeds: the catalogue, the model, the caches (with other
//! machines' caches merged in) and imported embeddings; then the embedding pipeline over a set of
//! rows. Shared by the site build and `--shard` runs, which differ only in what follows.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use vitrine_clip::Checkpoint;

use super::budget::DecodeBudget;
use super::cache::{self, EmbeddingCache, ThumbCache};
use super::pipeline::{self, ImageOutcome};
use super::progress::Progress;
use super::{Args, import, merge};
use crate::catalogue::{self, Catalogue, ColumnOptions, ImageRef, Row};
use crate::fetch::{FetchOptions, Fetcher};
use crate::local::Confinement;

/// A build's inputs, opened.
pub(crate) struct Inputs {
    /// The catalogue as read.
    pub(crate) cat: Catalogue,
    /// The model.
    pub(crate) ckpt: Checkpoint,
    /// The checkpoint's fingerprint (hex).
    pub(crate) fingerprint: String,
    embeddings: EmbeddingCache,
    thumbs: ThumbCache,
    fetcher: Option<Fetcher>,
    local: Confinement,
    imported: import::Imported,
}

impl Inputs {
    /// Reads the catalogue and model, opens the caches, merges `--merge-cache` folders into them
    /// and reads `--embeddings`. `out` (the site, when there is one) is left out of a folder
    /// catalogue, as is the cache.
    pub(crate) fn open(args: &Args, out: Option<&Path>, note: &dyn Fn(&str)) -> Result<Self> {
        let columns = ColumnOptions {
            id: args.id_column.clone(),
            image: args.image_column.clone(),
            title: args.title_column.clone(),
        };
        let cache_dir = args.cache.clone().unwrap_or_else(cache::default_dir);
        // A folder catalogue may hold the site and the cache (`--out shop/search`): not products.
        let skip: Vec<&Path> = out.into_iter().chain([cache_dir.as_path()]).collect();
        let cat = catalogue::read(&args.catalogue, &columns, &skip)?;
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
        let embeddings = EmbeddingCache::open(&cache_dir, &identity, dim)?;
        let thumbs = ThumbCache::open(&cache_dir, args.thumb_size)?;
        for n in merge::merge_all(&args.merge_caches, &identity, &embeddings, &thumbs)? {
            note(&n);
        }
        let folder = catalogue_folder(&args.catalogue);
        let imported = if args.embeddings.is_empty() {
            import::Imported::default()
        } else {
            let found = import::read(
                &args.embeddings,
                &args.embeddings_metadata,
                &args.model,
                dim,
                &cat.rows,
                &folder,
            )?;
            found.notes.iter().for_each(|n| note(n));
            found
        };
        let fetcher = if cat.rows.iter().any(|r| matches!(r.image, ImageRef::Url(_))) {
            Some(fetcher(args, &cache_dir, note)?)
        } else {
            None
        };
        let local = Confinement::new(&folder, args.allow_outside_paths)
            .with_context(|| format!("cannot read the catalogue's folder {}", folder.display()))?;
        Ok(Self {
            cat,
            ckpt,
            fingerprint,
            embeddings,
            thumbs,
            fetcher,
            local,
            imported,
        })
    }

    /// Runs `rows` through the embedding pipeline (the cache first, then the image tower).
    pub(crate) fn embed(
        &self,
        args: &Args,
        rows: &[Row],
        note: &dyn Fn(&str),
    ) -> Result<Vec<ImageOutcome>> {
        let budget = DecodeBudget::new(args.decode_memory << 20);
        let preprocessor = self.ckpt.preprocessor();
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let io_workers = if self.fetcher.is_some() { 4 } else { 0 };
        let settings = pipeline::Settings {
            preprocessor: &preprocessor,
            embeddings: &self.embeddings,
            thumbs: &self.thumbs,
            fetcher: self.fetcher.as_ref(),
            local: &self.local,
            budget: &budget,
            max_pixels: args.max_pixels,
            thumb_size: args.thumb_size,
            batch_size: args.batch_size,
            workers: args.jobs.unwrap_or(cores) + io_workers,
            imported: &self.imported.by_row,
            remote_thumbnails: args.thumbnails == super::args::Thumbnails::Remote,
        };
        let progress = Progress::new(rows.len() as u64, args.quiet);
        let mut load = || -> Result<_> {
            progress.note("loading the image tower");
            Ok(self.ckpt.image_encoder()?)
        };
        let outcomes = pipeline::run(rows, &settings, &mut load, &progress)?;
        progress.finish();
        if let Some(f) = &self.fetcher {
            let st = f.stats();
            note(&format!(
                "downloads: {} downloaded, {} unchanged (304), {} fresh in cache, {} retries, {} \
                 failed, {} from the cache as the server kept failing",
                st.downloaded, st.revalidated, st.fresh, st.retries, st.failed, st.stale
            ));
        }
        Ok(outcomes)
    }

    /// Damaged embedding-cache records dropped when the cache was opened.
    pub(crate) fn damaged_cache_records(&self) -> usize {
        self.embeddings.damaged()
    }
}

/// The folder relative image paths are read from: the catalogue folder, or the file's folder.
fn catalogue_folder(catalogue: &Path) -> PathBuf {
    if catalogue.is_dir() {
        return catalogue.to_path_buf();
    }
    match catalogue.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn fetcher(args: &Args, cache_dir: &Path, note: &dyn Fn(&str)) -> Result<Fetcher> {
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
    Fetcher::new(&cache_dir.join("http"), opts)
}

/// The embedding cache key: the checkpoint's fingerprint and the preprocessing that fed it.
fn model_identity(ckpt: &Checkpoint, fingerprint: &str) -> Result<String> {
    let mut h = Sha256::new();
    h.update(fingerprint.as_bytes());
    h.update(serde_json::to_vec(&ckpt.preprocess)?);
    h.update(vitrine_clip::PREPROCESS_VERSION.to_le_bytes());
    Ok(vitrine_index::hex(&h.finalize())[..24].to_string())
}
