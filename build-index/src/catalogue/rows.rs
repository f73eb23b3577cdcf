//! Turns one record's cells into a [`Row`] or a [`Skipped`] entry, under a [`Schema`]:
//! missing ids, duplicates, missing or unusable images, and Shopify's continuation rows.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;

use super::schema::{Field, HTML_DESCRIPTION, Schema};
use super::text::{collapse_whitespace, html_to_text, image_ref, shorten};
use super::{Catalogue, ImageRef, Row, Skipped};

/// Longest id, in characters: ids go into the item table every visitor downloads.
pub(crate) const MAX_ID_CHARS: usize = 256;
/// Longest title shown; longer ones are shortened.
pub(crate) const MAX_TITLE_CHARS: usize = 300;
/// Longest price text; longer ones are shortened.
const MAX_PRICE_CHARS: usize = 64;
/// Longest product link; a longer one is dropped.
const MAX_LINK_CHARS: usize = 2048;
/// Longest description kept for search; longer ones are shortened.
const MAX_DESCRIPTION_CHARS: usize = 5000;

/// A cell's value as text.
enum Cell {
    /// Missing, `null`, or only whitespace.
    Empty,
    /// A string (trimmed), number or boolean.
    Text(String),
    /// A JSON array or object; the text says which.
    Other(&'static str),
}

fn cell(value: Option<&Value>) -> Cell {
    match value {
        None | Some(Value::Null) => Cell::Empty,
        Some(Value::String(s)) if s.trim().is_empty() => Cell::Empty,
        Some(Value::String(s)) => Cell::Text(s.trim().to_owned()),
        Some(Value::Number(n)) => Cell::Text(n.to_string()),
        Some(Value::Bool(b)) => Cell::Text(b.to_string()),
        Some(Value::Array(_)) => Cell::Other("a list"),
        Some(Value::Object(_)) => Cell::Other("an object"),
    }
}

/// Turns records into rows, skipping bad ones, under one [`Schema`].
pub(super) struct Builder<'a> {
    schema: &'a Schema,
    /// The folder relative image paths are joined to.
    base: &'a Path,
    /// Accepted ids, with the row each was first seen on.
    seen: HashMap<String, usize>,
    /// The previous record's handle (Shopify only).
    previous_handle: Option<String>,
    catalogue: Catalogue,
}

