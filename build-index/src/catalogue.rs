//! Reads a shop's catalogue (a folder of images, a CSV/TSV export such as a Google Merchant
//! Center feed or a Shopify product export, or JSON Lines) into uniform [`Row`]s, so the rest of
//! `build-index` never cares where products came from. Row-level problems become [`Skipped`]
//! entries with a reason; only a catalogue with nothing usable at all is an error.

mod folder;
mod json;
mod rows;
pub(crate) mod schema;
mod table;
#[cfg(test)]
mod tests;
mod text;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// Column names given on the command line (`--id-column`, `--image-column`, `--title-column`);
/// each overrides the automatic recognition of that column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ColumnOptions {
    /// The column (or JSON key) holding each product's unique id.
    pub id: Option<String>,
    /// The column (or JSON key) holding each product's image path or URL.
    pub image: Option<String>,
    /// The column (or JSON key) holding each product's display title.
    pub title: Option<String>,
}

/// Where a product's image lives. Nothing here checks that it exists; the build does that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ImageRef {
    /// A local file. Relative paths are already joined to the catalogue file's folder (or to
    /// the catalogue folder itself).
    Path(PathBuf),
    /// An `http://` or `https://` URL.
    Url(String),
}

/// One product of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// The 1-based number shown to users: the line a CSV/TSV record starts on (the header is
    /// line 1), the line of a JSON Lines object, the position in a JSON array, or the position
    /// (in sorted order) of a file in a folder.
    pub row: usize,
    /// The product's unique id (for a folder: the relative path, with `/` separators).
    pub id: String,
    /// The display title; never empty (falls back to the id, or the file name for a folder).
    pub title: String,
    /// Plain-text description (HTML bodies of Shopify exports are turned into text).
    pub description: Option<String>,
    /// The product page's address.
    pub link: Option<String>,
    /// The price, as written in the catalogue (e.g. `12.50 EUR`).
    pub price: Option<String>,
    /// The product's image.
    pub image: ImageRef,
    /// Every other non-empty column or key, kept as metadata: CSV cells as strings, JSON
    /// values as they are.
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A row that was left out of the index, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    /// The row's number, counted as in [`Row::row`].
    pub row: usize,
    /// The row's id, when it has a usable one.
    pub id: Option<String>,
    /// A sentence naming the problem and, where useful, the fix.
    pub reason: String,
}

/// Everything read from a catalogue.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Catalogue {
    /// The usable products, in catalogue order.
    pub rows: Vec<Row>,
    /// The rows that cannot be used, in catalogue order.
    pub skipped: Vec<Skipped>,
    /// The rows left out on purpose: products a shop has not published (Shopify drafts,
    /// archived or unpublished products).
    pub excluded: Vec<Skipped>,
    /// Rows indexed with a field shortened or dropped for being too long.
    pub shortened: Vec<Skipped>,
    /// How many rows were counted: `rows.len() + skipped.len() + excluded.len()`. Blank rows and
    /// Shopify's continuation rows (extra variants and images of the product above) are not
    /// counted.
    pub total: usize,
}

