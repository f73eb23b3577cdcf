//! CSV and TSV catalogues with a header line (Google Merchant Center feeds, Shopify product
//! exports, spreadsheets).

use std::path::Path;

use anyhow::{Result, bail};
use serde_json::Value;

use super::rows::Builder;
use super::schema::{Noun, Schema};
use super::{Catalogue, ColumnOptions};

/// Reads a table whose fields are split by `delimiter`; `bytes` has no BOM.
pub(super) fn read(
    file: &Path,
    bytes: &[u8],
    delimiter: u8,
    columns: &ColumnOptions,
) -> Result<Catalogue> {
    let shown = file.display();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(bytes);
    let header = match reader.byte_headers() {
        Ok(header) => header.clone(),
        Err(e) => bail!("{shown}: cannot read the header line ({e})"),
    };
    let names: Vec<String> = header
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_owned())
        .collect();
    if names.iter().all(String::is_empty) {
        bail!(
            "{shown}: no header line; the first line must name the columns (for example \
             id,title,image_link)"
        );
    }
    let schema = Schema::resolve(file, names, columns, Noun::Column)?;
    let base = file.parent().unwrap_or(Path::new(""));
    let mut builder = Builder::new(&schema, base);
    let mut lines = LineCounter::new(bytes);
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(0, |p| lines.line_at(p.byte()));
                bail!("{shown}: cannot read line {line} ({e})");
            }
        }
        let row = record.position().map_or(0, |p| lines.line_at(p.byte()));
        if record.iter().all(|field| field.trim_ascii().is_empty()) {
            // Blank rows (often trailing `,,,,` lines from spreadsheets) are not products.
            continue;
        }
        let mut cells = Vec::with_capacity(record.len());
        let mut bad_column = None;
        for (i, field) in record.iter().enumerate() {
            match std::str::from_utf8(field) {
                Ok(text) if text.trim().is_empty() => cells.push(None),
                Ok(text) => cells.push(Some(Value::String(text.trim().to_owned()))),
                Err(_) => {
                    bad_column.get_or_insert(i);
                    cells.push(None);
                }
            }
        }
        if let Some(column) = bad_column {
            let id = cells
                .get(schema.id_column(&cells))
                .and_then(|c| c.as_ref()?.as_str());
            let reason = format!(
                "the {} cell is not valid UTF-8 text; save the catalogue as UTF-8",
                schema.name(column)
            );
            builder.skip(row, id.map(str::to_owned), reason);
            continue;
        }
        builder.push(row, &cells);
    }
    if builder.is_empty() {
        bail!(
            "{shown}: the header is there but no product rows follow; export the catalogue again"
        );
    }
    Ok(builder.finish())
}

/// Turns byte offsets into 1-based line numbers, for offsets that only ever grow.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> LineCounter<'a> {
        LineCounter {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    /// The line of the first character at or after `byte` that is not a line break: csv
    /// reports where it started looking, which can be the end of the previous line.
    fn line_at(&mut self, byte: u64) -> usize {
        let mut target = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        while matches!(self.bytes.get(target), Some(b'\r' | b'\n')) {
            target += 1;
        }
        if target < self.offset {
            self.offset = 0;
            self.line = 1;
        }
        self.line += self.bytes[self.offset..target]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.offset = target;
        self.line
    }
}
