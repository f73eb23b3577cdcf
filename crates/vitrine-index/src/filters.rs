//! Filters from the feed: columns of values (brand, product type, availability, condition,
//! custom labels, columns the maintainer names) and numeric ranges (price, sale price). The
//! manifest describes each filter; the item table holds every item's value. Selections travel in
//! the page's URL as `key=value` (repeatable) and `key=min-max`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Query-string keys the page uses itself; no filter may take them.
pub const RESERVED_KEYS: &[&str] = &["q", "like", "f", "engine", "mode"];

/// A filter the page offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// Its key in URLs (`brand`, `price`).
    pub key: String,
    /// Its name as shown (the column's name).
    pub label: String,
    /// Values or a range.
    #[serde(flatten)]
    pub kind: FilterKind,
}

/// What a filter selects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FilterKind {
    /// Items having one of the chosen values.
    Values {
        /// The values, most frequent first.
        values: Vec<String>,
        /// Items per value over the whole catalogue.
        counts: Vec<u32>,
    },
    /// Items whose number lies in a range.
    Range {
        /// The smallest value in the catalogue.
        min: f64,
        /// The largest.
        max: f64,
        /// The currency, for prices (ISO 4217 code or the symbol the feed uses).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        currency: Option<String>,
    },
}

/// The URL key for a column name: lower case, runs of other characters as `_`, never a
/// [reserved](RESERVED_KEYS) key.
pub fn filter_key(column: &str) -> String {
    let mut key = String::new();
    for c in column.trim().chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            key.push(c);
        } else if !key.ends_with('_') {
            key.push('_');
        }
    }
    let mut key = key.trim_matches('_').to_string();
    if key.is_empty() {
        key.push_str("filter");
    }
    if RESERVED_KEYS.contains(&key.as_str()) {
        key.push('_');
    }
    key
}

/// A range as selected: either end may be open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeSelection {
    /// Lowest value allowed.
    pub min: Option<f64>,
    /// Highest value allowed.
    pub max: Option<f64>,
}

impl RangeSelection {
    /// Parses `10-50`, `10-` or `-50` (decimal points allowed); `None` when malformed or empty.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.trim().split_once('-')?;
        let num = |t: &str| -> Option<Option<f64>> {
            let t = t.trim();
            if t.is_empty() {
                return Some(None);
            }
            t.parse::<f64>().ok().filter(|v| v.is_finite()).map(Some)
        };
        let (min, max) = (num(a)?, num(b)?);
        if min.is_none() && max.is_none() {
            return None;
        }
        if let (Some(lo), Some(hi)) = (min, max)
            && lo > hi
        {
            return None;
        }
        Some(Self { min, max })
    }

    /// The form [`RangeSelection::parse`] reads.
    pub fn to_param(self) -> String {
        let f = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
        format!("{}-{}", f(self.min), f(self.max))
    }

    /// Whether `v` lies in the range.
    pub fn contains(self, v: f64) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }
}

/// How a query's candidates spread over every facet and filter, as the page shows next to them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Per facet name, candidates per label.
    pub facets: BTreeMap<String, Vec<u32>>,
    /// Per value filter, candidates per value.
    pub values: BTreeMap<String, Vec<u32>>,
    /// Per range filter, the values the candidates have.
    pub ranges: BTreeMap<String, RangeCount>,
    /// Candidates every selection allows.
    pub total: u32,
}

/// The values of a range filter among some items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RangeCount {
    /// Items with a value.
    pub items: u32,
    /// The smallest value.
    pub min: Option<f64>,
    /// The largest.
    pub max: Option<f64>,
}

impl RangeCount {
    /// Counts one more value.
    pub fn add(&mut self, v: f64) {
        self.items += 1;
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_url_safe_and_never_reserved() {
        assert_eq!(filter_key("Brand"), "brand");
        assert_eq!(filter_key("custom_label_0"), "custom_label_0");
        assert_eq!(filter_key(" Product Type "), "product_type");
        assert_eq!(filter_key("Q"), "q_");
        assert_eq!(filter_key("???"), "filter");
        assert_eq!(filter_key("Größe"), "größe");
    }

    #[test]
    fn ranges_parse_and_print_back() {
        let r = RangeSelection::parse("10-50").unwrap();
        assert_eq!((r.min, r.max), (Some(10.0), Some(50.0)));
        assert!(r.contains(10.0) && r.contains(50.0) && !r.contains(50.01));
        assert_eq!(RangeSelection::parse(&r.to_param()), Some(r));
        let open = RangeSelection::parse("9.5-").unwrap();
        assert_eq!((open.min, open.max), (Some(9.5), None));
        assert_eq!(open.to_param(), "9.5-");
        assert_eq!(RangeSelection::parse("-").map(|_| ()), None);
        assert_eq!(RangeSelection::parse("50-10").map(|_| ()), None);
        assert_eq!(RangeSelection::parse("a-b").map(|_| ()), None);
        assert_eq!(RangeSelection::parse("12").map(|_| ()), None);
    }
}
