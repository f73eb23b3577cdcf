//! Helpers shared by the integration tests: running the real `build-index` binary with the tiny
//! fixture model, reading what a build wrote (report, manifest, item metadata, thumbnails), and
//! making test images at run time.

// Each test crate uses a different part of these helpers.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::Deserialize;
use vitrine_index::{Item, MANIFEST, Manifest, MetadataChunk};

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_build-index");

/// The tiny CLIP fixture: a 16-dimensional random model, quick even in debug builds. Its int8
/// recall is below the default 0.99 threshold (real CLIP passes it), so builds pass
/// `--min-recall 0.5` unless they test the threshold itself.
pub(crate) const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/tiny-clip");

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

/// What a finished run of the binary left behind.
#[derive(Debug)]
pub(crate) struct Run {
    /// The exit code (`None` if killed by a signal).
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    fn from_output(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with the whole output unless the exit code is `code`.
    #[track_caller]
    pub(crate) fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit status {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `build-index` with these arguments and waits for it.
pub(crate) fn run<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run build-index");
    Run::from_output(output)
}

/// `--report`'s JSON, parsed strictly: an unknown or missing field fails the test.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Report {
    pub(crate) rows: usize,
    pub(crate) indexed: usize,
    pub(crate) embedded: usize,
    pub(crate) reused: usize,
    pub(crate) skipped: Vec<SkippedRow>,
}

/// One entry of [`Report::skipped`].
#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct SkippedRow {
    pub(crate) row: usize,
    pub(crate) id: Option<String>,
    pub(crate) reason: String,
}

/// A `build-index build` command line: the fixture model, a cache, `--min-recall 0.5` and `-q`
/// unless changed, and a report file beside (never inside) `--out`.
pub(crate) struct Build {
    args: Vec<OsString>,
    report: PathBuf,
    quiet: bool,
    min_recall: Option<String>,
}

impl Build {
    /// A build of `catalogue` into `out` with the cache `cache`.
    pub(crate) fn new(catalogue: &Path, out: &Path, cache: &Path) -> Self {
        let report = out.with_file_name(format!(
            "{}.report.json",
            out.file_name().and_then(OsStr::to_str).unwrap_or("out")
        ));
        let mut args: Vec<OsString> = vec!["build".into(), "--catalogue".into()];
        args.push(catalogue.into());
        args.extend(["--model".into(), MODEL.into(), "--out".into()]);
        args.push(out.into());
        args.push("--cache".into());
        args.push(cache.into());
        args.push("--report".into());
        args.push(report.clone().into());
        Self {
            args,
            report,
            quiet: true,
            min_recall: Some("0.5".into()),
        }
    }

    /// Adds arguments.
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Shows progress (no `-q`).
    pub(crate) fn verbose(mut self) -> Self {
        self.quiet = false;
        self
    }

    /// Keeps the default `--min-recall` (0.99).
    pub(crate) fn default_min_recall(mut self) -> Self {
        self.min_recall = None;
        self
    }

    /// Where the report goes.
    pub(crate) fn report_path(&self) -> &Path {
        &self.report
    }

    /// The full argument list.
    pub(crate) fn command_line(&self) -> Vec<OsString> {
        let mut args = self.args.clone();
        if let Some(r) = &self.min_recall {
            args.push("--min-recall".into());
            args.push(r.into());
        }
        if self.quiet {
            args.push("-q".into());
        }
        args
    }

    /// A command for the build, to spawn (and kill) it.
    pub(crate) fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(self.command_line()).stdin(Stdio::null());
        cmd
    }

    /// Runs the build to the end; the report is read when the build wrote one.
    pub(crate) fn run(&self) -> Built {
        let _ = std::fs::remove_file(&self.report);
        let run = run(self.command_line());
        let report = std::fs::read(&self.report).ok().map(|bytes| {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "the report is not in the documented format ({e}):\n{}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        });
        Built { run, report }
    }
}

/// A finished build: its output and its report.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) run: Run,
    pub(crate) report: Option<Report>,
}

impl Built {
    /// Panics unless the build exited with `code`; returns the report (which must exist).
    #[track_caller]
    pub(crate) fn expect(self, code: i32) -> Report {
        self.run.expect_code(code);
        self.report.expect("the build wrote its report")
    }
}

/// A built site on disk.
pub(crate) struct Site {
    pub(crate) dir: PathBuf,
    pub(crate) manifest: Manifest,
}

impl Site {
    /// Reads `dir/manifest.json`.
    #[track_caller]
    pub(crate) fn open(dir: &Path) -> Self {
        let bytes = std::fs::read(dir.join(MANIFEST))
            .unwrap_or_else(|e| panic!("{}: no manifest ({e})", dir.display()));
        let manifest = Manifest::from_json(&bytes).expect("a valid manifest");
        Self {
            dir: dir.to_owned(),
            manifest,
        }
    }

