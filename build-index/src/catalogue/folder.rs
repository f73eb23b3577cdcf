//! A folder of images as a catalogue: every image file (recursively, hidden ones skipped) is a
//! product whose id is its relative path and whose title comes from its file name.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::text::title_from_stem;
use super::{Catalogue, ImageRef, Row, Skipped};

/// File extensions (lower case) that make a file a product image.
pub(super) const IMAGE_EXTENSIONS: &[&str] =
    &["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff"];

/// An image file found under the root.
struct Found {
    /// The relative path's components.
    parts: Vec<OsString>,
    /// The file's path (the root joined with `parts`).
    path: PathBuf,
}

impl Found {
    /// The relative path with `/` separators, as bytes: the sort key.
    fn key(&self) -> Vec<u8> {
        let parts: Vec<&[u8]> = self.parts.iter().map(|p| p.as_encoded_bytes()).collect();
        parts.join(&b'/')
    }
}

/// Reads every image under `root` except those in the folders `skip`, sorted by relative path
/// (byte order).
pub(super) fn read(root: &Path, skip: &[&Path]) -> Result<Catalogue> {
    let mut found = Vec::new();
    // Skipped folders count as visited already.
    let mut visited: HashSet<PathBuf> = skip.iter().filter_map(|p| p.canonicalize().ok()).collect();
    walk(root, &mut Vec::new(), &mut visited, &mut found)?;
    if found.is_empty() {
        let extensions = IMAGE_EXTENSIONS
            .iter()
            .map(|e| format!(".{e}"))
            .collect::<Vec<_>>();
        bail!(
            "{}: no image files in this folder ({}; hidden files are skipped); put the product \
             images in it, or give a catalogue file (CSV, TSV or JSON Lines) instead",
            root.display(),
            extensions.join(", ")
        );
    }
    let mut keyed: Vec<(Vec<u8>, Found)> = found.into_iter().map(|f| (f.key(), f)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));

    let mut catalogue = Catalogue {
        total: keyed.len(),
        ..Catalogue::default()
    };
    for (index, (_, found)) in keyed.into_iter().enumerate() {
        let row = index + 1;
        let parts: Option<Vec<&str>> = found.parts.iter().map(|p| p.to_str()).collect();
        let Some(parts) = parts else {
            catalogue.skipped.push(Skipped {
                row,
                id: None,
                reason: format!(
                    "the file name {:?} is not valid UTF-8; rename the file",
                    found.path.display().to_string()
                ),
            });
            continue;
        };
        let id = parts.join("/");
        let stem = found
            .path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let title = Some(title_from_stem(stem))
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| id.clone());
        catalogue.rows.push(Row {
            row,
            id,
            title,
            description: None,
            link: None,
            price: None,
            image: ImageRef::Path(found.path),
            extra: BTreeMap::new(),
        });
    }
    Ok(catalogue)
}

/// Collects the images under `dir` (whose path relative to the root is `parts`) into `found`.
/// Symbolic links are followed, but a folder is never entered twice.
fn walk(
    dir: &Path,
    parts: &mut Vec<OsString>,
    visited: &mut HashSet<PathBuf>,
    found: &mut Vec<Found>,
) -> Result<()> {
    if let Ok(real) = dir.canonicalize()
        && !visited.insert(real)
    {
        return Ok(());
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => bail!(
            "{}: cannot read this folder ({e}); fix its permissions or move it out of the \
             catalogue folder",
            dir.display()
        ),
    };
    let mut names = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => names.push(entry.file_name()),
            Err(e) => bail!("{}: cannot list this folder ({e})", dir.display()),
        }
    }
    // Sorted, so that when two links lead to one folder, the same one is always read.
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    for name in names {
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = dir.join(&name);
        // `metadata` follows symbolic links; a broken link counts as a file.
        let is_dir = std::fs::metadata(&path).is_ok_and(|m| m.is_dir());
        parts.push(name);
        if is_dir {
            walk(&path, parts, visited, found)?;
        } else if has_image_extension(&path) {
            found.push(Found {
                parts: parts.clone(),
                path,
            });
        }
        parts.pop();
    }
    Ok(())
}

/// True for file names ending in one of [`IMAGE_EXTENSIONS`], in any case.
fn has_image_extension(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        IMAGE_EXTENSIONS
            .iter()
            .any(|known| e.eq_ignore_ascii_case(known))
    })
}
