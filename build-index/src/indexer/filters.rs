//! Filters from the catalogue's columns: brand, product type, availability, condition, custom
//! labels and columns named with `--filter-column` become value filters; price and sale price
//! become ranges. Each item's value goes into the item table, each filter into the manifest.

use std::collections::{BTreeMap, HashMap};

use vitrine_index::filters::{Filter, FilterKind, filter_key};

use crate::catalogue::Row;
use crate::catalogue::schema::{BRAND, FILTER_COLUMNS, PRODUCT_TYPE, SALE_PRICE};

/// A value filter offers at most this many values, the most frequent.
pub(crate) const MAX_VALUES: usize = 500;

/// The filters and every item's value.
#[derive(Debug, Default)]
pub(crate) struct Filters {
    /// As the manifest lists them.
    pub(crate) filters: Vec<Filter>,
    /// Per value filter, each item's value code (0: none, else 1 + index into the values).
    pub(crate) values: BTreeMap<String, Vec<u16>>,
    /// Per range filter, each item's number.
    pub(crate) numbers: BTreeMap<String, Vec<Option<f64>>>,
    /// The columns filters were made from (they are published).
    pub(crate) columns: Vec<String>,
    /// Notes for the log and report (values left out, prices in another currency).
    pub(crate) notes: Vec<String>,
}

/// A cell as filter text: strings and numbers; anything else has no value.
pub(crate) fn cell_text(v: &serde_json::Value) -> Option<String> {
    let s = match v {
        serde_json::Value::String(s) => s.trim().to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!s.is_empty()).then_some(s)
}

/// The column of `row.extra` named (case aside) like one of `names`, best first.
pub(crate) fn column<'a>(columns: &'a [String], names: &[&str]) -> Option<&'a String> {
    names
        .iter()
        .find_map(|n| columns.iter().find(|c| c.trim().to_lowercase() == *n))
}

