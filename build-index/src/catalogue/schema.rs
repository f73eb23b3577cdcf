//! Which column plays which role: recognised by name, or named on the command line.

use std::path::Path;

use anyhow::{Result, bail};
use serde_json::Value;

use super::ColumnOptions;

/// Recognised names, lower case, best first.
const ID: &[&str] = &["id", "handle", "sku", "product_id", "item_id"];
const IMAGE: &[&str] = &[
    "image_link",
    "image src",
    "image",
    "image_url",
    "imageurl",
    "image_path",
    "img",
    "picture",
    "photo",
    "file",
    "path",
];
const TITLE: &[&str] = &["title", "name", "product_name"];
const DESCRIPTION: &[&str] = &["description", "body (html)", "body_html"];
const LINK: &[&str] = &["link", "url", "product_url"];
const PRICE: &[&str] = &["price", "variant price", "sale_price"];
/// Columns read beside the row's roles (they stay in [`super::Row::extra`]): words the
/// keyword index searches, and columns that become filters.
pub(crate) const BRAND: &[&str] = &["brand", "vendor", "manufacturer"];
/// A product type or category column.
pub(crate) const PRODUCT_TYPE: &[&str] = &[
    "product_type",
    "product type",
    "type",
    "category",
    "google_product_category",
];
/// Keywords or tags.
pub(crate) const KEYWORDS: &[&str] = &["keywords", "tags", "keyword", "tag"];
/// Columns offered as value filters when present, besides brand and product type.
pub(crate) const FILTER_COLUMNS: &[&str] = &[
    "availability",
    "condition",
    "custom_label_0",
    "custom_label_1",
    "custom_label_2",
    "custom_label_3",
    "custom_label_4",
];
/// A sale price column (the price itself is the row's price).
pub(crate) const SALE_PRICE: &[&str] = &["sale_price", "sale price"];
/// Shopify's product status (`active`, `draft`, `archived`).
const STATUS: &[&str] = &["status"];
/// Shopify's `Published` (`TRUE`/`FALSE`).
const PUBLISHED: &[&str] = &["published"];
/// Description columns that hold HTML.
pub(super) const HTML_DESCRIPTION: &[&str] = &["body (html)", "body_html"];
/// At most this many column names are listed in an error message.
const LISTED_NAMES: usize = 30;

/// What the catalogue calls its fields, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Noun {
    /// A CSV/TSV column.
    Column,
    /// A JSON key.
    Key,
}

impl Noun {
    pub(super) fn word(self) -> &'static str {
        match self {
            Noun::Column => "column",
            Noun::Key => "key",
        }
    }
}

/// The roles of a catalogue's columns, by index into [`Schema::names`].
#[derive(Debug)]
pub(super) struct Schema {
    /// Column names (header cells, trimmed) or JSON keys.
    pub(super) names: Vec<String>,
    /// The names, trimmed and in lower case.
    pub(super) lower: Vec<String>,
    pub(super) noun: Noun,
    pub(super) id: Field,
    pub(super) image: Field,
    pub(super) title: Option<Field>,
    pub(super) description: Option<Field>,
    pub(super) link: Option<Field>,
    pub(super) price: Option<Field>,
    /// Shopify's `Status` column (only for Shopify exports).
    pub(super) status: Option<Field>,
    /// Shopify's `Published` column (only for Shopify exports).
    pub(super) published: Option<Field>,
    /// The id column is Shopify's `Handle`, so continuation rows may follow a product.
    pub(super) shopify: bool,
}

