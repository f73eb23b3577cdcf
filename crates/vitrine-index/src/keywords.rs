//! The keyword index: every searchable word of the catalogue (ids, titles, brands, product types,
//! keywords, published descriptions), folded so "Café" finds "cafe", stored in shards of sorted
//! term ranges so a query downloads only the shards holding its words. It answers before the text
//! encoder has arrived, and feeds the hybrid ranking after.
//!
//! A shard file (`keywords/kw.<hash>.bin`): `VKW1`, then the term count, then per term (in byte
//! order): its UTF-8 length and bytes, the number of items holding it, its weight (f32, little
//! endian: `ln(1 + items in the index / items holding it)`, computed once at build time so every
//! reader ranks with the same bits), the number of postings stored (at most [`MAX_POSTINGS`], the
//! best-placed ones), and per posting the item's distance from the previous posting's item and
//! one byte of [`Field`] flags. Other numbers are LEB128.
//!
//! Each id is also stored whole, as its [`id_key`] (`#` and its terms joined by spaces: no word
//! term holds either), so an exact id (a SKU typed, a "More like this" link) is found by
//! fetching one shard rather than by a table of every id in the first load.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::files::FileRef;
use crate::{Error, Result};

/// Where in an item a term occurs: bit flags of a posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Field {
    /// The item's id (SKU).
    Id = 1,
    /// The title.
    Title = 2,
    /// The brand.
    Brand = 4,
    /// The product type or category.
    ProductType = 8,
    /// Keywords or tags.
    Keywords = 16,
    /// The description (indexed only when it is published).
    Description = 32,
}

impl Field {
    /// Every field, most telling first.
    pub const ALL: [Field; 6] = [
        Field::Id,
        Field::Title,
        Field::Brand,
        Field::ProductType,
        Field::Keywords,
        Field::Description,
    ];

    /// How much a match in this field counts.
    pub fn weight(self) -> f32 {
        match self {
            Field::Id => 4.0,
            Field::Title => 2.0,
            Field::Brand => 1.6,
            Field::ProductType => 1.3,
            Field::Keywords => 1.0,
            Field::Description => 0.5,
        }
    }

    /// The best weight among the fields set in `flags`.
    pub fn best_weight(flags: u8) -> f32 {
        Field::ALL
            .iter()
            .find(|f| flags & (**f as u8) != 0)
            .map_or(0.0, |f| f.weight())
    }
}

/// A shard is closed once it holds this many bytes (a term's postings are never split).
pub const SHARD_BYTES: usize = 32 * 1024;
/// Postings kept per term; a term in more items keeps those where it is best placed (ids and
/// titles first), and its item count still sets its weight.
pub const MAX_POSTINGS: usize = 16_384;
/// Longest term in characters; longer runs are cut.
const MAX_TERM_CHARS: usize = 48;
const MAGIC: &[u8; 4] = b"VKW1";

/// Case and accent folding: compatibility decomposition, combining marks dropped, lower case.
pub fn fold(text: &str) -> String {
    text.nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Scripts written without spaces between words: each character is a term, and so is each pair.
fn unspaced(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'   // Hiragana, Katakana
        | '\u{3400}'..='\u{4DBF}' // CJK extension A
        | '\u{4E00}'..='\u{9FFF}' // CJK unified ideographs
        | '\u{F900}'..='\u{FAFF}' // CJK compatibility ideographs
        | '\u{0E00}'..='\u{0E7F}' // Thai
        | '\u{20000}'..='\u{2A6DF}')
}

/// What starts an [`id_key`]: words never hold it, and it sorts before them.
const ID_MARK: char = '#';

/// The term an id is stored under whole: `#` and its folded terms joined by spaces, so
/// `SKU-4471` and `sku 4471` meet. `None` for an id without letters or digits.
pub fn id_key(id: &str) -> Option<String> {
    let t = terms(id);
    (!t.is_empty()).then(|| format!("{ID_MARK}{}", t.join(" ")))
}