impl<'a> Builder<'a> {
    pub(super) fn new(schema: &'a Schema, base: &'a Path) -> Builder<'a> {
        Builder {
            schema,
            base,
            seen: HashMap::new(),
            previous_handle: None,
            catalogue: Catalogue::default(),
        }
    }

    /// Records a row that could not be used.
    pub(super) fn skip(&mut self, row: usize, id: Option<String>, reason: String) {
        self.catalogue.skipped.push(Skipped { row, id, reason });
        self.catalogue.total += 1;
    }

    /// Records a row the shop has not published.
    fn exclude(&mut self, row: usize, id: String, reason: String) {
        self.catalogue.excluded.push(Skipped {
            row,
            id: Some(id),
            reason,
        });
        self.catalogue.total += 1;
    }

    /// Whether Shopify's `Status` or `Published` says the product is not for sale here; why.
    fn unpublished(&self, cells: &[Option<Value>]) -> Option<String> {
        let text = |field: &Option<Field>| match field
            .as_ref()
            .map(|f| cell(cells.get(f.pick(cells)).and_then(Option::as_ref)))
        {
            Some(Cell::Text(t)) => Some(t),
            _ => None,
        };
        if let Some(status) = text(&self.schema.status)
            && !status.eq_ignore_ascii_case("active")
        {
            return Some(format!(
                "not active (Status: {status}); only active products are indexed"
            ));
        }
        if let Some(published) = text(&self.schema.published)
            && matches!(
                published.to_ascii_lowercase().as_str(),
                "false" | "no" | "0"
            )
        {
            return Some(format!(
                "not published (Published: {published}); only published products are indexed"
            ));
        }
        None
    }

    /// Adds the record numbered `row`, whose cells are indexed like the schema's names.
    pub(super) fn push(&mut self, row: usize, cells: &[Option<Value>]) {
        let schema = self.schema;
        let get = |i: usize| cells.get(i).and_then(Option::as_ref);
        let pick = |field: &Option<Field>| field.as_ref().map(|f| f.pick(cells));
        let (id_column, image_column) = (schema.id.pick(cells), schema.image.pick(cells));
        let title_column = pick(&schema.title);
        let id = cell(get(id_column));
        let title = title_column.map_or(Cell::Empty, |i| cell(get(i)));
        if schema.shopify {
            let handle = match &id {
                Cell::Text(handle) => Some(handle.clone()),
                _ => None,
            };
            let continuation = schema.title.is_some()
                && matches!(title, Cell::Empty)
                && handle.is_some()
                && handle == self.previous_handle;
            self.previous_handle = handle;
            if continuation {
                return;
            }
        }
        let (id_name, word) = (schema.name(id_column), schema.noun.word());
        let id = match id {
            Cell::Text(id) => id,
            Cell::Empty => {
                return self.skip(row, None, format!("no id (the {id_name} {word} is empty)"));
            }
            Cell::Other(kind) => {
                let reason = format!("the id in the {id_name} {word} is {kind}, not a text");
                return self.skip(row, None, reason);
            }
        };
        let id_chars = id.chars().count();
        if id_chars > MAX_ID_CHARS {
            let short: String = id.chars().take(40).collect();
            let reason = format!(
                "the id is {id_chars} characters long, over the limit of {MAX_ID_CHARS} (ids are \
                 part of what every visitor downloads); use a shorter id"
            );
            return self.skip(row, Some(format!("{short}…")), reason);
        }
        if let Some(first) = self.seen.get(&id) {
            let reason = format!("duplicate id {id:?} (first seen on row {first})");
            return self.skip(row, Some(id), reason);
        }
        if let Some(reason) = self.unpublished(cells) {
            return self.exclude(row, id, reason);
        }
        let image = match self.image(image_column, get(image_column)) {
            Ok(image) => image,
            Err(reason) => return self.skip(row, Some(id), reason),
        };

        let mut used = vec![id_column, image_column];
        let mut text_of = |column: Option<usize>| match column.map(|i| (i, cell(get(i)))) {
            Some((i, Cell::Text(text))) => {
                used.push(i);
                Some(text)
            }
            Some((i, Cell::Empty)) => {
                used.push(i);
                None
            }
            // Lists and objects stay in `extra`, as they are.
            Some((_, Cell::Other(_))) | None => None,
        };
        let mut shortened = Vec::new();
        let mut capped = |text: String, field: &str, limit: usize| match shorten(&text, limit) {
            Some(short) => {
                shortened.push(format!("{field} shortened to {limit} characters"));
                short
            }
            None => text,
        };
        let title = text_of(title_column)
            .map(|t| collapse_whitespace(&t))
            .map(|t| capped(t, "title", MAX_TITLE_CHARS))
            .unwrap_or_else(|| id.clone());
        let description_column = pick(&schema.description);
        let html =
            description_column.is_some_and(|i| HTML_DESCRIPTION.contains(&&*schema.lower[i]));
        let description = text_of(description_column)
            .map(|d| if html { html_to_text(&d) } else { d })
            .filter(|d| !d.is_empty())
            .map(|d| capped(d, "description", MAX_DESCRIPTION_CHARS));
        let price = text_of(pick(&schema.price)).map(|p| capped(p, "price", MAX_PRICE_CHARS));
        let link = text_of(pick(&schema.link)).filter(|l| {
            let fits = l.chars().count() <= MAX_LINK_CHARS;
            if !fits {
                shortened.push(format!(
                    "link dropped: longer than {MAX_LINK_CHARS} characters"
                ));
            }
            fits
        });
        for field in [&schema.status, &schema.published].into_iter().flatten() {
            used.push(field.pick(cells));
        }

        let mut extra = BTreeMap::new();
        for (i, value) in cells.iter().enumerate() {
            let Some(value) = value else { continue };
            let blank = matches!(value, Value::Null)
                || matches!(value, Value::String(s) if s.trim().is_empty());
            if !blank && !used.contains(&i) {
                extra.entry(schema.name(i)).or_insert_with(|| value.clone());
            }
        }
        self.seen.insert(id.clone(), row);
        if !shortened.is_empty() {
            self.catalogue.shortened.push(Skipped {
                row,
                id: Some(id.clone()),
                reason: shortened.join("; "),
            });
        }
        self.catalogue.rows.push(Row {
            row,
            id,
            title,
            description,
            link,
            price,
            image,
            extra,
        });
        self.catalogue.total += 1;
    }

    /// The row's image, or why there is none.
    fn image(&self, column: usize, value: Option<&Value>) -> Result<ImageRef, String> {
        let (name, word) = (self.schema.name(column), self.schema.noun.word());
        let text = match value {
            // A list of images: the first one is the product's image.
            Some(Value::Array(items)) => items.iter().find_map(|v| {
                v.as_str()
                    .filter(|s| !s.trim().is_empty())
                    .map(str::to_owned)
            }),
            Some(Value::Object(_)) => {
                return Err(format!(
                    "the image in the {name} {word} is an object, not a path or URL"
                ));
            }
            other => match cell(other) {
                Cell::Text(text) => Some(text),
                Cell::Empty | Cell::Other(_) => None,
            },
        };
        match text {
            Some(text) => image_ref(&text, self.base),
            None => Err(format!("no image (the {name} {word} is empty)")),
        }
    }

    /// True when no row has been counted yet.
    pub(super) fn is_empty(&self) -> bool {
        self.catalogue.total == 0
    }

    /// The catalogue read so far.
    pub(super) fn finish(self) -> Catalogue {
        self.catalogue
    }
}
