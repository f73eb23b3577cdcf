//! What the page shows about items: metadata chunks (title, price, link, thumbnail, facets, extra
//! columns) fetched only for the results on screen, and the small item table (every item's facet
//! labels, filter values and title length) needed up front for filters and their counts. Ids
//! live in the chunks and, for lookups, in the keyword shards (`keywords::id_key`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Items per metadata chunk (and thumbnail pack): small enough that a page of results fetches
/// little (48 results scattered over a 100k catalogue fetch at most 48 chunks of ~6 KB), few
/// enough files for hosts. Chunks never span two lists of the vectors.
pub const CHUNK_SIZE: usize = 64;

/// An item's zero-shot label for one facet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FacetValue {
    /// The winning label.
    pub label: String,
    /// Its softmax probability.
    pub probability: f32,
}

/// One catalogue item as the page shows it. Text fields are plain text, never HTML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The catalogue's id.
    pub id: String,
    /// Display title.
    pub title: String,
    /// Description, if the catalogue has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Product page URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Price as the catalogue writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// The thumbnail, in the chunk's pack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<Thumbnail>,
    /// The picture on the shop's own image host, shown where no thumbnail is packed
    /// (`build-index build --thumbnails remote`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Zero-shot facet labels by facet name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facets: BTreeMap<String, FacetValue>,
    /// Every other catalogue column.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Where an item's thumbnail (a JPEG) sits in its chunk's pack, and the start of its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thumbnail {
    /// Byte offset in the pack.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
    /// The first 16 hex digits of the JPEG's SHA-256.
    pub sha256: String,
}

impl Thumbnail {
    /// The HTTP `Range` header value that fetches just this thumbnail from its pack.
    pub fn range(&self) -> String {
        let end = u64::from(self.offset) + u64::from(self.size.max(1)) - 1;
        format!("bytes={}-{end}", self.offset)
    }

    /// This thumbnail's bytes: `bytes` is either the whole pack or exactly the ranged part (a
    /// host answering the Range request); checked against the hash either way.
    pub fn cut<'a>(&self, bytes: &'a [u8]) -> Result<&'a [u8]> {
        let (start, size) = (self.offset as usize, self.size as usize);
        let part = if bytes.len() == size {
            bytes
        } else {
            bytes
                .get(start..start.saturating_add(size))
                .ok_or_else(|| {
                    Error::Integrity(format!(
                        "a thumbnail pack of {} bytes has no bytes {start}..{}",
                        bytes.len(),
                        start + size
                    ))
                })?
        };
        if crate::sha256_hex(part).get(..16) != Some(self.sha256.as_str()) {
            return Err(Error::Integrity(format!(
                "the thumbnail {} does not match its SHA-256",
                self.sha256
            )));
        }
        Ok(part)
    }
}

/// A metadata chunk file: its items, in order. The chunk table says which items they are, so
/// a chunk keeps its name (and caches keep it) when items elsewhere are added or removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataChunk {
    /// Position of the first item (from the chunk table; not part of the file).
    #[serde(skip)]
    pub first: u32,
    /// The items.
    pub items: Vec<Item>,
}

impl MetadataChunk {
    /// Parses a chunk file whose first item is `first`.
    pub fn from_json(bytes: &[u8], first: u32) -> Result<Self> {
        let mut chunk: Self = serde_json::from_slice(bytes)
            .map_err(|e| Error::Format(format!("metadata chunk: {e}")))?;
        chunk.first = first;
        Ok(chunk)
    }

    /// The item at catalogue position `index`, which this chunk must hold.
    pub fn item(&self, index: u32) -> Result<&Item> {
        index
            .checked_sub(self.first)
            .and_then(|i| self.items.get(i as usize))
            .ok_or_else(|| {
                Error::Format(format!(
                    "the metadata chunk of items {}..{} has no item {index}; the index is \
                     damaged, rebuild it",
                    self.first,
                    u64::from(self.first) + self.items.len() as u64
                ))
            })
    }
}

/// A link as it may go into an `href`: http(s) URLs and relative paths, never `javascript:`,
/// `data:` or other schemes. Used when writing the index and again when showing it.
pub fn safe_link(link: &str) -> Option<String> {
    let l = link.trim();
    let path_start = l.find(['/', '?', '#']).unwrap_or(l.len());
    match l.find(':') {
        Some(c) if c < path_start => {
            let scheme = l[..c].to_ascii_lowercase();
            (scheme == "http" || scheme == "https").then(|| l.to_string())
        }
        _ => (!l.is_empty()).then(|| l.to_string()),
    }
}

/// The item table file: per item, in catalogue (vector) order, its facet labels, filter values
/// and title term count: what search, filters and counts need before any metadata chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemTable {
    /// Items in the index (every column holds this many).
    pub count: u32,
    /// For each facet name, each item's label index into the manifest's `labels`.
    #[serde(default)]
    pub facets: BTreeMap<String, Vec<u16>>,
    /// For each value filter (by key), each item's value: 0 for none, else 1 + its index into
    /// the filter's values in the manifest.
    #[serde(default)]
    pub values: BTreeMap<String, Vec<u16>>,
    /// For each range filter (by key), each item's number, if it has one.
    #[serde(default)]
    pub numbers: BTreeMap<String, Vec<Option<f64>>>,
    /// Each item's distinct title terms (`keywords::title_term_count`).
    #[serde(default)]
    pub title_terms: Vec<u8>,
}

impl ItemTable {
    /// Parses the item table file and checks it against the item count.
    pub fn from_json(bytes: &[u8], count: usize) -> Result<Self> {
        let c: Self =
            serde_json::from_slice(bytes).map_err(|e| Error::Format(format!("item table: {e}")))?;
        if c.count as usize != count {
            return Err(Error::Format(format!(
                "the item table holds {} items, the manifest says {count}",
                c.count
            )));
        }
        let short = c
            .facets
            .values()
            .chain(c.values.values())
            .any(|v| v.len() != count)
            || c.numbers.values().any(|v| v.len() != count)
            || c.title_terms.len() != count;
        if short {
            return Err(Error::Format(format!(
                "the item table's columns do not all hold {count} items; the index is damaged, \
                 rebuild it"
            )));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::safe_link;

    #[test]
    fn only_web_and_relative_links_are_kept() {
        assert_eq!(
            safe_link("https://shop.example/p/1").as_deref(),
            Some("https://shop.example/p/1")
        );
        assert_eq!(safe_link("/p/1?x=a:b").as_deref(), Some("/p/1?x=a:b"));
        assert_eq!(safe_link("javascript:alert(1)"), None);
        assert_eq!(safe_link(" JavaScript:alert(1)"), None);
        assert_eq!(safe_link("data:text/html,x"), None);
        assert_eq!(safe_link(""), None);
    }
}
