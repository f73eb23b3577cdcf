//! build-index's integration tests run on the one test kit (`vitrine-testkit`) with this crate's
//! own binary; this module binds the kit to it and names the committed test catalogues.

// Each test crate uses a different part of these helpers.
#![allow(dead_code, unused_imports)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

pub(crate) use vitrine_testkit::cli::{
    Build, Built, Cli, Report, Run, SearchHit, SearchResults, SkippedRow,
};
pub(crate) use vitrine_testkit::images::{mean_rgb, png};
pub(crate) use vitrine_testkit::site_dir::{SiteDir, tree};
pub(crate) use vitrine_testkit::tempdir;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_build-index");

/// The tiny CLIP fixture (see [`vitrine_testkit::cli::tiny_model`]).
pub(crate) const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/tiny-clip");

/// The binary under test, for the kit.
pub(crate) fn cli() -> Cli {
    Cli::new(BIN)
}

/// A build of `catalogue` into `out` with the cache `cache` (see [`Build`]).
pub(crate) fn new_build(catalogue: &Path, out: &Path, cache: &Path) -> Build {
    cli().build(catalogue, out, cache)
}

/// Runs `build-index` with these arguments and waits for it.
pub(crate) fn run<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    cli().run(args)
}

/// `build-index verify --site dir`.
pub(crate) fn verify(dir: &Path) -> Run {
    cli().verify(dir)
}

/// `build-index search --site dir --json` with more arguments; panics unless it succeeds.
#[track_caller]
pub(crate) fn search(dir: &Path, args: &[&str]) -> Vec<SearchHit> {
    cli().search(dir, args)
}

/// All that `build-index search --site dir --json` prints; panics unless it succeeds.
#[track_caller]
pub(crate) fn search_output(dir: &Path, args: &[&str]) -> SearchResults {
    cli().search_output(dir, args)
}

/// Asserts that `dir` holds exactly the files its manifest lists and that `verify` accepts it.
#[track_caller]
pub(crate) fn assert_complete_site(dir: &Path) -> SiteDir {
    SiteDir::assert_complete(&cli(), dir)
}

/// Copies a folder recursively.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    vitrine_testkit::copy_dir(from, to).expect("copy a folder");
}

/// The committed test catalogues (`tests/catalogues/` at the repository root).
pub(crate) fn catalogues() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/catalogues")
}

/// The nested image folder every committed catalogue points into.
pub(crate) fn folder_catalogue() -> PathBuf {
    catalogues().join("folder")
}

/// How many images the committed catalogues hold (each catalogue lists all of them).
pub(crate) const CATALOGUE_IMAGES: usize = 36;

/// Size of the embedding cache's header (magic and width).
pub(crate) const EMPTY_CACHE: u64 = 12;
/// Size of one cached embedding of the 16-dimensional fixture: image hash, 16 f32, checksum.
pub(crate) const RECORD: u64 = 32 + 16 * 4 + 8;

/// The size of the (only) embedding cache file under `cache`, 0 if there is none yet.
pub(crate) fn embedding_cache_size(cache: &Path) -> u64 {
    std::fs::read_dir(cache.join("embeddings"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}
