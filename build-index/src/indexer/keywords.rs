//! The site's keyword index: each item's id, title, brand, product type and keywords (and its
//! description when that is published) go into `vitrine_index::keywords` shards, so the page
//! finds SKUs, brands and names before and beside CLIP.

use vitrine_index::keywords::{
    Field, KeywordIndexBuilder, KeywordInfo, term_weight, title_term_count,
};

use super::filters::{cell_text, column};
use crate::catalogue::Row;
use crate::catalogue::schema::{BRAND, KEYWORDS, PRODUCT_TYPE};

/// The keyword index, ready to write.
pub(crate) struct KeywordIndex {
    /// Each shard's first term and bytes, in term order.
    pub(crate) shards: Vec<(String, Vec<u8>)>,
    /// For the manifest.
    pub(crate) info: KeywordInfo,
    /// Each item's distinct title terms (for exact title matches), in the item table.
    pub(crate) title_terms: Vec<u8>,
    /// The columns whose words were indexed (they become searchable).
    pub(crate) columns: Vec<String>,
}

/// A cell as searchable text: a string, a number, or a list of them (JSON keywords).
fn words(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Array(a) => {
            let parts: Vec<String> = a.iter().filter_map(cell_text).collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        }
        other => cell_text(other),
    }
}

/// Indexes `rows` (in the vectors' order); descriptions only when they are published.
pub(crate) fn build(rows: &[&Row], descriptions_published: bool) -> KeywordIndex {
    let mut names: Vec<String> = Vec::new();
    for r in rows {
        for k in r.extra.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let sources: Vec<(Field, String)> = [
        (Field::Brand, BRAND),
        (Field::ProductType, PRODUCT_TYPE),
        (Field::Keywords, KEYWORDS),
    ]
    .into_iter()
    .filter_map(|(f, names_of)| column(&names, names_of).map(|c| (f, c.clone())))
    .collect();
    let mut builder = KeywordIndexBuilder::default();
    let mut title_terms = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let i = i as u32;
        builder.add(i, Field::Id, &row.id);
        builder.add(i, Field::Title, &row.title);
        title_terms.push(title_term_count(&row.title));
        for (field, col) in &sources {
            if let Some(text) = row.extra.get(col).and_then(words) {
                builder.add(i, *field, &text);
            }
        }
        if descriptions_published && let Some(d) = &row.description {
            builder.add(i, Field::Description, d);
        }
    }
    let count = rows.len() as u32;
    let terms = builder.terms() as u32;
    KeywordIndex {
        shards: builder.finish(count),
        info: KeywordInfo {
            unmatched_weight: term_weight(count, 1),
            terms,
        },
        title_terms,
        columns: sources.into_iter().map(|(_, c)| c).collect(),
    }
}
