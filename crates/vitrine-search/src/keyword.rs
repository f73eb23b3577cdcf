//! Keyword search over the shards fetched so far: which shards a query needs, and its ranking.
//! A term scores its weight (`ln(1 + N / items holding it)`, stored in the shard) times the
//! weight of the best field it is in (a term matched only as a longer word starting with the
//! word being typed counts 0.7 of that); an item's score is the sum over the query's words, and
//! its coverage the share of the query's word weight it matched.

use std::collections::HashMap;

use vitrine_index::FileRef;
use vitrine_index::keywords::{
    Field, KeywordInfo, KeywordShard, KeywordShardData, QueryTerm, TermEntry, id_key, query_terms,
    shards_for,
};

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
}

/// An id lookup whose shard has not been fetched yet ([`Keywords::missing_id`] names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the keyword shard that would hold this id is not loaded yet")]
pub struct IdShardMissing;

impl Keywords {
    /// The manifest's shards for an index of `count` items.
    pub fn new(shards: Vec<KeywordShard>, info: &KeywordInfo, count: u32) -> Self {
        Self {
            shards,
            loaded: HashMap::new(),
            count,
            unmatched_weight: info.unmatched_weight,
        }
    }

    /// The shard that would hold the whole-id term `key`.
    fn key_shard(&self, key: &str) -> Option<usize> {
        let term = QueryTerm {
            text: key.to_string(),
            prefix: false,
        };
        shards_for(&self.shards, &term).next()
    }

    /// The shards looking up `id` reads that are not loaded yet, with their files.
    pub fn missing_id(&self, id: &str) -> Vec<(usize, &FileRef)> {
        id_key(id)
            .and_then(|k| self.key_shard(&k))
            .filter(|n| !self.loaded.contains_key(n))
            .map(|n| (n, &self.shards[n].file))
            .into_iter()
            .collect()
    }

    /// The first item (in catalogue order) whose id is `id`, punctuation and case aside; an error
    /// when the shard that would hold it is not loaded.
    pub fn item_with_id(&self, id: &str) -> Result<Option<u32>, IdShardMissing> {
        let Some(key) = id_key(id) else {
            return Ok(None);
        };
        let Some(n) = self.key_shard(&key) else {
            return Ok(None);
        };
        let shard = self.loaded.get(&n).ok_or(IdShardMissing)?;
        Ok(shard
            .get(&key)
            .and_then(|e| e.postings.first())
            .map(|p| p.item))
    }

    /// The shards `query` reads, in order: its words', then the one that would hold it as an id.
    pub fn needed(&self, query: &str) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        let id = id_key(query).and_then(|k| self.key_shard(&k));
        for t in query_terms(query) {
            let range = shards_for(&self.shards, &t);
            let take = if t.prefix { MAX_PREFIX_SHARDS } else { 1 };
            for n in range.take(take) {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        if let Some(n) = id
            && !out.contains(&n)
        {
            out.push(n);
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
        let exact_id = self.item_with_id(query).ok().flatten();
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
        // The item whose id is the query holds every word in its id, though a common word's
        // postings may stop before it (`MAX_POSTINGS` keeps the first items of a tie).
        if let Some(i) = exact_id {
            let a = acc.entry(i).or_insert((0.0, 0.0, 0));
            a.0 = a.0.max(total * Field::Id.weight());
            a.1 = total;
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

#[cfg(test)]
mod tests {
    use vitrine_index::keywords::{Field, KeywordIndexBuilder, KeywordInfo, KeywordShard};
    use vitrine_index::{FileRef, keywords::id_key};

    use super::{IdShardMissing, Keywords};

    /// A shop of `n` items (ids `SKU-000000`…, titled by colour) split into many shards, with its
    /// shard files' bytes.
    fn shop(n: u32) -> (Keywords, Vec<Vec<u8>>) {
        let mut b = KeywordIndexBuilder::default();
        for i in 0..n {
            b.add(i, Field::Id, &format!("SKU-{i:06}"));
            let colour = ["red", "blue", "green"][i as usize % 3];
            b.add(i, Field::Title, &format!("{colour} mug number {i}"));
        }
        let (shards, bytes): (Vec<KeywordShard>, Vec<Vec<u8>>) = b
            .finish(n)
            .into_iter()
            .map(|(first, bytes)| {
                let file = FileRef::for_content("keywords/kw", "bin", &bytes);
                (KeywordShard { first, file }, bytes)
            })
            .unzip();
        let info = KeywordInfo {
            unmatched_weight: 1.0,
            terms: 0,
        };
        (Keywords::new(shards, &info, n), bytes)
    }

    #[test]
    fn an_id_is_found_by_fetching_the_one_shard_that_holds_it() {
        let (mut kw, bytes) = shop(20_000);
        assert!(kw.shards().len() > 10, "{} shards", kw.shards().len());
        assert_eq!(kw.item_with_id("SKU-012345"), Err(IdShardMissing));
        let missing: Vec<usize> = kw
            .missing_id("SKU-012345")
            .iter()
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(missing.len(), 1);
        assert_eq!(kw.needed("SKU-012345").last(), missing.first());
        kw.insert(missing[0], &bytes[missing[0]]).unwrap();
        // Punctuation and case aside, as shoppers type SKUs: the same shard answers.
        for typed in ["SKU-012345", "sku 012345", "Sku_012345"] {
            assert!(kw.missing_id(typed).is_empty(), "{typed}");
            assert_eq!(kw.item_with_id(typed), Ok(Some(12_345)), "{typed}");
            assert_eq!(kw.search(typed, &[]).exact_id, Some(12_345), "{typed}");
        }
        // A word of an id is not the id, and an id nobody has is absent, not an error.
        for (n, b) in bytes.iter().enumerate() {
            kw.insert(n, b).unwrap();
        }
        assert_eq!(kw.item_with_id("012345"), Ok(None));
        assert_eq!(kw.item_with_id("SKU-999999"), Ok(None));
        assert_eq!(kw.item_with_id("--"), Ok(None));
        assert_eq!(kw.search("012345", &[]).exact_id, None);
        // Words still rank as before: the id's terms are ordinary words too.
        assert_eq!(kw.search("012345", &[]).hits[0].item, 12_345);
        // "sku" is on every item, more than a term keeps postings for: the item whose id is the
        // query still matches every word, so the query narrows to it.
        let ranking = kw.search("SKU-019999", &[]);
        assert_eq!(ranking.exact_id, Some(19_999));
        let full: Vec<u32> = ranking
            .hits
            .iter()
            .filter(|h| h.coverage >= 1.0)
            .map(|h| h.item)
            .collect();
        assert_eq!(full, [19_999]);
        assert_eq!(ranking.hits[0].item, 19_999);
    }

    #[test]
    fn of_two_ids_equal_but_for_punctuation_the_first_wins() {
        let mut b = KeywordIndexBuilder::default();
        b.add(0, Field::Id, "AB-1");
        b.add(1, Field::Id, "ab 1");
        let shards = b.finish(2);
        assert_eq!(shards.len(), 1);
        assert_eq!(shards[0].0, id_key("ab.1").unwrap());
        let file = FileRef::for_content("keywords/kw", "bin", &shards[0].1);
        let info = KeywordInfo {
            unmatched_weight: 1.0,
            terms: 0,
        };
        let first = shards[0].0.clone();
        let mut kw = Keywords::new(vec![KeywordShard { first, file }], &info, 2);
        kw.insert(0, &shards[0].1).unwrap();
        assert_eq!(kw.item_with_id("ab-1"), Ok(Some(0)));
    }
}
