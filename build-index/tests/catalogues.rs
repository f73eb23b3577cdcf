//! The three committed catalogues (a nested image folder, a Google Merchant Center feed, JSON
//! Lines) build into complete, verified sites that `search` can query; zero-shot facets reach the
//! manifest and every item; the recall threshold guards the output; progress is plain text when
//! stderr is not a terminal.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{
    CATALOGUE_IMAGES, SearchHit, SiteDir, assert_complete_site, catalogues, folder_catalogue,
    new_build, search, tempdir,
};
use vitrine_index::ItemTable;

/// Every image under the folder by relative path, sorted by bytes: the folder catalogue's ids.
fn image_paths(root: &Path) -> Vec<String> {
    common::tree(root)
        .into_keys()
        .filter(|p| p.ends_with(".png") || p.ends_with(".jpg"))
        .collect()
}

/// Results are `k` distinct ids of the catalogue, best first.
#[track_caller]
fn assert_ranked(hits: &[SearchHit], k: usize, ids: &BTreeSet<String>) {
    assert_eq!(hits.len(), k, "{hits:?}");
    for pair in hits.windows(2) {
        assert!(pair[0].score >= pair[1].score, "best first: {hits:?}");
    }
    let distinct: BTreeSet<&String> = hits.iter().map(|h| &h.id).collect();
    assert_eq!(distinct.len(), k, "no id twice: {hits:?}");
    for h in hits {
        assert!(ids.contains(&h.id), "{} is in the catalogue", h.id);
        assert!(h.score.is_finite() && h.score.abs() <= 1.01, "{h:?}");
    }
}

/// `search --like ID` ranks ID first, with the best score.
#[track_caller]
fn assert_like_puts_the_item_first(site: &Path, id: &str) {
    let hits = search(site, &["--like", id, "-k", "4"]);
    assert_eq!(hits.len(), 4);
    assert_eq!(hits[0].id, id, "{hits:?}");
    assert!(
        hits[0].score > 0.99,
        "an image is most like itself: {hits:?}"
    );
}

#[test]
fn a_nested_image_folder_builds_verifies_and_searches() {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    let report = new_build(&folder_catalogue(), &out, &tmp.path().join("cache"))
        .run()
        .expect(0);
    assert_eq!(report.rows, CATALOGUE_IMAGES);
    assert_eq!(report.indexed, CATALOGUE_IMAGES);
    assert_eq!(report.embedded, CATALOGUE_IMAGES);
    assert_eq!(report.reused, 0);
    assert!(report.skipped.is_empty());

    let site = assert_complete_site(&out);
    assert_eq!(site.manifest.count as usize, CATALOGUE_IMAGES);
    assert_eq!(site.manifest.info["catalogue"], "folder");
    assert_eq!(site.manifest.model.dim, 16);
    // One thumbnail per image, in the packs of the chunks (one chunk: a small catalogue).
    assert_eq!(site.thumbnail_bytes().len(), CATALOGUE_IMAGES);
    assert_eq!(site.chunk_table().packs().count(), 1);

    // Ids are the relative paths (subfolders included) in byte order; titles come from file names.
    let items = site.items();
    let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
    assert_eq!(ids, image_paths(&folder_catalogue()));
    assert!(ids.contains(&"clothing/hats/top-hat.png".to_string()));
    let orange = items
        .iter()
        .find(|i| i.id == "food/fruit/tile-orange.png")
        .expect("the orange is indexed");
    assert_eq!(orange.title, "tile orange");
    let catalog = ItemTable::from_json(&site.read(&site.manifest.files.items.path), ids.len())
        .expect("the item table matches the manifest");
    assert_eq!(catalog.count as usize, ids.len());

    let all: BTreeSet<String> = ids.into_iter().collect();
    assert_ranked(&search(&out, &["--text", "a cat", "-k", "5"]), 5, &all);
    // k larger than the catalogue gives the whole catalogue.
    assert_ranked(
        &search(&out, &["--text", "a hat", "-k", "100"]),
        CATALOGUE_IMAGES,
        &all,
    );
    assert_like_puts_the_item_first(&out, "emoji/cat-face.png");
    assert_like_puts_the_item_first(&out, "photos/house-cat.jpg");
}

