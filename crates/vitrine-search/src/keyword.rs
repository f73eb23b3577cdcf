//! Keyword search over the shards fetched so far: which shards a query needs, and its ranking.
//! A term scores its weight (`ln(1 + N / items holding it)`, stored in the shard) times the
//! weight of the best field it is in (a term matched only as a longer word starting with the
//! word being typed counts 0.7 of that); an item's score is the sum over the query's words, and
//! its coverage the share of the query's word weight it matched.

use std::collections::HashMap;

use vitrine_index::keywords::{
    Field, KeywordInfo, KeywordShard, KeywordShardData, QueryTerm, TermEntry, query_terms,
    shards_for, terms,
};
use vitrine_index::{FileRef, ItemTable};

/// A prefix reads at most this many shards (a one-letter prefix would read them all).
const MAX_PREFIX_SHARDS: usize = 4;
/// A prefix expands to at most this many terms, the most common first.
const MAX_EXPANSIONS: usize = 64;
/// What a term matched only through the typed prefix counts.
const PREFIX_FACTOR: f32 = 0.7;

/// One item found by keywords.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeywordHit {
    /// Catalogue position.
    pub item: u32,
    /// Sum over the query's terms of term weight × field weight.
    pub score: f32,
    /// Share (0..=1) of the query's term weight this item matched.
    pub coverage: f32,
}

/// What keywords say about a query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeywordRanking {
    /// Matching items, best first (equal scores in catalogue order).
    pub hits: Vec<KeywordHit>,
    /// The item whose id is the query (punctuation and case aside).
    pub exact_id: Option<u32>,
    /// Items whose title holds exactly the query's words, in catalogue order.
    pub exact_titles: Vec<u32>,
}

/// The keyword side of a site.
#[derive(Debug)]
pub struct Keywords {
    shards: Vec<KeywordShard>,
    loaded: HashMap<usize, KeywordShardData>,
    count: u32,
    unmatched_weight: f32,
    /// Ids by their terms joined with spaces (`SKU-4471` and `sku 4471` meet).
    ids: HashMap<String, u32>,
}

/// An id or query reduced to its folded terms.
fn id_key(text: &str) -> String {
    terms(text).join(" ")
}

impl Keywords {
    /// The manifest's shards for an index of `items.ids.len()` items.
    pub fn new(shards: Vec<KeywordShard>, info: &KeywordInfo, items: &ItemTable) -> Self {
        let mut ids = HashMap::with_capacity(items.ids.len());
        for (i, id) in items.ids.iter().enumerate().rev() {
            ids.insert(id_key(id), i as u32);
        }
        Self {
            shards,
            loaded: HashMap::new(),
            count: items.ids.len() as u32,
            unmatched_weight: info.unmatched_weight,
            ids,
        }
    }

    /// The shards `query` reads, in order.
    pub fn needed(&self, query: &str) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for t in query_terms(query) {
            let range = shards_for(&self.shards, &t);
            let take = if t.prefix { MAX_PREFIX_SHARDS } else { 1 };
            for n in range.take(take) {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        out
    }

    /// The shards `query` reads that are not loaded yet, with their files.
    pub fn missing(&self, query: &str) -> Vec<(usize, &FileRef)> {
        self.needed(query)
            .into_iter()
            .filter(|n| !self.loaded.contains_key(n))
            .map(|n| (n, &self.shards[n].file))
            .collect()
    }

    /// Adds a fetched shard (checked against its [`FileRef`] by the caller).
    pub fn insert(&mut self, n: usize, bytes: &[u8]) -> vitrine_index::Result<()> {
        let data = KeywordShardData::from_bytes(bytes, self.count)?;
        self.loaded.insert(n, data);
        Ok(())
    }

    /// Every shard, for readers that load them all.
    pub fn shards(&self) -> &[KeywordShard] {
        &self.shards
    }

    /// The entries matching one query term, each with its factor (1, or the prefix factor).
    fn matches<'a>(&'a self, t: &'a QueryTerm) -> Vec<(&'a TermEntry, f32)> {
        let range = shards_for(&self.shards, t);
        let take = if t.prefix { MAX_PREFIX_SHARDS } else { 1 };
        let loaded: Vec<&KeywordShardData> = range
            .take(take)
            .filter_map(|n| self.loaded.get(&n))
            .collect();
        let mut out: Vec<(&TermEntry, f32)> = loaded
            .iter()
            .filter_map(|s| s.get(&t.text))
            .map(|e| (e, 1.0))
            .collect();
        if t.prefix {
            let mut more: Vec<&TermEntry> = loaded
                .iter()
                .flat_map(|s| s.with_prefix(&t.text))
                .filter(|e| e.term != t.text)
                .collect();
            more.sort_by(|a, b| b.items.cmp(&a.items).then(a.term.cmp(&b.term)));
            out.extend(
                more.into_iter()
                    .take(MAX_EXPANSIONS)
                    .map(|e| (e, PREFIX_FACTOR)),
            );
        }
        out
    }

    /// Ranks `query` over the loaded shards (terms in shards not loaded count as absent).
    pub fn search(&self, query: &str, title_terms: &[u8]) -> KeywordRanking {
        let qterms = query_terms(query);
        let exact_id = self.ids.get(&id_key(query)).copied();
        if qterms.is_empty() {
            return KeywordRanking {
                exact_id,
                ..KeywordRanking::default()
            };
        }
        // item → (score, matched weight, terms matched exactly in the title)
        let mut acc: HashMap<u32, (f32, f32, usize)> = HashMap::new();
        let mut total = 0f32;
        for t in &qterms {
            let matches = self.matches(t);
            let weight = matches.iter().map(|(e, _)| e.weight).fold(0f32, f32::max);
            let weight = if matches.is_empty() {
                self.unmatched_weight
            } else {
                weight
            };
            total += weight;
            let mut best: HashMap<u32, (f32, bool)> = HashMap::new();
            for (e, factor) in &matches {
                let idf = e.weight;
                let exact = e.term == t.text;
                for p in &e.postings {
                    let s = idf * Field::best_weight(p.fields) * factor;
                    let in_title = exact && p.fields & Field::Title as u8 != 0;
                    let b = best.entry(p.item).or_insert((0.0, false));
                    b.0 = b.0.max(s);
                    b.1 |= in_title;
                }
            }
            for (item, (s, in_title)) in best {
                let a = acc.entry(item).or_insert((0.0, 0.0, 0));
                a.0 += s;
                a.1 += weight;
                a.2 += usize::from(in_title);
            }
        }
        let mut hits: Vec<KeywordHit> = acc
            .iter()
            .map(|(&item, &(score, matched, _))| KeywordHit {
                item,
                score,
                coverage: if total > 0.0 { matched / total } else { 0.0 },
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
        let mut exact_titles: Vec<u32> = acc
            .iter()
            .filter(|(item, (_, _, in_title))| {
                *in_title == qterms.len()
                    && title_terms.get(**item as usize).copied() == Some(qterms.len() as u8)
            })
            .map(|(&item, _)| item)
            .collect();
        exact_titles.sort_unstable();
        KeywordRanking {
            hits,
            exact_id,
            exact_titles,
        }
    }
}
