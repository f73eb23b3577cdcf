//! Tests of catalogue reading, on real files in temporary folders, grouped by format.

mod errors;
mod folder;
mod json;
mod shopify;
mod table;
mod text;

use std::path::{Path, PathBuf};

use super::{Catalogue, ColumnOptions, ImageRef, Row, read};

/// Writes `contents` to `dir/name` (creating folders) and returns the path.
fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create folders");
    }
    std::fs::write(&path, contents).expect("write file");
    path
}

/// Reads with automatic column recognition; panics on error.
fn read_ok(path: &Path) -> Catalogue {
    read(path, &ColumnOptions::default(), &[]).unwrap_or_else(|e| panic!("read failed: {e:#}"))
}

/// The error message of a read that must fail.
fn read_err(path: &Path, columns: &ColumnOptions) -> String {
    match read(path, columns, &[]) {
        Ok(catalogue) => panic!("expected an error, got {catalogue:#?}"),
        Err(e) => format!("{e:#}"),
    }
}

/// The row with this id; panics when there is none.
fn row<'a>(catalogue: &'a Catalogue, id: &str) -> &'a Row {
    catalogue
        .rows
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no row {id:?} in {catalogue:#?}"))
}

/// The ids of the rows, in order.
fn ids(catalogue: &Catalogue) -> Vec<&str> {
    catalogue.rows.iter().map(|r| r.id.as_str()).collect()
}

/// `(row, reason)` of every skipped row, in order.
fn skipped(catalogue: &Catalogue) -> Vec<(usize, &str)> {
    catalogue
        .skipped
        .iter()
        .map(|s| (s.row, s.reason.as_str()))
        .collect()
}

/// An `ImageRef::Url`.
fn url(s: &str) -> ImageRef {
    ImageRef::Url(s.to_owned())
}

/// A string JSON value.
fn s(text: &str) -> serde_json::Value {
    serde_json::Value::String(text.to_owned())
}
