//! Writing the site atomically: every file goes into a staging folder beside `--out`, which then
//! takes `--out`'s place in one step (Linux `renameat2(RENAME_EXCHANGE)`; two renames elsewhere,
//! with recovery at the next start). A build killed at any moment leaves the previous site intact,
//! and builds that overlap (a slow cron run and the next one) take turns instead of breaking each other.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use vitrine_index::{FORMAT, MANIFEST};

/// A folder being filled with the next version of the site.
pub(crate) struct Staging {
    dir: PathBuf,
    out: PathBuf,
    committed: bool,
}

fn sibling(out: &Path, tag: &str) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!(".{name}.{tag}"))
}

/// `out` made absolute, and its parent folder (created if missing).
fn absolute_with_parent(out: &Path) -> Result<(PathBuf, PathBuf)> {
    let out = if out.is_absolute() {
        out.to_path_buf()
    } else {
        std::env::current_dir()?.join(out)
    };
    let parent = out
        .parent()
        .context("--out has no parent folder")?
        .to_path_buf();
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    Ok((out, parent))
}

/// Why `--out` cannot take the site: build-index replaces the whole folder, so it writes only to
/// a new or empty folder, or to one holding a site it wrote and nothing else.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OutProblem {
    /// A file, not a folder.
    #[error("--out {0} is a file; give a folder for the site's index (e.g. dist/search)")]
    NotAFolder(PathBuf),
    /// A folder with files and no vitrine manifest.
    #[error(
        "--out {0} is not empty and holds no vitrine index ({1}); build-index replaces the \
         whole folder, so give it a folder of its own, e.g. --out dist/search beside the app \
         shell in dist/"
    )]
    NotAnIndex(PathBuf, String),
    /// A vitrine site with files its manifest does not list.
    #[error(
        "--out {0} holds files build-index did not write ({1}); move them out of the folder \
         (it is replaced whole on every build) or give another --out"
    )]
    ForeignFiles(PathBuf, String),
    /// The folder cannot be read.
    #[error("--out {0}: cannot read it ({1})")]
    Unreadable(PathBuf, std::io::Error),
}

/// Every file under `dir` by relative path with `/` separators.
fn files_under(dir: &Path) -> std::io::Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(root, &path, out)?;
            } else {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                let parts: Vec<String> = rel
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// The files a vitrine manifest (of any format version) lists, or `None` if `bytes` are not one.
fn listed_by_manifest(bytes: &[u8]) -> Option<Vec<String>> {
    fn collect(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(p)) = map.get("path") {
                    out.push(p.clone());
                }
                map.values().for_each(|v| collect(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if v.get("format")?.as_str()? != FORMAT {
        return None;
    }
    let mut out = vec![MANIFEST.to_string()];
    collect(v.get("files")?, &mut out);
    Some(out)
}

/// Whether `e` says a file has a layout version this build-index does not read: an older
/// build-index wrote it.
fn older_layout(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<vitrine_index::Error>(),
            Some(vitrine_index::Error::Version(_))
        )
    })
}

/// The files under `out` (`files`) that the vectors' root and the chunk table of its site name.
/// Where the manifest, root or table has a layout this build-index does not read (an older
/// build-index's, replaced by this build), every content-addressed file under the stems that
/// file names (lists and groups; metadata chunks and thumbnail packs) counts as named.
fn listed_by_root(out: &Path, files: &[String]) -> Vec<String> {
    use vitrine_index::chunks::{METADATA_STEM, PACK_STEM};
    use vitrine_index::groups::GROUP_STEM;
    use vitrine_index::lists::LIST_STEM;
    let under = |stems: &[&str]| -> Vec<String> {
        files
            .iter()
            .filter(|f| {
                vitrine_index::name_hash(f).is_some()
                    && stems
                        .iter()
                        .any(|s| f.strip_prefix(s).is_some_and(|rest| rest.starts_with('.')))
            })
            .cloned()
            .collect()
    };
    let (vectors, chunks) = ([LIST_STEM, GROUP_STEM], [METADATA_STEM, PACK_STEM]);
    let m = match crate::built::manifest(out) {
        Ok(m) => m,
        Err(e) if older_layout(&e) => return under(&[&vectors[..], &chunks[..]].concat()),
        Err(_) => return Vec::new(),
    };
    let mut listed = match crate::built::vector_files(out, &m.files) {
        Ok(named) => named.into_iter().map(|f| f.path).collect(),
        Err(e) if older_layout(&e) => under(&vectors),
        Err(_) => Vec::new(),
    };
    match crate::built::chunk_table(out, &m) {
        Ok(t) => listed.extend(t.metadata_files().chain(t.packs()).map(|f| f.path.clone())),
        Err(e) if older_layout(&e) => listed.extend(under(&chunks)),
        Err(_) => {}
    }
    listed
}