#[test]
fn a_merchant_center_feed_builds_with_its_titles_prices_links_and_other_columns() {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    let feed = catalogues().join("merchant-center.tsv");
    // Only what the page shows is published, and what the maintainer names.
    let keep = [
        "description",
        "brand",
        "product_type",
        "google_product_category",
    ];
    let report = new_build(&feed, &out, &tmp.path().join("cache"))
        .args(keep.iter().flat_map(|k| ["--keep-column", k]))
        .run()
        .expect(0);
    assert_eq!(
        (report.rows, report.indexed, report.skipped.len()),
        (CATALOGUE_IMAGES, CATALOGUE_IMAGES, 0)
    );
    assert!(
        report
            .dropped_columns
            .iter()
            .all(|c| !keep.contains(&c.as_str())),
        "{:?}",
        report.dropped_columns
    );
    let site = assert_complete_site(&out);
    assert_eq!(site.manifest.info["catalogue"], "merchant-center.tsv");

    let items = site.items();
    // Feed order is kept.
    assert_eq!(items[0].id, "oc-02602");
    assert_eq!(items[CATALOGUE_IMAGES - 1].id, "ph-38");
    let apple = &items[0];
    assert_eq!(apple.title, "Apple");
    assert_eq!(apple.description.as_deref(), Some("Apple"));
    assert_eq!(apple.price.as_deref(), Some("0.80 EUR"));
    assert_eq!(
        apple.link.as_deref(),
        Some("https://shop.example/products/oc-02602")
    );
    assert_eq!(apple.extra["brand"], "Orchard");
    assert_eq!(apple.extra["product_type"], "food > fruit");
    assert_eq!(
        apple.extra["google_product_category"],
        "Food, Beverages & Tobacco > Food Items > Fruits & Vegetables"
    );
    assert!(
        !apple.extra.contains_key("image_link") && !apple.extra.contains_key("price"),
        "columns with a role are not repeated as extras: {:?}",
        apple.extra
    );
    // A row whose description cell is empty has none.
    let glass = items.iter().find(|i| i.id == "oc-02685").expect("glass");
    assert_eq!(glass.title, "Drinking Glass, with Red Punch");
    assert_eq!(glass.description, None);

    let all: BTreeSet<String> = items.iter().map(|i| i.id.clone()).collect();
    assert_ranked(
        &search(&out, &["--text", "a coffee mug", "-k", "7"]),
        7,
        &all,
    );
    assert_like_puts_the_item_first(&out, "oc-06887");
}

#[test]
fn a_json_lines_catalogue_keeps_non_latin_and_html_titles_as_plain_text() {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    let jsonl = catalogues().join("products.jsonl");
    let report = new_build(&jsonl, &out, &tmp.path().join("cache"))
        .args(["--keep-column", "keywords", "--keep-column", "category"])
        .run()
        .expect(0);
    assert_eq!(
        (report.rows, report.indexed),
        (CATALOGUE_IMAGES, CATALOGUE_IMAGES)
    );
    let site = assert_complete_site(&out);
    let items = site.items_by_id();
    assert_eq!(items.len(), CATALOGUE_IMAGES);

    // Titles are stored exactly as written: the page shows them as text, so markup must reach
    // it untouched (and is never interpreted by the build either).
    assert_eq!(items["oc-02701"].title, "猫のマグカップ");
    assert_eq!(items["em-1f375"].title, "Кружка");
    assert_eq!(items["oc-02696"].title, "Milch „frisch“ – 1 l");
    assert_eq!(items["oc-02769"].title, "<img src=x onerror=alert(1)>");
    // Other keys are kept as JSON values: lists stay lists.
    assert_eq!(
        items["oc-02602"].extra["keywords"],
        serde_json::json!(["food", "apple", "fruit", "menu"])
    );
    assert_eq!(items["oc-02602"].extra["category"], "food/fruit");
    assert!(!items["oc-02602"].extra.contains_key("image"));

    let all: BTreeSet<String> = items.keys().cloned().collect();
    assert_ranked(
        &search(&out, &["--text", "猫のマグカップ", "-k", "3"]),
        3,
        &all,
    );
    assert_ranked(&search(&out, &["--text", "Кружка", "-k", "3"]), 3, &all);
    assert_like_puts_the_item_first(&out, "oc-02769");
}