/// Builds the filters; `named` are the `--filter-column` names (checked to exist by the caller).
pub(crate) fn build(rows: &[&Row], named: &[String]) -> Filters {
    let mut columns: Vec<String> = Vec::new();
    for r in rows {
        for k in r.extra.keys() {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    let mut out = Filters::default();
    let mut chosen: Vec<String> = [BRAND, PRODUCT_TYPE]
        .into_iter()
        .chain(FILTER_COLUMNS.iter().map(std::slice::from_ref))
        .filter_map(|names| column(&columns, names).cloned())
        .collect();
    for n in named {
        if let Some(c) = columns
            .iter()
            .find(|c| c.trim().eq_ignore_ascii_case(n.trim()))
            && !chosen.contains(c)
        {
            chosen.push(c.clone());
        }
    }
    let mut keys: Vec<String> = Vec::new();
    let mut unique_key = |label: &str| {
        let base = filter_key(label);
        let mut key = base.clone();
        let mut n = 2;
        while keys.contains(&key) || key == "price" || key == "sale_price" {
            key = format!("{base}_{n}");
            n += 1;
        }
        keys.push(key.clone());
        key
    };
    for col in chosen {
        let texts: Vec<Option<String>> = rows
            .iter()
            .map(|r| r.extra.get(&col).and_then(cell_text))
            .collect();
        let mut freq: HashMap<&str, u32> = HashMap::new();
        for t in texts.iter().flatten() {
            *freq.entry(t.as_str()).or_default() += 1;
        }
        if freq.len() < 2 {
            continue;
        }
        let mut values: Vec<(&str, u32)> = freq.into_iter().collect();
        values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        if values.len() > MAX_VALUES {
            out.notes.push(format!(
                "filter {col:?}: {} distinct values, only the {MAX_VALUES} most frequent are offered",
                values.len()
            ));
            values.truncate(MAX_VALUES);
        }
        let index: HashMap<&str, u16> = values
            .iter()
            .enumerate()
            .map(|(i, (v, _))| (*v, i as u16 + 1))
            .collect();
        let codes = texts
            .iter()
            .map(|t| {
                t.as_deref()
                    .and_then(|t| index.get(t))
                    .copied()
                    .unwrap_or(0)
            })
            .collect();
        let key = unique_key(&col);
        out.values.insert(key.clone(), codes);
        out.filters.push(Filter {
            key,
            label: col.clone(),
            kind: FilterKind::Values {
                values: values.iter().map(|(v, _)| v.to_string()).collect(),
                counts: values.iter().map(|(_, n)| *n).collect(),
            },
        });
        out.columns.push(col);
    }
    let prices: Vec<Option<String>> = rows.iter().map(|r| r.price.clone()).collect();
    out.range("price", "Price", &prices);
    if let Some(col) = column(&columns, SALE_PRICE).cloned() {
        let sale: Vec<Option<String>> = rows
            .iter()
            .map(|r| r.extra.get(&col).and_then(cell_text))
            .collect();
        if out.range("sale_price", &col, &sale) {
            out.columns.push(col);
        }
    }
    out
}

impl Filters {
    /// Adds a price range from `cells`; the catalogue's most common currency wins and prices in
    /// others are left out of it (with a note). Returns whether a filter was added.
    fn range(&mut self, key: &str, label: &str, cells: &[Option<String>]) -> bool {
        let parsed: Vec<Option<(f64, Option<String>)>> = cells
            .iter()
            .map(|c| c.as_deref().and_then(parse_price))
            .collect();
        let mut currencies: HashMap<Option<&str>, u32> = HashMap::new();
        for (_, c) in parsed.iter().flatten() {
            *currencies.entry(c.as_deref()).or_default() += 1;
        }
        let Some((&currency, _)) = currencies
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        else {
            return false;
        };
        let numbers: Vec<Option<f64>> = parsed
            .iter()
            .map(|p| {
                p.as_ref()
                    .filter(|(_, c)| c.as_deref() == currency)
                    .map(|(v, _)| *v)
            })
            .collect();
        let other = parsed.iter().flatten().count() - numbers.iter().flatten().count();
        if other > 0 {
            self.notes.push(format!(
                "{label}: {other} prices in another currency than {} are left out of the filter",
                currency.unwrap_or("the others")
            ));
        }
        let (min, max) = numbers
            .iter()
            .flatten()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        // One distinct value (or none) filters nothing.
        if min.partial_cmp(&max) != Some(std::cmp::Ordering::Less) {
            return false;
        }
        self.numbers.insert(key.to_string(), numbers);
        self.filters.push(Filter {
            key: key.to_string(),
            label: label.to_string(),
            kind: FilterKind::Range {
                min,
                max,
                currency: currency.map(str::to_string),
            },
        });
        true
    }
}

/// A price as feeds write it: `12.50 EUR`, `EUR 12.50`, `$12.50`, `12,50 €`, `1,234.56`,
/// `1.234,56 EUR`. Returns the amount and the currency (code or symbol) if written.
pub(crate) fn parse_price(text: &str) -> Option<(f64, Option<String>)> {
    let t = text.trim();
    let start = t.find(|c: char| c.is_ascii_digit())?;
    let end = t.rfind(|c: char| c.is_ascii_digit())? + 1;
    let number = &t[start..end];
    if number
        .chars()
        .any(|c| !(c.is_ascii_digit() || c == '.' || c == ',' || c == ' ' || c == '\''))
    {
        return None;
    }
    let digits: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '\''))
        .collect();
    // The last separator is the decimal point when one or two digits follow it.
    let value = match digits.rfind(['.', ',']) {
        Some(p) if digits.len() - p - 1 <= 2 => {
            let whole: String = digits[..p].chars().filter(char::is_ascii_digit).collect();
            format!("{whole}.{}", &digits[p + 1..])
        }
        _ => digits.chars().filter(char::is_ascii_digit).collect(),
    };
    let amount: f64 = value.parse().ok().filter(|v: &f64| v.is_finite())?;
    let rest = format!("{} {}", &t[..start], &t[end..]);
    let currency = rest
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| c == '-' || c == '.'))
        .find(|w| !w.is_empty())
        .map(|w| w.to_uppercase());
    Some((amount, currency))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_as_feeds_write_them() {
        let p = |s: &str| parse_price(s);
        assert_eq!(p("12.50 EUR"), Some((12.5, Some("EUR".into()))));
        assert_eq!(p("EUR 12.50"), Some((12.5, Some("EUR".into()))));
        assert_eq!(p("$12.50"), Some((12.5, Some("$".into()))));
        assert_eq!(p("12,50 €"), Some((12.5, Some("€".into()))));
        assert_eq!(p("1,234.56"), Some((1234.56, None)));
        assert_eq!(p("1.234,56 EUR"), Some((1234.56, Some("EUR".into()))));
        assert_eq!(p("15"), Some((15.0, None)));
        assert_eq!(p("1 299 SEK"), Some((1299.0, Some("SEK".into()))));
        assert_eq!(p("free"), None);
        assert_eq!(p("12.50-15.00 EUR"), None);
    }
}