/// Reads the catalogue at `path`: a folder of images, a CSV/TSV file, or JSON Lines.
///
/// Fails only when nothing usable can be read at all (missing or unreadable file, no header,
/// no id or image column, a named column that does not exist, no image in a folder); the
/// message names the file and the fix. Problems with single rows end up in
/// [`Catalogue::skipped`]. A folder catalogue leaves out the folders in `skip` (the build's own
/// output and cache, which may live inside it).
pub(crate) fn read(path: &Path, columns: &ColumnOptions, skip: &[&Path]) -> Result<Catalogue> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            bail!("{shown}: no such file or folder; check the catalogue path")
        }
        Err(e) => bail!("{shown}: cannot read it ({e}); check the path and its permissions"),
    };
    if meta.is_dir() {
        return folder::read(path, skip);
    }
    let ext = path
        .extension()
        .and_then(OsStr::to_str)
        .map(str::to_ascii_lowercase);
    let ext = ext.as_deref().unwrap_or_default();
    if folder::IMAGE_EXTENSIONS.contains(&ext) {
        bail!(
            "{shown}: this is an image, not a catalogue; give the folder holding the images, or \
             a CSV, TSV or JSON Lines file"
        );
    }
    if matches!(ext, "xlsx" | "xlsm" | "xls" | "ods" | "numbers") {
        bail!(
            "{shown}: spreadsheet files cannot be read directly; export the sheet as CSV \
             (UTF-8) and give that file"
        );
    }
    let raw = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => bail!("{shown}: cannot read it ({e}); check the path and its permissions"),
    };
    let decoded;
    let bytes = match decode_utf16(&raw) {
        Some(Ok(text)) => {
            decoded = text;
            decoded.as_bytes()
        }
        Some(Err(())) => bail!("{shown}: the UTF-16 text is damaged; save the catalogue as UTF-8"),
        None => raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&raw),
    };
    if bytes.trim_ascii().is_empty() {
        bail!(
            "{shown}: the file is empty; export the catalogue again, or point build-index at a \
             folder of images"
        );
    }
    if header_line(bytes).contains(&0) {
        bail!(
            "{shown}: this is not a text file; give a CSV, TSV or JSON Lines catalogue, or a \
             folder of images"
        );
    }
    match detect(path, bytes) {
        Format::JsonLines => json::read_lines(path, bytes, columns),
        Format::JsonArray => json::read_array(path, bytes, columns),
        Format::Table(delimiter) => table::read(path, bytes, delimiter, columns),
    }
}

/// The text of a file with a UTF-16 byte order mark (as Excel's "Unicode Text" export writes),
/// without the mark; `None` for other files.
fn decode_utf16(raw: &[u8]) -> Option<Result<String, ()>> {
    let (little_endian, body) = match raw {
        [0xFF, 0xFE, body @ ..] => (true, body),
        [0xFE, 0xFF, body @ ..] => (false, body),
        _ => return None,
    };
    if body.len() % 2 != 0 {
        return Some(Err(()));
    }
    let units = body.chunks_exact(2).map(|pair| {
        let pair = [pair[0], pair[1]];
        if little_endian {
            u16::from_le_bytes(pair)
        } else {
            u16::from_be_bytes(pair)
        }
    });
    Some(
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| ()),
    )
}

/// How a catalogue file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// One JSON object per line.
    JsonLines,
    /// A single JSON array of objects.
    JsonArray,
    /// A table with a header line, split by this delimiter.
    Table(u8),
}

/// Picks the format from the file's extension, or from its content when the extension says
/// nothing (or `.json`, which can hold JSON Lines or an array).
fn detect(path: &Path, bytes: &[u8]) -> Format {
    let ext = path
        .extension()
        .and_then(OsStr::to_str)
        .map(str::to_ascii_lowercase);
    let first = bytes.iter().copied().find(|b| !b.is_ascii_whitespace());
    let header = header_line(bytes);
    match ext.as_deref() {
        Some("jsonl" | "ndjson") => Format::JsonLines,
        Some("json") if first == Some(b'[') => Format::JsonArray,
        Some("json") => Format::JsonLines,
        Some("tsv" | "tab") => Format::Table(b'\t'),
        Some("txt") => Format::Table(sniff(header, b'\t')),
        Some("csv") => Format::Table(sniff(header, b',')),
        _ => match first {
            Some(b'{') => Format::JsonLines,
            Some(b'[') => Format::JsonArray,
            _ => Format::Table(sniff(header, b',')),
        },
    }
}

/// The first non-blank line of the file.
fn header_line(bytes: &[u8]) -> &[u8] {
    bytes
        .split(|&b| b == b'\n')
        .find(|line| !line.trim_ascii().is_empty())
        .unwrap_or_default()
}

/// The delimiter of a table: `preferred` unless the header line clearly uses another one
/// (tabs and no commas means tab; semicolons alone, as European spreadsheets write, means `;`).
fn sniff(header: &[u8], preferred: u8) -> u8 {
    let has = |c: u8| header.contains(&c);
    [preferred, b'\t', b',', b';']
        .into_iter()
        .find(|&c| has(c))
        .unwrap_or(preferred)
}