/// A term of a query: a word, or (for the word being typed) a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryTerm {
    /// The folded term.
    pub text: String,
    /// Matches every term starting with `text`.
    pub prefix: bool,
}

/// The folded terms of `text`, in order, repeats included.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut run: Vec<char> = Vec::new();
    let flush_word = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            out.push(word.chars().take(MAX_TERM_CHARS).collect());
            word.clear();
        }
    };
    let flush_run = |run: &mut Vec<char>, out: &mut Vec<String>| {
        for (i, c) in run.iter().enumerate() {
            out.push(c.to_string());
            if let Some(next) = run.get(i + 1) {
                out.push([*c, *next].iter().collect());
            }
        }
        run.clear();
    };
    for c in fold(text).chars() {
        if unspaced(c) {
            flush_word(&mut word, &mut out);
            run.push(c);
        } else if c.is_alphanumeric() {
            flush_run(&mut run, &mut out);
            word.push(c);
        } else {
            flush_word(&mut word, &mut out);
            flush_run(&mut run, &mut out);
        }
    }
    flush_word(&mut word, &mut out);
    flush_run(&mut run, &mut out);
    out
}

/// A query's distinct terms; the last word is a prefix while it is being typed (the query does
/// not end in a space or punctuation) and has at least two characters.
pub fn query_terms(query: &str) -> Vec<QueryTerm> {
    let mut out: Vec<QueryTerm> = Vec::new();
    for t in terms(query) {
        if !out.iter().any(|q| q.text == t) {
            out.push(QueryTerm {
                text: t,
                prefix: false,
            });
        }
    }
    let typing = query.chars().last().is_some_and(char::is_alphanumeric);
    if let Some(last) = out.last_mut() {
        let chars = last.text.chars().count();
        let spaced = !last.text.chars().any(unspaced);
        last.prefix = typing && spaced && chars >= 2 && terms(query).last() == Some(&last.text);
    }
    out
}

/// How much matching a term held by `items` of `count` items counts: `ln(1 + count / items)`.
/// Computed when writing (shards, [`KeywordInfo::unmatched_weight`]); readers never take
/// logarithms, whose last bits differ between platforms' maths libraries.
pub fn term_weight(count: u32, items: u32) -> f32 {
    (1.0 + f64::from(count) / f64::from(items.max(1))).ln() as f32
}

/// Distinct terms of a title, capped at 255: with the title flags of the postings this tells
/// an exact title match.
pub fn title_term_count(title: &str) -> u8 {
    let mut t = terms(title);
    t.sort_unstable();
    t.dedup();
    t.len().min(255) as u8
}

/// The keyword index as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeywordInfo {
    /// The weight of a query word no item holds ([`term_weight`] of one item): it still counts
    /// in a query's total, so items matching the other words are ranked by how much they cover.
    pub unmatched_weight: f32,
    /// Distinct terms.
    pub terms: u32,
}

/// One shard as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeywordShard {
    /// Its first term; shards are in term order, so a term lives in the last shard whose first
    /// term is not after it.
    pub first: String,
    /// The file.
    pub file: FileRef,
}

/// The shards (indices into `shards`) that may hold `term`, or every term starting with it.
pub fn shards_for(shards: &[KeywordShard], term: &QueryTerm) -> Range<usize> {
    let after = shards.partition_point(|s| s.first.as_str() <= term.text.as_str());
    let Some(start) = after.checked_sub(1) else {
        // Before the first term: only terms with this prefix can be in the first shard.
        return if term.prefix
            && shards
                .first()
                .is_some_and(|s| s.first.starts_with(&term.text))
        {
            0..shards
                .len()
                .min(1 + count_prefixed(&shards[1..], &term.text))
        } else {
            0..0
        };
    };
    if term.prefix {
        start..after + count_prefixed(&shards[after..], &term.text)
    } else {
        start..after
    }
}

fn count_prefixed(shards: &[KeywordShard], prefix: &str) -> usize {
    shards
        .iter()
        .take_while(|s| s.first.starts_with(prefix))
        .count()
}

/// One item holding a term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posting {
    /// Catalogue position.
    pub item: u32,
    /// [`Field`] flags.
    pub fields: u8,
}

