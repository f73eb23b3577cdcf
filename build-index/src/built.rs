//! Reading a built site back from disk, for `search` and `verify`: its manifest, and the files
//! the manifest lists, each read from inside the site folder only.

use std::path::Path;

use anyhow::{Context, Result};
use vitrine_index::chunks::ChunkTable;
use vitrine_index::lists::Root;
use vitrine_index::{FileRef, Files, MANIFEST, Manifest};

/// The manifest of the site in `site` (a format or version problem names the file).
pub(crate) fn manifest(site: &Path) -> Result<Manifest> {
    let path = site.join(MANIFEST);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    Manifest::from_json(&bytes).with_context(|| path.display().to_string())
}

/// The bytes of a file the manifest lists, checked against its size and hash (as the page's
/// worker checks every file it downloads).
pub(crate) fn read(site: &Path, file: &FileRef) -> Result<Vec<u8>> {
    let path = site.join(&file.path);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    file.check(&bytes)
        .with_context(|| site.display().to_string())?;
    Ok(bytes)
}

/// The files beside the site's vectors root (lists, then groups), from the root (checked
/// against the manifest).
pub(crate) fn vector_files(site: &Path, files: &Files) -> Result<Vec<FileRef>> {
    let root = Root::from_bytes(&read(site, &files.vectors)?)
        .with_context(|| site.join(&files.vectors.path).display().to_string())?;
    Ok(root.files())
}

/// The chunk table of the site (checked against the manifest).
pub(crate) fn chunk_table(site: &Path, manifest: &Manifest) -> Result<ChunkTable> {
    ChunkTable::from_bytes(&read(site, &manifest.files.chunks)?, manifest.count)
        .with_context(|| site.join(&manifest.files.chunks.path).display().to_string())
}

/// Every file of the site: those the manifest lists, and the list and group files, metadata chunks and
/// thumbnail packs that the vectors' root and the chunk table name (those of a missing or
/// damaged root or table are left out: that file itself is reported).
pub(crate) fn site_files(site: &Path, manifest: &Manifest) -> Vec<FileRef> {
    let mut files: Vec<FileRef> = manifest.files.all().into_iter().cloned().collect();
    let lists = vector_files(site, &manifest.files).unwrap_or_default();
    let table = chunk_table(site, manifest).unwrap_or_default();
    let named = table.metadata_files().chain(table.packs()).cloned();
    for f in lists.into_iter().chain(named) {
        if !files.iter().any(|o| o.path == f.path) {
            files.push(f);
        }
    }
    files
}
