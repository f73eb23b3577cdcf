//! Keyword and hybrid search, filters and their counts, through `build-index search` on the
//! Merchant Center feed (brands, product types, prices in EUR): an exact id or title ranks first,
//! a brand query finds the brand, a visual query with no keyword match keeps CLIP's order, filters
//! narrow and count per value, and bad selections are usage errors that name what exists.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{new_build, run, search_output, tempdir};
use vitrine_index::SearchMode;
use vitrine_index::filters::FilterKind;

/// The feed, built once for every test here.
fn shop() -> &'static Path {
    static SITE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, out) = SITE.get_or_init(|| {
        let tmp = tempdir();
        let out = tmp.path().join("site");
        let feed = common::catalogues().join("merchant-center.tsv");
        let report = new_build(&feed, &out, &tmp.path().join("cache"))
            .run()
            .expect(0);
        assert_eq!(report.filters, ["brand", "product_type", "price"]);
        (tmp, out)
    });
    out
}

fn ids(args: &[&str]) -> Vec<String> {
    search_output(shop(), args).ids()
}

#[test]
fn an_exact_id_ranks_that_item_first_in_hybrid_and_keyword_modes() {
    for mode in ["hybrid", "keyword"] {
        for query in ["oc-06474", "OC-06474"] {
            let got = ids(&["--text", query, "--mode", mode]);
            assert_eq!(
                got.first().map(String::as_str),
                Some("oc-06474"),
                "{mode} {query}: {got:?}"
            );
        }
    }
}

#[test]
fn an_exact_title_ranks_first_and_a_brand_query_finds_the_brand() {
    let got = ids(&["--text", "small square table"]);
    assert_eq!(got[0], "oc-02526", "{got:?}");
    // Toolbox makes three items: keyword search finds exactly those, hybrid puts them first.
    let mut toolbox = ids(&["--text", "toolbox", "--mode", "keyword"]);
    toolbox.sort();
    assert_eq!(toolbox, ["oc-05150", "oc-05183", "oc-05216"]);
    let mut top = ids(&["--text", "toolbox"])[..3].to_vec();
    top.sort();
    assert_eq!(top, toolbox);
}

#[test]
fn keyword_search_folds_case_and_matches_prefixes_as_you_type() {
    assert_eq!(ids(&["--text", "GATT", "--mode", "keyword"]), ["oc-06474"]);
    let shirts = ids(&["--text", "t-shi", "--mode", "keyword"]);
    assert!(
        shirts.contains(&"oc-06852".to_string()) && shirts.contains(&"em-1f455".to_string()),
        "{shirts:?}"
    );
}

#[test]
fn a_visual_query_that_matches_no_keyword_keeps_the_semantic_top_10() {
    let query = "vivid glowing nebula";
    let keyword = search_output(shop(), &["--text", query, "--mode", "keyword"]);
    assert!(keyword.results.is_empty(), "{:?}", keyword.ids());
    let semantic = search_output(shop(), &["--text", query, "--mode", "semantic"]);
    let hybrid = search_output(shop(), &["--text", query]);
    assert_eq!(
        (semantic.mode, hybrid.mode),
        (SearchMode::Semantic, SearchMode::Hybrid)
    );
    assert_eq!(hybrid.ids(), semantic.ids());
}

#[test]
fn filters_narrow_and_count_per_value_with_the_query() {
    let site = common::SiteDir::open(shop());
    let brand = site
        .manifest
        .filters
        .iter()
        .find(|f| f.key == "brand")
        .expect("a brand filter");
    let FilterKind::Values { values, .. } = &brand.kind else {
        panic!("brand is a value filter: {brand:?}");
    };
    let at = |v: &str| values.iter().position(|x| x == v).expect(v);
    let price = site
        .manifest
        .filters
        .iter()
        .find(|f| f.key == "price")
        .expect("price");
    assert_eq!(
        price.kind,
        FilterKind::Range {
            min: 0.2,
            max: 499.0,
            currency: Some("EUR".into())
        }
    );

    // Browsing one brand: its items in feed order; the brand's own counts still show the
    // other brands (choosing one more widens), the price range narrows to the brand's.
    let out = search_output(shop(), &["--filter", "brand=Toolbox", "-k", "50"]);
    assert_eq!(out.ids(), ["oc-05150", "oc-05216", "oc-05183"]);
    assert_eq!(out.counts.total, 3);
    let counts = &out.counts.values["brand"];
    assert_eq!((counts[at("Toolbox")], counts[at("Hatter")]), (3, 2));
    let range = out.counts.ranges["price"];
    assert_eq!(
        (range.items, range.min, range.max),
        (3, Some(6.5), Some(19.9))
    );

    // Two brands are alternatives; a price range must hold too.
    let out = search_output(
        shop(),
        &[
            "--filter",
            "brand=Toolbox",
            "--filter",
            "brand=Hatter",
            "--filter",
            "price=10-30",
            "-k",
            "50",
        ],
    );
    assert_eq!(out.ids(), ["oc-05216", "oc-06881"]);
    // A text query counts its own candidates: "hat" matches the two hats only.
    let out = search_output(shop(), &["--text", "hat", "--mode", "keyword", "-k", "50"]);
    assert_eq!(out.counts.values["brand"][at("Hatter")], 2);
    assert_eq!(out.counts.values["brand"][at("Toolbox")], 0);
}

#[test]
fn an_unknown_filter_or_value_is_a_usage_error_naming_what_exists() {
    let site = shop().display().to_string();
    for (filter, words) in [
        ("colour=red", ["colour", "brand, product_type, price"]),
        ("brand=Acme", ["Acme", "Toolbox"]),
        ("price=cheap", ["cheap", "10-50"]),
    ] {
        let r = run(["search", "--site", &site, "--text", "x", "--filter", filter]);
        r.expect_code(2);
        for w in words {
            assert!(
                r.stderr.contains(w),
                "{filter}: {w:?} missing from {}",
                r.stderr
            );
        }
    }
}

#[test]
fn filter_column_names_a_column_to_filter_on_and_an_unknown_one_is_refused() {
    let tmp = tempdir();
    let feed = common::catalogues().join("merchant-center.tsv");
    let out = tmp.path().join("site");
    let report = new_build(&feed, &out, &tmp.path().join("cache"))
        .args(["--filter-column", "google_product_category"])
        .run()
        .expect(0);
    assert!(
        report
            .filters
            .contains(&"google_product_category".to_string()),
        "{:?}",
        report.filters
    );
    assert!(
        !report
            .dropped_columns
            .contains(&"google_product_category".to_string())
    );

    let refused = new_build(&feed, &tmp.path().join("other"), &tmp.path().join("cache"))
        .args(["--filter-column", "colour"])
        .run();
    refused.run.expect_code(2);
    assert!(
        refused.run.stderr.contains("colour") && refused.run.stderr.contains("brand"),
        "{}",
        refused.run.stderr
    );
    assert!(!tmp.path().join("other").exists());
}