/// A term with its postings.
#[derive(Debug, Clone, PartialEq)]
pub struct TermEntry {
    /// The folded term.
    pub term: String,
    /// Items holding it (may exceed the postings kept).
    pub items: u32,
    /// How much matching it counts: [`term_weight`].
    pub weight: f32,
    /// Postings in item order.
    pub postings: Vec<Posting>,
}

/// A parsed shard file.
#[derive(Debug, Clone, PartialEq)]
pub struct KeywordShardData {
    entries: Vec<TermEntry>,
}

impl KeywordShardData {
    /// Parses a shard of an index of `count` items, checking every bound.
    pub fn from_bytes(bytes: &[u8], count: u32) -> Result<Self> {
        let bad = |what: &str| Error::Format(format!("keyword shard: {what}; rebuild the index"));
        let mut r = Reader {
            bytes: bytes
                .strip_prefix(MAGIC)
                .ok_or_else(|| bad("not a keyword shard"))?,
        };
        let n = r.varint().ok_or_else(|| bad("cut short"))? as usize;
        let mut entries: Vec<TermEntry> = Vec::with_capacity(n.min(bytes.len()));
        for _ in 0..n {
            let len = r.varint().ok_or_else(|| bad("cut short"))? as usize;
            let term = std::str::from_utf8(r.take(len).ok_or_else(|| bad("cut short"))?)
                .map_err(|_| bad("a term is not UTF-8"))?
                .to_string();
            if entries.last().is_some_and(|e| e.term >= term) {
                return Err(bad("terms out of order"));
            }
            let items = r.varint().ok_or_else(|| bad("cut short"))?;
            let w = r.take(4).ok_or_else(|| bad("cut short"))?;
            let weight = f32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            if !weight.is_finite() || weight < 0.0 {
                return Err(bad("a term weight is not a finite positive number"));
            }
            let kept = r.varint().ok_or_else(|| bad("cut short"))? as usize;
            if kept > items as usize || kept > count as usize {
                return Err(bad("more postings than items"));
            }
            let mut postings = Vec::with_capacity(kept);
            let mut item: Option<u32> = None;
            for _ in 0..kept {
                let delta = r.varint().ok_or_else(|| bad("cut short"))?;
                let fields = r.take(1).ok_or_else(|| bad("cut short"))?[0];
                let next = match item {
                    None => Some(delta),
                    Some(prev) if delta > 0 => prev.checked_add(delta),
                    Some(_) => None,
                };
                let next = next
                    .filter(|&i| i < count)
                    .ok_or_else(|| bad("an item out of range"))?;
                postings.push(Posting { item: next, fields });
                item = Some(next);
            }
            entries.push(TermEntry {
                term,
                items,
                weight,
                postings,
            });
        }
        if !r.bytes.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(Self { entries })
    }