#[test]
fn zero_shot_facets_reach_the_manifest_the_catalog_and_every_item() {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    let colors = ["red", "green", "blue", "black", "white"];
    let kinds = ["food", "clothing", "tool", "animal"];
    new_build(&folder_catalogue(), &out, &tmp.path().join("cache"))
        .args([
            "--facet",
            "color=red, green,blue,black,white",
            "--facet",
            "kind=food,clothing,tool,animal",
            "--facet-template",
            "a {} object",
            "--facet-template",
            "a photo of {}",
        ])
        .run()
        .expect(0);
    let site = assert_complete_site(&out);
    let facets = &site.manifest.facets;
    assert_eq!(facets.len(), 2);
    assert_eq!(facets[0].name, "color");
    assert_eq!(facets[0].labels, colors);
    assert_eq!(facets[0].template, "a {} object");
    assert_eq!(facets[1].name, "kind");
    assert_eq!(facets[1].labels, kinds);
    assert_eq!(facets[1].template, "a photo of {}");
    for f in facets {
        assert_eq!(
            f.counts.iter().sum::<u32>() as usize,
            CATALOGUE_IMAGES,
            "every item has one label of {}",
            f.name
        );
    }

    let items = site.items();
    let catalog = ItemTable::from_json(
        &site.read(&site.manifest.files.items.path),
        CATALOGUE_IMAGES,
    )
    .expect("item table");
    for (f, labels) in [(&facets[0], &colors[..]), (&facets[1], &kinds[..])] {
        let indices = &catalog.facets[&f.name];
        for (i, item) in items.iter().enumerate() {
            let value = &item.facets[&f.name];
            assert_eq!(value.label, labels[indices[i] as usize], "{}", item.id);
            let floor = 1.0 / labels.len() as f32;
            assert!(
                value.probability >= floor - 1e-6 && value.probability <= 1.0,
                "the winning label's probability is at least 1/n: {value:?}"
            );
        }
        // The manifest's counts are the item table's label histogram.
        let mut counts = vec![0u32; labels.len()];
        for &l in indices {
            counts[l as usize] += 1;
        }
        assert_eq!(counts, f.counts);
    }

    // A facet filter keeps only items with that label.
    let (best, &n) = facets[1]
        .counts
        .iter()
        .enumerate()
        .max_by_key(|(_, c)| **c)
        .expect("labels");
    let label = kinds[best];
    let hits = search(
        &out,
        &[
            "--text",
            "something",
            "-k",
            "100",
            "--facet",
            &format!("kind={label}"),
        ],
    );
    assert_eq!(hits.len(), n as usize);
    let by_id = site.items_by_id();
    for h in &hits {
        assert_eq!(by_id[&h.id].facets["kind"].label, label);
    }
    // A misspelt facet or label is a usage error naming what the site has, not an unfiltered list.
    for (facet, expected) in [
        ("colour=red", "it has: color, kind"),
        ("kind=ufo", "its labels:"),
    ] {
        let site = out.as_os_str().to_owned();
        let run = common::run([
            "search".into(),
            "--site".into(),
            site,
            "--text".into(),
            "something".into(),
            "--facet".into(),
            facet.into(),
        ]);
        run.expect_code(2);
        assert!(run.stderr.contains(expected), "{facet}: {}", run.stderr);
    }
}

