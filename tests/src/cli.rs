//! Running the real `build-index` binary: builds with the tiny fixture model, `search`, `verify`,
//! and what they leave behind (exit code, output, the `--report` JSON parsed strictly).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use serde::Deserialize;

use crate::repo_root;

/// The tiny CLIP fixture: a 16-dimensional random model, quick even in debug builds. Its int8
/// recall is below the default 0.99 threshold (real CLIP passes it), so builds pass
/// `--min-recall 0.5` unless they test the threshold itself.
pub fn tiny_model() -> PathBuf {
    repo_root().join("tests/fixtures/tiny-clip")
}

/// The `build-index` binary under test.
#[derive(Debug, Clone)]
pub struct Cli {
    bin: PathBuf,
}

/// What a finished run of the binary left behind.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
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
    pub fn expect_code(&self, code: i32) -> &Self {
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

/// `--report`'s JSON, parsed strictly: an unknown or missing field fails the test.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Rows counted.
    pub rows: usize,
    /// Rows indexed.
    pub indexed: usize,
    /// Images embedded in this build.
    pub embedded: usize,
    /// Embeddings taken from the cache.
    pub reused: usize,
    /// Items shown from their image URL (`--thumbnails remote`).
    pub remote_images: usize,
    /// Rows that cannot be used.
    pub skipped: Vec<SkippedRow>,
    /// Rows left out on purpose (unpublished products).
    pub excluded: Vec<SkippedRow>,
    /// Rows indexed with a field shortened or dropped.
    pub shortened: Vec<SkippedRow>,
    /// Columns not published.
    pub dropped_columns: Vec<String>,
    /// The filters the page offers (their keys).
    pub filters: Vec<String>,
    /// Extra columns keyword search reads.
    pub searchable_columns: Vec<String>,
    /// Damaged embedding-cache records dropped.
    pub damaged_cache_records: usize,
    /// The page's text encoder and its gate.
    pub text_encoder: Option<TextEncoderReport>,
    /// The lists and their measured probes.
    pub partition: Option<vitrine_index::PartitionInfo>,
}

/// The report's `text_encoder`.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextEncoderReport {
    /// `f16` or a quantized layout.
    pub layout: String,
    /// Bytes of the file.
    pub bytes: u64,
    /// The measured quality.
    pub quality: vitrine_index::EncoderQuality,
    /// What was tried and why.
    pub note: String,
}

/// One entry of [`Report::skipped`].
#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
#[serde(deny_unknown_fields)]
pub struct SkippedRow {
    /// The row number.
    pub row: usize,
    /// Its id, when it has one.
    pub id: Option<String>,
    /// Why.
    pub reason: String,
}

/// One result of `search --json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchHit {
    /// The item id.
    pub id: String,
    /// Its score.
    pub score: f32,
}

/// What `search --json` prints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchResults {
    /// How the text was ranked.
    pub mode: vitrine_index::SearchMode,
    /// The results, best first.
    pub results: Vec<SearchHit>,
    /// How the candidates spread over facets and filters.
    pub counts: vitrine_index::filters::Counts,
}

impl SearchResults {
    /// The result ids, best first.
    pub fn ids(&self) -> Vec<String> {
        self.results.iter().map(|h| h.id.clone()).collect()
    }
}