    /// The entry of exactly `term`.
    pub fn get(&self, term: &str) -> Option<&TermEntry> {
        self.entries
            .binary_search_by(|e| e.term.as_str().cmp(term))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Entries whose term starts with `prefix`, in term order.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a TermEntry> {
        let start = self.entries.partition_point(|e| e.term.as_str() < prefix);
        self.entries[start..]
            .iter()
            .take_while(move |e| e.term.starts_with(prefix))
    }

    /// Every entry, in term order.
    pub fn entries(&self) -> &[TermEntry] {
        &self.entries
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn varint(&mut self) -> Option<u32> {
        let mut at = 0;
        let v = crate::varint::get(self.bytes, &mut at)?;
        self.bytes = &self.bytes[at..];
        Some(v)
    }
}

/// Collects an index's terms item by item (in catalogue order) and writes the shards.
#[derive(Debug, Default)]
pub struct KeywordIndexBuilder {
    postings: std::collections::BTreeMap<String, Vec<Posting>>,
}

impl KeywordIndexBuilder {
    /// Adds the terms of `text` as found in `field` of `item` (and, for [`Field::Id`], its
    /// [`id_key`]). Items must come in increasing order (all fields of one item before the next
    /// item).
    pub fn add(&mut self, item: u32, field: Field, text: &str) {
        let key = (field == Field::Id).then(|| id_key(text)).flatten();
        for t in terms(text).into_iter().chain(key) {
            let list = self.postings.entry(t).or_default();
            match list.last_mut() {
                Some(p) if p.item == item => p.fields |= field as u8,
                last => {
                    debug_assert!(last.is_none_or(|p| p.item < item), "items out of order");
                    list.push(Posting {
                        item,
                        fields: field as u8,
                    });
                }
            }
        }
    }

    /// Distinct terms so far (ids stored whole aside).
    pub fn terms(&self) -> usize {
        self.postings
            .keys()
            .filter(|t| !t.starts_with(ID_MARK))
            .count()
    }

    /// The shards of an index of `count` items: each one's first term and file bytes, in term
    /// order.
    pub fn finish(self, count: u32) -> Vec<(String, Vec<u8>)> {
        let mut shards = Vec::new();
        let mut current: (Option<String>, Vec<u8>, u32) = (None, Vec::new(), 0);
        let close = |c: &mut (Option<String>, Vec<u8>, u32),
                     shards: &mut Vec<(String, Vec<u8>)>| {
            if let Some(first) = c.0.take() {
                let mut bytes = MAGIC.to_vec();
                crate::varint::put(&mut bytes, c.2);
                bytes.extend_from_slice(&c.1);
                shards.push((first, bytes));
            }
            c.1.clear();
            c.2 = 0;
        };
        for (term, mut list) in self.postings {
            let items = list.len() as u32;
            if list.len() > MAX_POSTINGS {
                list.sort_by(|a, b| {
                    Field::best_weight(b.fields)
                        .total_cmp(&Field::best_weight(a.fields))
                        .then(a.item.cmp(&b.item))
                });
                list.truncate(MAX_POSTINGS);
                list.sort_by_key(|p| p.item);
            }
            let mut entry = Vec::new();
            crate::varint::put(&mut entry, term.len() as u32);
            entry.extend_from_slice(term.as_bytes());
            crate::varint::put(&mut entry, items);
            entry.extend_from_slice(&term_weight(count, items).to_le_bytes());
            crate::varint::put(&mut entry, list.len() as u32);
            let mut prev: Option<u32> = None;
            for p in &list {
                crate::varint::put(&mut entry, prev.map_or(p.item, |q| p.item - q));
                entry.push(p.fields);
                prev = Some(p.item);
            }
            if current.0.is_some() && current.1.len() + entry.len() > SHARD_BYTES {
                close(&mut current, &mut shards);
            }
            if current.0.is_none() {
                current.0 = Some(term);
            }
            current.1.extend_from_slice(&entry);
            current.2 += 1;
        }
        close(&mut current, &mut shards);
        shards
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_folds_case_and_accents_and_splits_by_script() {
        assert_eq!(fold("Crème BRÛLÉE ﬁne"), "creme brulee fine");
        assert_eq!(
            terms("Nike Air-Max 90, SKU-4471"),
            ["nike", "air", "max", "90", "sku", "4471"]
        );
        assert_eq!(terms("Кружка ЧАЙНАЯ"), ["кружка", "чаиная"]);
        assert_eq!(terms("茶壶 set"), ["茶", "茶壶", "壶", "set"]);
        assert_eq!(terms("  --  "), Vec::<String>::new());
    }

    #[test]
    fn the_word_being_typed_is_a_prefix() {
        let q = query_terms("red sho");
        assert_eq!(q.len(), 2);
        assert!(!q[0].prefix && q[1].prefix && q[1].text == "sho");
        assert!(!query_terms("red sho ").last().unwrap().prefix);
        assert!(
            !query_terms("red s").last().unwrap().prefix,
            "one letter is too short"
        );
        assert!(!query_terms("茶壶").iter().any(|t| t.prefix));
        assert_eq!(query_terms("mug mug").len(), 1);
    }

    fn shard(first: &str) -> KeywordShard {
        KeywordShard {
            first: first.into(),
            file: FileRef::for_content("keywords/kw", "bin", first.as_bytes()),
        }
    }

    #[test]
    fn a_term_is_looked_up_in_one_shard_and_a_prefix_in_the_shards_it_spans() {
        let shards = [
            shard("a"),
            shard("mug"),
            shard("shirt"),
            shard("shoe"),
            shard("sock"),
        ];
        let exact = |t: &str| {
            shards_for(
                &shards,
                &QueryTerm {
                    text: t.into(),
                    prefix: false,
                },
            )
        };
        let prefix = |t: &str| {
            shards_for(
                &shards,
                &QueryTerm {
                    text: t.into(),
                    prefix: true,
                },
            )
        };
        assert_eq!(exact("mug"), 1..2);
        assert_eq!(exact("pan"), 1..2);
        assert_eq!(exact("zebra"), 4..5);
        assert_eq!(prefix("sh"), 1..4);
        assert_eq!(prefix("sho"), 2..4);
        assert_eq!(prefix("x"), 4..5);
        let later = [shard("b"), shard("c")];
        let before = QueryTerm {
            text: "a".into(),
            prefix: false,
        };
        assert_eq!(shards_for(&later, &before), 0..0);
    }

    #[test]
    fn shards_split_by_size_and_round_trip() {
        let mut b = KeywordIndexBuilder::default();
        let n = 3000u32;
        for i in 0..n {
            b.add(i, Field::Title, &format!("word{i} common"));
            b.add(i, Field::Id, &format!("id{i}"));
        }
        assert_eq!(b.terms(), 2 * n as usize + 1);
        let shards = b.finish(n);
        assert!(shards.len() > 1, "{} shards", shards.len());
        let mut firsts: Vec<&String> = shards.iter().map(|(f, _)| f).collect();
        let sorted = {
            let mut s = firsts.clone();
            s.sort();
            s
        };
        assert_eq!(firsts, sorted);
        firsts.dedup();
        assert_eq!(firsts.len(), shards.len());
        let mut seen = 0;
        for (first, bytes) in &shards {
            assert!(bytes.len() <= SHARD_BYTES + 64 || shards.len() == 1);
            let data = KeywordShardData::from_bytes(bytes, n).unwrap();
            assert_eq!(&data.entries()[0].term, first);
            seen += data.entries().len();
            if let Some(e) = data.get("common") {
                assert_eq!(e.items, n);
                assert_eq!(e.postings.len(), n as usize);
            }
        }
        // The words, and each id stored whole.
        assert_eq!(seen, 2 * n as usize + 1 + n as usize);
    }

    #[test]
    fn a_very_common_term_keeps_its_best_placed_items() {
        let mut b = KeywordIndexBuilder::default();
        let n = MAX_POSTINGS as u32 + 10;
        for i in 0..n {
            let field = if i >= n - 5 {
                Field::Title
            } else {
                Field::Description
            };
            b.add(i, field, "shirt");
        }
        let shards = b.finish(n);
        let data = KeywordShardData::from_bytes(&shards[0].1, n).unwrap();
        let e = data.get("shirt").unwrap();
        assert_eq!((e.items, e.postings.len()), (n, MAX_POSTINGS));
        assert!(e.postings.windows(2).all(|w| w[0].item < w[1].item));
        assert_eq!(e.postings.last().unwrap().item, n - 1, "titles are kept");
    }

    #[test]
    fn damaged_shards_are_refused() {
        let mut b = KeywordIndexBuilder::default();
        b.add(0, Field::Title, "mug");
        b.add(1, Field::Title, "mug");
        let bytes = b.finish(2).remove(0).1;
        assert!(KeywordShardData::from_bytes(&bytes, 2).is_ok());
        for cut in 1..bytes.len() {
            assert!(
                KeywordShardData::from_bytes(&bytes[..cut], 2).is_err(),
                "cut at {cut}"
            );
        }
        assert!(KeywordShardData::from_bytes(b"nope", 2).is_err());
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(KeywordShardData::from_bytes(&extra, 2).is_err());
    }
}
