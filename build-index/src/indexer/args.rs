//! `build-index build`'s command line: every flag, its default and its help, and the range
//! checks that turn values no build needs into usage errors (exit 2) before any work starts.

use std::path::PathBuf;

use anyhow::{Result, bail};
use vitrine_clip::{DEFAULT_MAX_PIXELS, DEFAULT_MODEL};

use super::encoder;

/// Where the page gets a row's picture (`--thumbnails`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Thumbnails {
    /// Thumbnails made by the build and packed into the site (offline too).
    Packed,
    /// The row's own image URL, where it has one (no thumbnail made; not offline).
    Remote,
}

/// Arguments of `build-index build`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The catalogue: a folder of images, a CSV/TSV with a header, or JSON Lines.
    #[arg(long, value_name = "FILE|DIR")]
    pub(crate) catalogue: PathBuf,
    /// A checkpoint folder in Hugging Face layout, or a hub id.
    #[arg(long, default_value = DEFAULT_MODEL, value_name = "DIR|HUB_ID")]
    pub(crate) model: String,
    /// Where the site's index goes (replaced atomically); required unless --shard.
    #[arg(long, value_name = "DIR", required_unless_present = "shard")]
    pub(crate) out: Option<PathBuf>,
    /// Only fill the cache with this share of the rows (row position modulo N = I) and write no
    /// site: `I/N` (0 ≤ I < N ≤ 10000), or `auto` for a Kubernetes Indexed Job
    /// (JOB_COMPLETION_INDEX, JOB_COMPLETIONS) or a Slurm array (SLURM_ARRAY_TASK_ID,
    /// SLURM_ARRAY_TASK_COUNT). A final build without --shard then writes the site.
    #[arg(long, value_name = "I/N|auto")]
    pub(crate) shard: Option<String>,
    /// Import the embeddings and thumbnails of another cache folder (a shard's) into --cache
    /// before building (repeatable).
    #[arg(long = "merge-cache", value_name = "DIR")]
    pub(crate) merge_caches: Vec<PathBuf>,
    /// Precomputed image embeddings (repeatable): a clip-retrieval output folder (`img_emb/`,
    /// `metadata/` as JSON Lines or CSV), or an `.npy` file with --embeddings-metadata.
    #[arg(long = "embeddings", value_name = "DIR|FILE.npy")]
    pub(crate) embeddings: Vec<PathBuf>,
    /// The row metadata of an `.npy` given to --embeddings (JSON Lines or CSV with a column
    /// `image_path`, `url` or `id`), one per --embeddings file, in the same order.
    #[arg(long = "embeddings-metadata", value_name = "FILE")]
    pub(crate) embeddings_metadata: Vec<PathBuf>,
    /// Also write a JSON report of indexed and skipped rows here.
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,
    /// Cache of embeddings, thumbnails and downloads [default: $VITRINE_CACHE or ~/.cache/vitrine].
    #[arg(long, value_name = "DIR")]
    pub(crate) cache: Option<PathBuf>,
    /// Catalogue column holding the id.
    #[arg(long, value_name = "NAME")]
    pub(crate) id_column: Option<String>,
    /// Catalogue column holding the image path or URL.
    #[arg(long, value_name = "NAME")]
    pub(crate) image_column: Option<String>,
    /// Catalogue column holding the title.
    #[arg(long, value_name = "NAME")]
    pub(crate) title_column: Option<String>,
    /// A zero-shot facet, e.g. `color=black,white,red` (repeatable).
    #[arg(long = "facet", value_name = "NAME=LABEL,LABEL,…")]
    pub(crate) facets: Vec<String>,
    /// Prompt of the facet in the same position, `{}` for the label (repeatable)
    /// [default: "a photo of a {}"].
    #[arg(long = "facet-template", value_name = "TEMPLATE")]
    pub(crate) facet_templates: Vec<String>,
    /// User-Agent for downloads; add a contact (URL or e-mail) so site owners can reach you.
    #[arg(long, value_name = "TEXT")]
    pub(crate) user_agent: Option<String>,
    /// Seconds between two requests to the same host (randomly jittered ±50%).
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub(crate) delay: f64,
    /// Requests in flight per host.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub(crate) per_host: usize,
    /// Images per inference batch (larger batches use the CPU better: 17 img/s at 8, 19 at 32
    /// for ViT-B/32 on 2 cores).
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub(crate) batch_size: usize,
    /// Decoding threads [default: the number of cores].
    #[arg(long, value_name = "N")]
    pub(crate) jobs: Option<usize>,
    /// Images over this many pixels are skipped (decompression bombs).
    #[arg(long, default_value_t = DEFAULT_MAX_PIXELS, value_name = "PIXELS")]
    pub(crate) max_pixels: u64,
    /// Longest side of thumbnails in pixels.
    #[arg(long, default_value_t = 256, value_name = "PIXELS")]
    pub(crate) thumb_size: u32,
    /// Where the page gets pictures: `packed` makes thumbnails and packs them into the site;
    /// `remote` shows rows whose image is an http(s) URL from that URL (the shop's own image
    /// host; no thumbnail is made, and with --embeddings the image is not even downloaded).
    /// Rows with local images are packed either way.
    #[arg(long, value_enum, default_value = "packed")]
    pub(crate) thumbnails: Thumbnails,
    /// The page's text encoder: `auto` ships the smallest layout that passes the quality gate
    /// (q8e4 ≈ 54 MB, q8e8 ≈ 65 MB, f16 ≈ 127 MB at ViT-B/32 size); a layout named here that
    /// misses the gate fails the build (status 1).
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) text_encoder: encoder::EncoderChoice,
    /// The text encoder's gate: mean cosine of its query vectors to the f32 checkpoint's.
    #[arg(long, default_value_t = 0.99, value_name = "FRACTION")]
    pub(crate) min_encoder_cosine: f64,
    /// The text encoder's gate: recall@10 of its rankings against the f32 query's.
    #[arg(long, default_value_t = 0.95, value_name = "FRACTION")]
    pub(crate) min_encoder_recall: f64,
    /// Fail (status 1, nothing written) if recall@10 of the int8 index is below this, or if
    /// probing --max-probes lists of a partitioned index cannot reach it [default: 0.99 for the
    /// int8 vectors, 0.95 for probing].
    #[arg(long, value_name = "FRACTION")]
    pub(crate) min_recall: Option<f64>,
    /// Split the vectors into this many lists [default: one list below 5,000 items, else
    /// √(8·items), in √lists groups]; the page fetches only the groups and lists a query needs.
    #[arg(long, value_name = "N")]
    pub(crate) partitions: Option<usize>,
    /// The most lists a query may probe [default: a quarter of the lists, at least 4].
    #[arg(long, value_name = "N")]
    pub(crate) max_probes: Option<usize>,
    /// Treat any skipped row as an error: status 1 and nothing written.
    #[arg(long)]
    pub(crate) strict: bool,
    /// Also publish this catalogue column in the item metadata (repeatable; `description` for
    /// the description). By default only what the page shows is published: id, title, price,
    /// link, thumbnail.
    #[arg(long = "keep-column", value_name = "NAME")]
    pub(crate) keep_columns: Vec<String>,
    /// Offer this catalogue column as a filter on the page (repeatable). Brand, product type,
    /// availability, condition, custom labels, price and sale price are offered when present.
    #[arg(long = "filter-column", value_name = "NAME")]
    pub(crate) filter_columns: Vec<String>,
    /// Also write the cache headers this host needs into the site's root (the folder holding
    /// --out): `_headers` for Netlify and Cloudflare Pages, `s3-upload.sh` for S3 (+ CloudFront).
    /// See the README's deploy recipes.
    #[arg(long, value_enum, value_name = "HOST")]
    pub(crate) host_headers: Option<crate::hosting::Host>,
    /// Memory the decoding threads share, in MB: an image is decoded when its share fits, and
    /// refused when it alone needs more.
    #[arg(long, default_value_t = 1024, value_name = "MB")]
    pub(crate) decode_memory: u64,
    /// Seconds one image URL may take over all its attempts.
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
    pub(crate) download_timeout: f64,
    /// Allow image URLs (and redirects) to loopback, private and link-local addresses; by
    /// default only public addresses are downloaded from.
    #[arg(long)]
    pub(crate) allow_private_network: bool,
    /// Allow local image paths outside the catalogue's folder (`..`, absolute paths, links
    /// leading out of it); by default they are refused.
    #[arg(long)]
    pub(crate) allow_outside_paths: bool,
    /// No progress output.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

/// Refuses values no build needs, as usage errors (exit 2) rather than an allocation failure
/// (exit 101/134) hours later.
pub(super) fn check_ranges(args: &Args) -> Result<()> {
    let checks: [(bool, &str); 9] = [
        (
            args.partitions.is_none_or(|p| (1..=1 << 20).contains(&p))
                && args.max_probes.is_none_or(|p| p >= 1),
            "--partitions must be 1 to 1048576 and --max-probes at least 1",
        ),
        (
            (1..=MAX_BATCH).contains(&args.batch_size),
            "--batch-size must be 1 to 256",
        ),
        (
            args.min_recall.is_none_or(|r| (0.0..=1.0).contains(&r))
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
