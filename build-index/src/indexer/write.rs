//! Writing the site atomically: every file goes into a staging folder beside `--out`, which then
//! takes `--out`'s place in one step (Linux `renameat2(RENAME_EXCHANGE)`; two renames elsewhere,
//! with recovery at the next start). A build killed at any moment leaves the previous site intact,
//! and builds that overlap (a slow cron run and the next one) take turns instead of breaking each other.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

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
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Puts the staged site in place of `--out`.
    pub(crate) fn commit(mut self) -> Result<()> {
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

    #[test]
    fn a_commit_replaces_the_whole_folder_and_an_abandoned_one_changes_nothing() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("site");
        let s = Staging::new(&out).unwrap();
        s.write("a/one.txt", b"1").unwrap();
        s.commit().unwrap();
        assert_eq!(std::fs::read(out.join("a/one.txt")).unwrap(), b"1");

        let s = Staging::new(&out).unwrap();
        s.write("two.txt", b"2").unwrap();
        drop(s); // killed before commit
        assert!(out.join("a/one.txt").exists() && !out.join("two.txt").exists());

        let s = Staging::new(&out).unwrap();
        s.write("two.txt", b"2").unwrap();
        s.commit().unwrap();
        assert!(!out.join("a/one.txt").exists() && out.join("two.txt").exists());
        let leftovers: Vec<_> = std::fs::read_dir(root.path()).unwrap().flatten().collect();
        assert_eq!(leftovers.len(), 1, "only the site remains");
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