    /// Every item's metadata, in index order.
    pub(crate) fn items(&self) -> Vec<Item> {
        let mut items = Vec::new();
        for chunk in &self.manifest.files.metadata {
            let bytes = self.read(&chunk.file.path);
            let parsed = MetadataChunk::from_json(&bytes).expect("a metadata chunk");
            assert_eq!(parsed.first, chunk.first);
            assert_eq!(parsed.items.len(), chunk.count as usize);
            items.extend(parsed.items);
        }
        items
    }

    /// Items by id.
    pub(crate) fn items_by_id(&self) -> BTreeMap<String, Item> {
        self.items()
            .into_iter()
            .map(|i| (i.id.clone(), i))
            .collect()
    }

    /// The bytes of a file of the site.
    #[track_caller]
    pub(crate) fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// The decoded thumbnail of the item `id`.
    #[track_caller]
    pub(crate) fn thumbnail(&self, id: &str) -> image::DynamicImage {
        let items = self.items_by_id();
        let item = items
            .get(id)
            .unwrap_or_else(|| panic!("{id} is not indexed"));
        let path = item.thumbnail.as_ref().expect("every item has a thumbnail");
        assert!(
            self.manifest
                .files
                .thumbnails
                .iter()
                .any(|f| &f.path == path),
            "{path} is listed in the manifest"
        );
        image::load_from_memory(&self.read(path)).expect("thumbnails are images")
    }

    /// Paths of every file the manifest lists, plus the manifest itself.
    pub(crate) fn listed_files(&self) -> BTreeSet<String> {
        let mut set: BTreeSet<String> = self
            .manifest
            .files
            .all()
            .into_iter()
            .map(|f| f.path.clone())
            .collect();
        set.insert(MANIFEST.to_string());
        set
    }
}

/// Every file under `dir` by relative path (with `/`), with its bytes.
pub(crate) fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let entry = entry.expect("entry");
            let path = entry.path();
            if entry.file_type().expect("file type").is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                let rel = rel
                    .iter()
                    .map(|p| p.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Asserts that `dir` holds exactly the files its manifest lists (nothing more, such as a
/// staging folder or a stray temporary file) and that `verify` accepts it.
#[track_caller]
pub(crate) fn assert_complete_site(dir: &Path) -> Site {
    let site = Site::open(dir);
    let on_disk: BTreeSet<String> = tree(dir).into_keys().collect();
    assert_eq!(
        on_disk,
        site.listed_files(),
        "{} holds exactly the manifest's files",
        dir.display()
    );
    verify(dir).expect_code(0);
    site
}

/// `build-index verify --site dir`.
pub(crate) fn verify(dir: &Path) -> Run {
    run([OsStr::new("verify"), OsStr::new("--site"), dir.as_os_str()])
}

/// `search --json` output.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchResults {
    pub(crate) results: Vec<Hit>,
}

/// One search result.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Hit {
    pub(crate) id: String,
    pub(crate) score: f32,
}

/// `build-index search --site dir --json` with more arguments; panics unless it succeeds.
#[track_caller]
pub(crate) fn search(dir: &Path, args: &[&str]) -> Vec<Hit> {
    let mut all: Vec<OsString> = vec![
        "search".into(),
        "--site".into(),
        dir.into(),
        "--json".into(),
    ];
    all.extend(args.iter().map(OsString::from));
    let run = run(all);
    run.expect_code(0);
    let parsed: SearchResults = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("search --json printed {:?}: {e}", run.stdout));
    parsed.results
}

/// Copies a folder recursively.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Encodes an image as PNG bytes.
pub(crate) fn png(image: &image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode PNG");
    out.into_inner()
}

/// The mean of each RGB channel.
pub(crate) fn mean_rgb(image: &image::DynamicImage) -> [f64; 3] {
    let rgb = image.to_rgb8();
    let n = f64::from(rgb.width() * rgb.height());
    let mut sum = [0f64; 3];
    for p in rgb.pixels() {
        for c in 0..3 {
            sum[c] += f64::from(p[c]);
        }
    }
    sum.map(|s| s / n)
}

/// A temporary directory for one test.
pub(crate) fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("build-index-test-")
        .tempdir()
        .expect("temp dir")
}

/// Size of the embedding cache's header (magic and width).
pub(crate) const EMPTY_CACHE: u64 = 12;
/// Size of one cached embedding of the 16-dimensional fixture: image hash and 16 f32.
pub(crate) const RECORD: u64 = 32 + 16 * 4;

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
