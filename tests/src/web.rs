//! Real sites for the browser tests: the release app shell (built once by Trunk, or
//! `$VITRINE_DIST`), copied into a temporary folder with an index that the `build-index` binary
//! builds from the committed test catalogue (`tests/catalogues/products.jsonl`) and the tiny
//! random CLIP checkpoint (`tests/fixtures/tiny-clip`), served by [`TestServer`].
//!
//! | variable | what |
//! |---|---|
//! | `VITRINE_DIST` | a built app shell (`trunk build --release`) to use as is |
//! | `VITRINE_BUILD_INDEX` | the `build-index` binary to use as is |
//!
//! Without `VITRINE_DIST` the shell is built into `target/e2e-dist` and rebuilt only when the
//! page's sources change (a fingerprint of their sizes and times sits in
//! `target/e2e-dist.stamp`); a file lock keeps parallel test processes from building it twice.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::Value;
use vitrine_index::{MANIFEST, Manifest};

use crate::cli::{Cli, tiny_model};
use crate::page;
use crate::server::TestServer;
use crate::webdriver::Browser;
use crate::{copy_dir, repo_root, run};

/// Sizes and modification times of everything `trunk build` reads.
fn shell_fingerprint(root: &Path) -> Result<String> {
    fn walk(path: &Path, h: &mut DefaultHasher) -> Result<()> {
        let meta = std::fs::metadata(path).with_context(|| path.display().to_string())?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for e in entries {
                walk(&e, h)?;
            }
        } else {
            path.hash(h);
            meta.len().hash(h);
            meta.modified()?.hash(h);
        }
        Ok(())
    }
    let mut h = DefaultHasher::new();
    for f in [
        "index.html",
        "Trunk.toml",
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        "public",
    ] {
        walk(&root.join(f), &mut h)?;
    }
    for krate in std::fs::read_dir(root.join("crates"))? {
        let krate = krate?.path();
        walk(&krate.join("Cargo.toml"), &mut h)?;
        walk(&krate.join("src"), &mut h)?;
    }
    Ok(format!("{:016x}", h.finish()))
}

fn build_shell() -> Result<PathBuf> {
    let root = repo_root();
    let dist = root.join("target/e2e-dist");
    let stamp = root.join("target/e2e-dist.stamp");
    std::fs::create_dir_all(root.join("target"))?;
    let lock = std::fs::File::create(root.join("target/e2e-dist.lock"))?;
    lock.lock().context("cannot lock target/e2e-dist.lock")?;
    let want = shell_fingerprint(&root)?;
    let have = std::fs::read_to_string(&stamp).unwrap_or_default();
    if have.trim() != want || !dist.join("index.html").is_file() {
        eprintln!("vitrine-e2e: building the app shell (trunk build --release) into {dist:?}…");
        let tools = root.join(".tools/node_modules/.bin");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![tools];
        paths.extend(std::env::split_paths(&path));
        run(Command::new("trunk")
            .current_dir(&root)
            .env("PATH", std::env::join_paths(paths)?)
            .args(["build", "--release", "--dist"])
            .arg(&dist))
        .context("trunk build failed (run ./dev setup, or set VITRINE_DIST to a built site)")?;
        std::fs::write(&stamp, &want)?;
    }
    Ok(dist)
}

/// The built app shell: `$VITRINE_DIST`, or `target/e2e-dist` built (once) by Trunk.
pub fn app_shell() -> Result<PathBuf> {
    static SHELL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let shell = SHELL.get_or_init(|| {
        if let Some(d) = std::env::var_os("VITRINE_DIST") {
            let d = PathBuf::from(d);
            return if d.join("index.html").is_file() {
                Ok(d)
            } else {
                Err(format!("VITRINE_DIST={}: no index.html there", d.display()))
            };
        }
        build_shell().map_err(|e| format!("{e:#}"))
    });
    shell.clone().map_err(|e| anyhow!(e))
}

/// A catalogue as JSON Lines rows, starting from the committed test catalogue.
#[derive(Clone)]
pub struct Catalogue {
    /// One JSON object per item, `image` an absolute path.
    pub rows: Vec<Value>,
}

/// The title of the test catalogue's row that tries to inject HTML.
pub const XSS_TITLE: &str = "<img src=x onerror=alert(1)>";

impl Catalogue {
    /// `tests/catalogues/products.jsonl` with absolute image paths; every third row also gets a
    /// `price` and a `link`.
    pub fn standard() -> Result<Self> {
        let dir = repo_root().join("tests/catalogues");
        let path = dir.join("products.jsonl");
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path:?}"))?;
        let mut rows = Vec::new();
        for (n, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let mut row: Value = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not JSON", path.display(), n + 1))?;
            let image = row["image"]
                .as_str()
                .ok_or_else(|| anyhow!("{}:{}: no image", path.display(), n + 1))?;
            row["image"] = dir.join(image).display().to_string().into();
            if n % 3 == 0 {
                let id = row["id"].as_str().unwrap_or_default().to_string();
                row["price"] = format!("{}.50 EUR", 3 + n).into();
                row["link"] = format!("https://shop.example/p/{id}").into();
            }
            rows.push(row);
        }
        ensure!(rows.len() >= 10, "{path:?} has only {} rows", rows.len());
        Ok(Self { rows })
    }

    /// [`Catalogue::standard`] with a `brand` (by the row's top category: `Toolbox` for tools,
    /// `Hatter` for clothing, …) and a `price` in EUR on every row: a shop's feed with filters.
    pub fn shop() -> Result<Self> {
        let mut c = Self::standard()?;
        for (n, row) in c.rows.iter_mut().enumerate() {
            let top = row["category"].as_str().unwrap_or_default();
            let brand = match top.split('/').next().unwrap_or_default() {
                "food" => "Orchard",
                "containers" => "Pack It",
                "buildings" => "Vitrine Home",
                "tools" => "Toolbox",
                "people" => "Hatter",
                "animals" => "Print Shop",
                "transportation" | "recreation" => "Playtime",
                "" => "Photo Lab",
                _ => "Sticker Co",
            };
            row["brand"] = brand.into();
            row["price"] = format!("{}.00 EUR", 2 + n).into();
        }
        Ok(c)
    }

    /// The ids of the rows whose `key` is `value`, in catalogue order.
    pub fn ids_where(&self, key: &str, value: &str) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r[key] == value)
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .collect()
    }

    /// The ids, in catalogue order.
    pub fn ids(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .collect()
    }

    /// The id of the row with this title.
    pub fn id_titled(&self, title: &str) -> Option<String> {
        self.rows
            .iter()
            .find(|r| r["title"] == title)
            .and_then(|r| r["id"].as_str().map(str::to_string))
    }

    /// Writes the rows as JSON Lines.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = String::new();
        for r in &self.rows {
            text += &serde_json::to_string(r)?;
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {path:?}"))
    }
}