impl Cli {
    /// The binary at `bin` (`env!("CARGO_BIN_EXE_build-index")` in build-index's own tests).
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        Self { bin: bin.into() }
    }

    /// `$VITRINE_BUILD_INDEX`, or `target/debug/build-index` after `cargo build -p build-index`
    /// (once per test process).
    pub fn locate() -> Result<Self> {
        static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        let bin = BIN.get_or_init(|| {
            if let Some(b) = std::env::var_os("VITRINE_BUILD_INDEX") {
                return Ok(PathBuf::from(b));
            }
            let root = repo_root();
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            crate::run(Command::new(cargo).current_dir(&root).args([
                "build",
                "--quiet",
                "-p",
                "build-index",
            ]))
            .map_err(|e| format!("{e:#}"))?;
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target"));
            Ok(target.join("debug/build-index"))
        });
        bin.clone().map(Self::new).map_err(|e| anyhow!(e))
    }

    /// The binary's path.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Runs the binary with these arguments and waits for it.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let output = Command::new(&self.bin)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run build-index");
        Run::from_output(output)
    }

    /// A build of `catalogue` into `out` with the cache `cache`.
    pub fn build(&self, catalogue: &Path, out: &Path, cache: &Path) -> Build {
        Build::new(self, catalogue, out, cache)
    }

    /// `build-index search --site dir --json` with more arguments; panics unless it succeeds.
    #[track_caller]
    pub fn search(&self, dir: &Path, args: &[&str]) -> Vec<SearchHit> {
        self.search_output(dir, args).results
    }

    /// All that `build-index search --site dir --json` prints; panics unless it succeeds.
    #[track_caller]
    pub fn search_output(&self, dir: &Path, args: &[&str]) -> SearchResults {
        let mut all: Vec<OsString> = vec![
            "search".into(),
            "--site".into(),
            dir.into(),
            "--json".into(),
        ];
        all.extend(args.iter().map(OsString::from));
        let run = self.run(all);
        run.expect_code(0);
        serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("search --json printed {:?}: {e}", run.stdout))
    }

    /// The ids `search --site dir <args> --json` ranks, best first (an error, not a panic).
    pub fn search_ids(&self, dir: &Path, args: &[&str]) -> Result<Vec<String>> {
        let out = crate::run(
            Command::new(&self.bin)
                .arg("search")
                .arg("--site")
                .arg(dir)
                .args(args)
                .arg("--json"),
        )?;
        let parsed: SearchResults =
            serde_json::from_slice(&out.stdout).context("search --json output")?;
        Ok(parsed.results.into_iter().map(|h| h.id).collect())
    }

    /// `build-index verify --site dir`.
    pub fn verify(&self, dir: &Path) -> Run {
        self.run([OsStr::new("verify"), OsStr::new("--site"), dir.as_os_str()])
    }
}

/// A `build-index build` command line: the fixture model, a cache, `--min-recall 0.5` and `-q`
/// unless changed, and a report file beside (never inside) `--out`.
pub struct Build {
    cli: Cli,
    args: Vec<OsString>,
    report: PathBuf,
    quiet: bool,
    min_recall: Option<String>,
}

impl Build {
    fn new(cli: &Cli, catalogue: &Path, out: &Path, cache: &Path) -> Self {
        let report = out.with_file_name(format!(
            "{}.report.json",
            out.file_name().and_then(OsStr::to_str).unwrap_or("out")
        ));
        let mut args: Vec<OsString> = vec!["build".into(), "--catalogue".into()];
        args.push(catalogue.into());
        args.extend(["--model".into(), tiny_model().into(), "--out".into()]);
        args.push(out.into());
        args.push("--cache".into());
        args.push(cache.into());
        args.push("--report".into());
        args.push(report.clone().into());
        Self {
            cli: cli.clone(),
            args,
            report,
            quiet: true,
            min_recall: Some("0.5".into()),
        }
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Builds with the checkpoint at `model` instead of the tiny fixture.
    pub fn model(mut self, model: &Path) -> Self {
        if let Some(i) = self.args.iter().position(|a| a == "--model") {
            self.args[i + 1] = model.into();
        }
        self
    }

    /// Shows progress (no `-q`).
    pub fn verbose(mut self) -> Self {
        self.quiet = false;
        self
    }

    /// Keeps the default `--min-recall` (0.99).
    pub fn default_min_recall(mut self) -> Self {
        self.min_recall = None;
        self
    }

    /// Where the report goes.
    pub fn report_path(&self) -> &Path {
        &self.report
    }

    /// The full argument list.
    pub fn command_line(&self) -> Vec<OsString> {
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
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.cli.bin);
        cmd.args(self.command_line()).stdin(Stdio::null());
        cmd
    }

    /// Runs the build to the end; the report is read when the build wrote one.
    pub fn run(&self) -> Built {
        let _ = std::fs::remove_file(&self.report);
        let run = self.cli.run(self.command_line());
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
pub struct Built {
    /// How the process ended.
    pub run: Run,
    /// The report, if the build wrote one.
    pub report: Option<Report>,
}

impl Built {
    /// Panics unless the build exited with `code`; returns the report (which must exist).
    #[track_caller]
    pub fn expect(self, code: i32) -> Report {
        self.run.expect_code(code);
        self.report.expect("the build wrote its report")
    }
}