impl Schema {
    /// Assigns roles to `names`: columns named in `options` first, then recognised names.
    /// Fails, naming `file` and the fix, when a named column is missing or there is no id or
    /// image column.
    pub(super) fn resolve(
        file: &Path,
        names: Vec<String>,
        options: &ColumnOptions,
        noun: Noun,
    ) -> Result<Schema> {
        let lower: Vec<String> = names.iter().map(|n| n.trim().to_lowercase()).collect();
        let mut claimed = vec![false; names.len()];
        let word = noun.word();
        let mut named = |wanted: &Option<String>, flag: &str| -> Result<Option<Field>> {
            let Some(wanted) = wanted else {
                return Ok(None);
            };
            let trimmed = wanted.trim();
            let found = names.iter().position(|n| n == trimmed).or_else(|| {
                let wanted_lower = trimmed.to_lowercase();
                lower.iter().position(|n| *n == wanted_lower)
            });
            match found {
                Some(i) => Ok(Some(Field::claim(i, &lower, &mut claimed))),
                None => bail!(
                    "{}: no {word} named {wanted:?} (given with {flag}; {word}s: {}); check the \
                     spelling",
                    file.display(),
                    list(&names)
                ),
            }
        };
        let id = named(&options.id, "--id-column")?;
        let image = named(&options.image, "--image-column")?;
        let title = named(&options.title, "--title-column")?;

        let mut recognise = |candidates: &[&str]| {
            let found = candidates
                .iter()
                .find_map(|c| (0..lower.len()).find(|&i| !claimed[i] && lower[i] == *c))?;
            if noun == Noun::Column {
                return Some(Field::claim(found, &lower, &mut claimed));
            }
            // JSON objects need not share keys: each uses the best-ranked one it has.
            let alike: Vec<usize> = candidates
                .iter()
                .flat_map(|c| (0..lower.len()).filter(|&i| !claimed[i] && lower[i] == *c))
                .collect();
            for &i in &alike {
                claimed[i] = true;
            }
            Some(Field {
                first: found,
                alike,
            })
        };
        let id = id.or_else(|| recognise(ID));
        let image = image.or_else(|| recognise(IMAGE));
        let title = title.or_else(|| recognise(TITLE));
        let description = recognise(DESCRIPTION);
        let link = recognise(LINK);
        let price = recognise(PRICE);
        let shopify = id.as_ref().is_some_and(|f| lower[f.first] == "handle");
        let (status, published) = if shopify {
            (recognise(STATUS), recognise(PUBLISHED))
        } else {
            (None, None)
        };

        let shown = file.display();
        let Some(image) = image else {
            bail!(
                "{shown}: no image {word} ({word}s: {}); name it with --image-column",
                list(&names)
            );
        };
        let Some(id) = id else {
            bail!(
                "{shown}: no id {word} ({word}s: {}); name it with --id-column",
                list(&names)
            );
        };
        Ok(Schema {
            shopify,
            status,
            published,
            names,
            lower,
            noun,
            id,
            image,
            title,
            description,
            link,
            price,
        })
    }

    /// How column `index` is called in messages and in [`Row::extra`].
    pub(super) fn name(&self, index: usize) -> String {
        match self.names.get(index) {
            Some(name) if !name.is_empty() => name.clone(),
            _ => format!("{} {}", self.noun.word(), index + 1),
        }
    }

    /// The id column's index, for a record with these cells.
    pub(super) fn id_column(&self, cells: &[Option<Value>]) -> usize {
        self.id.pick(cells)
    }
}

/// The columns playing one role: one column, or several whose names differ only in case, or
/// for JSON every recognised key of the role, best first (one JSON line may say `ID` or
/// `image_url` where the others say `id` or `image`).
#[derive(Debug)]
pub(super) struct Field {
    /// The column that was recognised or named.
    first: usize,
    /// Every column that can play the role, `first` included, best first.
    alike: Vec<usize>,
}

impl Field {
    /// Claims column `index` and the unclaimed columns spelled like it.
    fn claim(index: usize, lower: &[String], claimed: &mut [bool]) -> Field {
        let alike: Vec<usize> = (0..lower.len())
            .filter(|&i| i == index || (!claimed[i] && lower[i] == lower[index]))
            .collect();
        for &i in &alike {
            claimed[i] = true;
        }
        Field {
            first: index,
            alike,
        }
    }

    /// The column of this field that `cells` fills (or the first one when none does).
    pub(super) fn pick(&self, cells: &[Option<Value>]) -> usize {
        self.alike
            .iter()
            .copied()
            .find(|&i| cells.get(i).is_some_and(Option::is_some))
            .unwrap_or(self.first)
    }
}

/// The names, comma-separated, for an error message (long lists are cut short).
fn list(names: &[String]) -> String {
    let shown: Vec<&str> = names
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .take(LISTED_NAMES)
        .collect();
    let more = names.iter().filter(|n| !n.trim().is_empty()).count() - shown.len();
    match (shown.is_empty(), more) {
        (true, _) => "none".to_owned(),
        (false, 0) => shown.join(", "),
        (false, more) => format!("{}, and {more} more", shown.join(", ")),
    }
}