/// A built site in a temporary folder: the app shell with an index in `search/`, optionally
/// under a sub-path of the served root.
pub struct WebSite {
    cli: Cli,
    dir: tempfile::TempDir,
    /// What the server serves.
    root: PathBuf,
    /// The page's folder under `root` (`""` or e.g. `shop/search/`).
    prefix: String,
    builds: usize,
}

impl WebSite {
    /// The shell at the served root with an index of `catalogue`; `extra` goes to
    /// `build-index build` (e.g. `--facet kind=a,b`).
    pub fn build(catalogue: &Catalogue, extra: &[&str]) -> Result<Self> {
        Self::build_at("", catalogue, extra)
    }

    /// Like [`WebSite::build`] with the page at `prefix` (e.g. `shop/search/`) of the served root.
    pub fn build_at(prefix: &str, catalogue: &Catalogue, extra: &[&str]) -> Result<Self> {
        let shell = app_shell()?;
        let dir = tempfile::Builder::new()
            .prefix("vitrine-e2e-site-")
            .tempdir()?;
        let root = dir.path().join("root");
        let site = Self {
            cli: Cli::locate()?,
            root,
            prefix: prefix.to_string(),
            dir,
            builds: 0,
        };
        // The shell only: a `search/` (as in a deployed dist/) or Trunk's hidden staging stays out.
        std::fs::create_dir_all(site.page_dir())?;
        for entry in std::fs::read_dir(&shell).with_context(|| format!("cannot read {shell:?}"))? {
            let entry = entry?;
            let name = entry.file_name();
            if name == "search" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            let dst = site.page_dir().join(&name);
            if entry.file_type()?.is_dir() {
                copy_dir(&entry.path(), &dst)?;
            } else {
                std::fs::copy(entry.path(), &dst)?;
            }
        }
        let mut site = site;
        site.rebuild(catalogue, extra)?;
        Ok(site)
    }

    /// The served root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The page's folder (holding `index.html`).
    pub fn page_dir(&self) -> PathBuf {
        self.root.join(&self.prefix)
    }

    /// The index folder (holding `manifest.json`).
    pub fn index_dir(&self) -> PathBuf {
        self.page_dir().join("search")
    }

    /// (Re)builds the index from `catalogue` into `search/`, as a redeploy would.
    pub fn rebuild(&mut self, catalogue: &Catalogue, extra: &[&str]) -> Result<()> {
        self.builds += 1;
        let jsonl = self
            .dir
            .path()
            .join(format!("catalogue-{}.jsonl", self.builds));
        catalogue.write(&jsonl)?;
        run(Command::new(self.cli.bin())
            .arg("build")
            .arg("--catalogue")
            .arg(&jsonl)
            .arg("--model")
            .arg(tiny_model())
            // The catalogue sits in a temporary folder; its images stay in the repository.
            .args([
                "--min-recall",
                "0.5",
                "-q",
                "--allow-outside-paths",
                "--cache",
            ])
            .arg(self.dir.path().join("cache"))
            .arg("--out")
            .arg(self.index_dir())
            .args(extra))?;
        Ok(())
    }

    /// The ids `build-index search --site <index> <args> --json` ranks, best first.
    pub fn cli_search(&self, args: &[&str]) -> Result<Vec<String>> {
        self.cli.search_ids(&self.index_dir(), args)
    }

    /// The index's manifest.
    pub fn manifest(&self) -> Result<Manifest> {
        let path = self.index_dir().join(MANIFEST);
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {path:?}"))?;
        Ok(Manifest::from_json(&bytes)?)
    }

    /// Serves the root on a free port.
    pub fn serve(&self) -> Result<TestServer> {
        TestServer::files(&self.root)
    }

    /// The page's URL on `server` plus `query` (e.g. `?q=cat`).
    pub fn page_url(&self, server: &TestServer, query: &str) -> String {
        format!("{}{}{query}", server.url(), self.prefix)
    }

    /// Opens the page on `server` at `?q=<text>`, waits until it is ready and shows the top 10
    /// that `build-index search --text <text>` ranks, and returns the ids it shows: the check
    /// that the page ranks as the command line does.
    pub fn open_text_search(
        &self,
        browser: &Browser,
        server: &TestServer,
        text: &str,
    ) -> Result<Vec<String>> {
        let expected = self.cli_search(&["--text", text, "-k", "10"])?;
        ensure!(!expected.is_empty(), "the CLI found nothing for {text:?}");
        browser.goto(&self.page_url(server, &format!("?q={}", crate::encode(text))))?;
        page::wait_ready(browser)?;
        page::wait_top(browser, &format!("?q={text}"), &expected)
    }
}