#[test]
fn the_default_recall_threshold_fails_the_degenerate_fixture_model_and_keeps_the_old_site() {
    let tmp = tempdir();
    let (out, cache) = (tmp.path().join("site"), tmp.path().join("cache"));
    // Into an empty place: nothing is created.
    let build = new_build(&folder_catalogue(), &out, &cache).default_min_recall();
    let failed = build.run();
    failed.run.expect_code(1);
    let stderr = &failed.run.stderr;
    assert!(
        stderr.contains("recall@10 of the int8 index is 0.")
            && stderr.contains("below --min-recall 0.99")
            && stderr.contains("nothing was written"),
        "{stderr}"
    );
    assert!(!out.exists(), "no site was written");
    let names: BTreeSet<String> = std::fs::read_dir(tmp.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    // The report (it describes the rows, all embedded) is written; no staging folder is left.
    assert_eq!(
        names,
        BTreeSet::from(["cache".to_string(), "site.report.json".to_string()]),
        "only the cache and the report remain"
    );

    // Over an existing site: it stays as it was.
    new_build(&folder_catalogue(), &out, &cache).run().expect(0);
    let before = common::tree(&out);
    let recall = SiteDir::open(&out).manifest.recall;
    assert!(
        recall.value < 0.99 && recall.value >= 0.5,
        "the fixture's recall sits between the two thresholds: {recall:?}"
    );
    assert_eq!(recall.threshold, 0.5);
    new_build(&folder_catalogue(), &out, &cache)
        .default_min_recall()
        .run()
        .run
        .expect_code(1);
    assert_eq!(common::tree(&out), before, "the old site is untouched");
}

#[test]
fn without_quiet_and_with_stderr_piped_progress_is_plain_lines() {
    let tmp = tempdir();
    let folder = tmp.path().join("shop");
    std::fs::create_dir_all(&folder).expect("mkdir");
    for name in ["cat-face.png", "teapot.png", "bicycle.png"] {
        std::fs::copy(
            folder_catalogue().join("emoji").join(name),
            folder.join(name),
        )
        .expect("copy");
    }
    let built = new_build(&folder, &tmp.path().join("site"), &tmp.path().join("cache"))
        .verbose()
        .run();
    built.run.expect_code(0);
    let stderr = &built.run.stderr;
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("images 3/3 · ")),
        "a plain progress line: {stderr}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("3 rows in ")),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("indexed 3 of 3 rows (3 embedded, 0 from cache, 0 skipped)")),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "no terminal control characters in a log: {stderr:?}"
    );
    assert!(
        built.run.stdout.is_empty(),
        "build prints nothing on stdout"
    );

    // `-q` silences all of it.
    let quiet = new_build(
        &folder,
        &tmp.path().join("site2"),
        &tmp.path().join("cache"),
    )
    .run();
    quiet.run.expect_code(0);
    assert_eq!(quiet.run.stderr, "");
}

#[test]
fn links_other_than_web_and_relative_ones_are_dropped() {
    let tmp = tempdir();
    let images = folder_catalogue().join("emoji");
    let feed = tmp.path().join("feed.csv");
    let row = |id: &str, link: &str, image: &str| {
        format!("{id},{link},{}\n", images.join(image).display())
    };
    let csv = format!(
        "id,link,image_link\n{}{}{}{}",
        row("a", "javascript:alert(1)", "cat-face.png"),
        row(
            "b",
            "\"data:text/html,<script>alert(1)</script>\"",
            "teapot.png"
        ),
        row("c", "/products/c?colour=red", "hammer.png"),
        row("d", "HTTPS://shop.example/d", "bicycle.png"),
    );
    std::fs::write(&feed, csv).expect("write feed");
    let out = tmp.path().join("site");
    new_build(&feed, &out, &tmp.path().join("cache"))
        .args(["--allow-outside-paths"])
        .run()
        .expect(0);
    let items = SiteDir::open(&out).items_by_id();
    assert_eq!(items["a"].link, None);
    assert_eq!(items["b"].link, None);
    assert_eq!(items["c"].link.as_deref(), Some("/products/c?colour=red"));
    assert_eq!(items["d"].link.as_deref(), Some("HTTPS://shop.example/d"));
    // Without a title column, the title is the id.
    assert_eq!(items["a"].title, "a");
}
