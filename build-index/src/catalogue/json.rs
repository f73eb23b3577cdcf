//! JSON catalogues: JSON Lines (one object per line) and, as a convenience, a single array of
//! objects. Keys play the part of columns.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Result, bail};
use serde_json::{Map, Value};

use super::rows::Builder;
use super::schema::{Noun, Schema};
use super::{Catalogue, ColumnOptions};

/// A numbered item: its object, or why it is not one.
type Item = (usize, Result<Map<String, Value>, String>);

/// Reads JSON Lines: rows are numbered by line; blank lines are ignored.
pub(super) fn read_lines(file: &Path, bytes: &[u8], columns: &ColumnOptions) -> Result<Catalogue> {
    let mut items = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        let object = match std::str::from_utf8(line) {
            Ok(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(object)) => Ok(object),
                Ok(other) => Err(format!(
                    "the line is {}, not a JSON object; write one object per line, like \
                     {{\"id\": \"a1\", \"image\": \"a1.jpg\"}}",
                    kind(&other)
                )),
                Err(e) => Err(format!(
                    "the line is not a JSON object ({e}); each line must hold one whole object"
                )),
            },
            Err(_) => Err("the line is not valid UTF-8 text; save the catalogue as UTF-8".into()),
        };
        items.push((index + 1, object));
    }
    build(file, items, columns, "line")
}

/// Reads a JSON array of objects: rows are numbered by position, from 1.
pub(super) fn read_array(file: &Path, bytes: &[u8], columns: &ColumnOptions) -> Result<Catalogue> {
    let shown = file.display();
    let values: Vec<Value> = match serde_json::from_slice(bytes) {
        Ok(values) => values,
        Err(e) => bail!(
            "{shown}: not a valid JSON array ({e}); fix the JSON, or write JSON Lines (one object \
             per line)"
        ),
    };
    let items = values
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            let object = match value {
                Value::Object(object) => Ok(object),
                other => Err(format!("array item is {}, not a JSON object", kind(&other))),
            };
            (index + 1, object)
        })
        .collect();
    build(file, items, columns, "item")
}

/// Builds the catalogue; the columns are every key used by any object, in first-seen order.
fn build(file: &Path, items: Vec<Item>, columns: &ColumnOptions, unit: &str) -> Result<Catalogue> {
    let shown = file.display();
    let mut names = Vec::new();
    let mut index = HashMap::new();
    for (_, object) in &items {
        for key in object.iter().flat_map(Map::keys) {
            if !index.contains_key(key) {
                index.insert(key.clone(), names.len());
                names.push(key.clone());
            }
        }
    }
    if names.is_empty() {
        match items
            .iter()
            .find_map(|(row, item)| Some((row, item.as_ref().err()?)))
        {
            Some((row, reason)) => bail!("{shown}: {unit} {row}: {reason}"),
            None => bail!("{shown}: no product objects in it; write one JSON object per product"),
        }
    }
    let schema = Schema::resolve(file, names, columns, Noun::Key)?;
    let base = file.parent().unwrap_or(Path::new(""));
    let mut builder = Builder::new(&schema, base);
    for (row, item) in items {
        match item {
            Ok(object) => {
                let mut cells = vec![None; index.len()];
                for (key, value) in object {
                    if let Some(&i) = index.get(&key) {
                        cells[i] = Some(value);
                    }
                }
                builder.push(row, &cells);
            }
            Err(reason) => builder.skip(row, None, reason),
        }
    }
    Ok(builder.finish())
}

/// "a number", "a list", … for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