/// Checks that `out` may be replaced by a new site: missing, empty, or a site build-index wrote
/// with nothing else in it. Nothing build-index did not write is ever deleted.
pub(crate) fn check_out(out: &Path) -> Result<(), OutProblem> {
    let meta = match std::fs::metadata(out) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(OutProblem::Unreadable(out.to_path_buf(), e)),
    };
    if !meta.is_dir() {
        return Err(OutProblem::NotAFolder(out.to_path_buf()));
    }
    let files = files_under(out).map_err(|e| OutProblem::Unreadable(out.to_path_buf(), e))?;
    if files.is_empty() {
        return Ok(());
    }
    let shown = |names: &[&String]| {
        let mut s: Vec<&str> = names.iter().take(5).map(|n| n.as_str()).collect();
        if names.len() > 5 {
            s.push("…");
        }
        s.join(", ")
    };
    let Some(listed) = std::fs::read(out.join(MANIFEST))
        .ok()
        .and_then(|b| listed_by_manifest(&b))
    else {
        let all: Vec<&String> = files.iter().collect();
        return Err(OutProblem::NotAnIndex(
            out.to_path_buf(),
            format!("it holds {}", shown(&all)),
        ));
    };
    let mut listed = listed;
    listed.extend(listed_by_root(out, &files));
    let foreign: Vec<&String> = files.iter().filter(|f| !listed.contains(f)).collect();
    if foreign.is_empty() {
        Ok(())
    } else {
        Err(OutProblem::ForeignFiles(out.to_path_buf(), shown(&foreign)))
    }
}

/// Holds the folder that receives `--out` (and its staging siblings) for this build alone; the
/// lock goes with the process, so a killed build never leaves it behind. Returns `None` where
/// folders cannot be locked (not Unix).
pub(crate) fn lock_out(out: &Path, waiting: impl FnOnce(&Path)) -> Result<Option<File>> {
    let (_, parent) = absolute_with_parent(out)?;
    if !cfg!(unix) {
        return Ok(None);
    }
    let dir = File::open(&parent).with_context(|| format!("cannot open {}", parent.display()))?;
    match dir.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            waiting(&parent);
            dir.lock()
                .with_context(|| format!("cannot lock {}", parent.display()))?;
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", parent.display()));
        }
    }
    Ok(Some(dir))
}

