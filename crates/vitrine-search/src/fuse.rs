//! Hybrid ranking: reciprocal-rank fusion of the CLIP ranking and the keyword ranking,
//!
//! `score(i) = 1 / (60 + semantic rank) + coverage(i)² / (60 + keyword rank)`
//!
//! (ranks from 1; a list an item is missing from adds nothing). Ranks rather than raw scores,
//! because cosine similarities and keyword weights live on unrelated scales that shift from
//! query to query; the constant 60 is the usual one (Cormack et al., 2009). The keyword term is
//! scaled by the square of the share of the query's word weight the item matched, so a purely
//! visual query ("a fluffy pink cat on a tv") is not pulled around by items that share one
//! common word with it.
//! Before all of that: the item whose id is the query comes first, then items whose title is
//! exactly the query's words.

use std::collections::HashMap;

use vitrine_index::Hit;

use crate::keyword::{KeywordHit, KeywordRanking};

/// The rank constant of reciprocal-rank fusion.
pub const RRF_K: f32 = 60.0;

/// Fuses a semantic ranking (best first) with a keyword ranking; `allowed` filters both.
pub(crate) fn fuse(
    semantic: &[Hit],
    keywords: &KeywordRanking,
    allowed: &dyn Fn(u32) -> bool,
) -> Vec<Hit> {
    let mut score: HashMap<u32, f32> = HashMap::new();
    for (r, h) in semantic.iter().filter(|h| allowed(h.index)).enumerate() {
        *score.entry(h.index).or_default() += 1.0 / (RRF_K + (r + 1) as f32);
    }
    for (r, h) in keywords.hits.iter().filter(|h| allowed(h.item)).enumerate() {
        *score.entry(h.item).or_default() += h.coverage * h.coverage / (RRF_K + (r + 1) as f32);
    }
    let tier = |i: u32| {
        if keywords.exact_id == Some(i) {
            0
        } else if keywords.exact_titles.binary_search(&i).is_ok() {
            1
        } else {
            2
        }
    };
    if let Some(i) = keywords.exact_id.filter(|&i| allowed(i)) {
        score.entry(i).or_default();
    }
    for &i in keywords.exact_titles.iter().filter(|&&i| allowed(i)) {
        score.entry(i).or_default();
    }
    let mut hits: Vec<Hit> = score
        .into_iter()
        .map(|(index, score)| Hit { index, score })
        .collect();
    hits.sort_by(|a, b| {
        tier(a.index)
            .cmp(&tier(b.index))
            .then(b.score.total_cmp(&a.score))
            .then(a.index.cmp(&b.index))
    });
    hits
}

/// Whether a keyword hit matched every word of the query.
pub(crate) fn has_every_word(h: &KeywordHit) -> bool {
    h.coverage >= 1.0 - 1e-6
}

/// The keyword ranking alone, with the exact id and exact titles first: the items matching every
/// word of the query when there are any (a shopper's words narrow, as in a shop's own search),
/// else those matching some.
pub(crate) fn keywords_only(keywords: &KeywordRanking, allowed: &dyn Fn(u32) -> bool) -> Vec<Hit> {
    let full = |h: &&KeywordHit| has_every_word(h);
    if !keywords.hits.iter().filter(full).any(|h| allowed(h.item)) {
        return fuse(&[], keywords, allowed);
    }
    let narrowed = KeywordRanking {
        hits: keywords.hits.iter().filter(full).copied().collect(),
        exact_id: keywords.exact_id,
        exact_titles: keywords.exact_titles.clone(),
    };
    fuse(&[], &narrowed, allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(index: u32, score: f32) -> Hit {
        Hit { index, score }
    }

    fn kw(item: u32, coverage: f32) -> KeywordHit {
        KeywordHit {
            item,
            score: 1.0,
            coverage,
        }
    }

    #[test]
    fn without_keyword_matches_the_semantic_order_stands() {
        let semantic = [hit(5, 0.3), hit(2, 0.29), hit(9, 0.1)];
        let fused = fuse(&semantic, &KeywordRanking::default(), &|_| true);
        let order: Vec<u32> = fused.iter().map(|h| h.index).collect();
        assert_eq!(order, [5, 2, 9]);
    }

    #[test]
    fn exact_ids_then_exact_titles_come_first_and_filters_hold() {
        let semantic = [hit(1, 0.3), hit(2, 0.2), hit(3, 0.1)];
        let keywords = KeywordRanking {
            hits: vec![kw(3, 1.0), kw(7, 0.5)],
            exact_id: Some(7),
            exact_titles: vec![3],
        };
        let order: Vec<u32> = fuse(&semantic, &keywords, &|_| true)
            .iter()
            .map(|h| h.index)
            .collect();
        assert_eq!(order, [7, 3, 1, 2]);
        let order: Vec<u32> = fuse(&semantic, &keywords, &|i| i != 7)
            .iter()
            .map(|h| h.index)
            .collect();
        assert_eq!(order, [3, 1, 2]);
    }

    #[test]
    fn a_full_keyword_match_lifts_an_item_a_partial_one_less() {
        let semantic = [hit(1, 0.3), hit(2, 0.2), hit(3, 0.1), hit(4, 0.05)];
        let full = KeywordRanking {
            hits: vec![kw(4, 1.0)],
            ..KeywordRanking::default()
        };
        let weak = KeywordRanking {
            hits: vec![kw(4, 0.1)],
            ..KeywordRanking::default()
        };
        let first = |k: &KeywordRanking| fuse(&semantic, k, &|_| true)[0].index;
        assert_eq!(first(&full), 4);
        assert_eq!(first(&weak), 1);
    }

    #[test]
    fn keywords_alone_narrow_to_items_with_every_word_when_there_are_any() {
        let both = KeywordRanking {
            hits: vec![kw(4, 0.5), kw(2, 1.0), kw(9, 1.0)],
            ..KeywordRanking::default()
        };
        let order = |k: &KeywordRanking, allowed: &dyn Fn(u32) -> bool| -> Vec<u32> {
            keywords_only(k, allowed).iter().map(|h| h.index).collect()
        };
        assert_eq!(order(&both, &|_| true), [2, 9]);
        // When a filter leaves no item with every word, items with some words are shown.
        assert_eq!(order(&both, &|i| i == 4), [4]);
    }
}