impl Staging {
    /// Recovers from an interrupted swap, removes leftovers of killed builds, and creates a fresh
    /// staging folder. Call it while holding [`lock_out`], or another build's staging is removed.
    pub(crate) fn new(out: &Path) -> Result<Self> {
        let (out, parent) = absolute_with_parent(out)?;
        let parent = parent.as_path();
        let previous = sibling(&out, "previous");
        if !out.exists() && previous.exists() {
            std::fs::rename(&previous, &out).context("cannot restore the previous site")?;
        }
        let prefix = format!(
            ".{}.staging-",
            out.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        for entry in std::fs::read_dir(parent)?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        if previous.exists() {
            let _ = std::fs::remove_dir_all(&previous);
        }
        let dir = sibling(&out, &format!("staging-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self {
            dir,
            out,
            committed: false,
        })
    }

    /// Writes one file (relative path with `/`), creating folders as needed.
    pub(crate) fn write(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::write(&path, bytes).map_err(|e| crate::local::write_error(&path, e))
    }

    /// Puts the staged site in place of `--out`, after checking once more that the old folder
    /// holds only what build-index wrote (the build may have taken hours).
    pub(crate) fn commit(mut self) -> Result<()> {
        check_out(&self.out)?;
        if !self.out.exists() {
            std::fs::rename(&self.dir, &self.out)
                .with_context(|| format!("cannot move the new site to {}", self.out.display()))?;
            self.committed = true;
            return Ok(());
        }
        if !exchange(&self.dir, &self.out)? {
            let previous = sibling(&self.out, "previous");
            std::fs::rename(&self.out, &previous)?;
            std::fs::rename(&self.dir, &self.out)?;
            std::fs::rename(&previous, &self.dir)?;
        }
        self.committed = true;
        // `dir` now holds the old site. The new one is live whatever happens here, so a failure
        // is only a warning (the next build removes the leftover).
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!(
                "warning: the new site is in place, but the old one could not be removed from {} \
                 ({e}); the next build tries again",
                self.dir.display()
            );
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Atomically swaps two folders; `Ok(false)` where the system cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<bool> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => Ok(false),
        Err(e) => Err(std::io::Error::from(e)).context("cannot swap in the new site"),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest listing `paths`.
    fn manifest(paths: &[&str]) -> Vec<u8> {
        let files: Vec<serde_json::Value> = paths
            .iter()
            .map(|p| serde_json::json!({ "path": p }))
            .collect();
        serde_json::to_vec(&serde_json::json!({"format": FORMAT, "files": files})).unwrap()
    }

    #[test]
    fn a_commit_replaces_the_whole_folder_and_an_abandoned_one_changes_nothing() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("site");
        let s = Staging::new(&out).unwrap();
        s.write("a/one.txt", b"1").unwrap();
        s.write(MANIFEST, &manifest(&["a/one.txt"])).unwrap();
        s.commit().unwrap();
        assert_eq!(std::fs::read(out.join("a/one.txt")).unwrap(), b"1");

        let s = Staging::new(&out).unwrap();
        s.write("two.txt", b"2").unwrap();
        drop(s); // killed before commit
        assert!(out.join("a/one.txt").exists() && !out.join("two.txt").exists());

        let s = Staging::new(&out).unwrap();
        s.write("two.txt", b"2").unwrap();
        s.write(MANIFEST, &manifest(&["two.txt"])).unwrap();
        s.commit().unwrap();
        assert!(!out.join("a/one.txt").exists() && out.join("two.txt").exists());
        let leftovers: Vec<_> = std::fs::read_dir(root.path()).unwrap().flatten().collect();
        assert_eq!(leftovers.len(), 1, "only the site remains");
    }

    #[test]
    fn only_a_missing_or_empty_folder_or_a_site_of_ours_may_be_replaced() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("site");
        check_out(&out).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        check_out(&out).unwrap();
        std::fs::write(out.join("products.csv"), b"id,image").unwrap();
        let err = check_out(&out).unwrap_err();
        assert!(matches!(err, OutProblem::NotAnIndex(..)), "{err}");
        assert!(err.to_string().contains("products.csv"), "{err}");
        std::fs::write(
            out.join(MANIFEST),
            br#"{"format": "vitrine-index", "version": 1, "files": {"vectors": {"path": "v.0123456789abcdef.bin"}}}"#,
        )
        .unwrap();
        std::fs::write(out.join("v.0123456789abcdef.bin"), b"x").unwrap();
        let err = check_out(&out).unwrap_err();
        assert!(matches!(err, OutProblem::ForeignFiles(..)), "{err}");
        std::fs::remove_file(out.join("products.csv")).unwrap();
        check_out(&out).unwrap();
        assert!(matches!(
            check_out(&out.join(MANIFEST)),
            Err(OutProblem::NotAFolder(_))
        ));
    }

    #[test]
    fn an_interrupted_two_step_swap_is_recovered() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("site");
        std::fs::create_dir_all(sibling(&out, "previous")).unwrap();
        std::fs::write(sibling(&out, "previous").join("m.json"), b"old").unwrap();
        let _s = Staging::new(&out).unwrap();
        assert_eq!(std::fs::read(out.join("m.json")).unwrap(), b"old");
    }
}
