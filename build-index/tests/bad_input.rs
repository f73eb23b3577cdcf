//! Bad input never stops a build: every unusable row is skipped with its row number, id and a
//! reason naming the problem (exit status 3), every usable one is indexed, whatever its
//! encoding (16-bit, animated, WebP, CMYK, EXIF-rotated, misnamed). `--strict` turns skips into
//! a failure that writes nothing; catalogue-level problems exit 1 and usage errors exit 2.
//!
//! The corpus is made at test time in a temporary folder (only the CMYK JPEG, which the `image`
//! crate cannot encode, is committed: `tests/catalogues/bad/cmyk.jpg`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{
    SiteDir, SkippedRow, catalogues, folder_catalogue, mean_rgb, new_build, png, tempdir,
};
use vitrine_testkit::images::{
    animated_gif, exif_rotated_jpeg, lossless_webp, png_claiming, sixteen_bit_png,
};

/// The colour of the 16-bit image, and what it is in 8 bits (scaled by 255/65535, not clipped).
const SIXTEEN_BIT: [u16; 3] = [60_000, 10_000, 30_000];
const SIXTEEN_BIT_AS_8: [f64; 3] = [233.5, 38.9, 116.7];
/// The mean colour Pillow gives for the committed CMYK JPEG (see tests/catalogues/README.md);
/// a decoder that ignores Adobe's inverted CMYK would give about 255 minus this.
const CMYK_MEAN: [f64; 3] = [190.0, 178.8, 162.9];

/// A catalogue line, the id the report must give it, and the words its skip reason must
/// contain (`None` for a good row).
type Line = (
    &'static str,
    Option<&'static str>,
    Option<Vec<&'static str>>,
);

fn good(line: &'static str, id: &'static str) -> Line {
    (line, Some(id), None)
}

fn bad(line: &'static str, id: Option<&'static str>, words: &[&'static str]) -> Line {
    (line, id, Some(words.to_vec()))
}

/// What the corpus should give.
struct Corpus {
    catalogue: PathBuf,
    /// Ids that must be indexed.
    good: Vec<&'static str>,
    /// Expected skipped rows: row, id, and words the reason must contain.
    bad: Vec<(usize, Option<&'static str>, Vec<&'static str>)>,
}

/// Writes the bad-input corpus and its JSON Lines catalogue into `dir`.
fn make_corpus(dir: &Path) -> Corpus {
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).expect("write");
    let apple = std::fs::read(folder_catalogue().join("food/fruit/apple.png")).expect("apple");
    write("apple.png", &apple);
    write(
        "teapot-really-a-png.jpg",
        &std::fs::read(folder_catalogue().join("emoji/teapot.png")).expect("teapot"),
    );
    write("sixteen-bit.png", &sixteen_bit_png(SIXTEEN_BIT));
    write("animated.gif", &animated_gif());
    write("lossless.webp", &lossless_webp());
    write("exif-rotated.jpg", &exif_rotated_jpeg());
    write(
        "cmyk.jpg",
        &std::fs::read(catalogues().join("bad/cmyk.jpg")).expect("committed CMYK JPEG"),
    );
    write("empty.png", b"");
    write("truncated.png", &apple[..apple.len() / 2]);
    write(
        "page.png",
        b"<!doctype html><html><body><h1>404 Not Found</h1></body></html>\n",
    );
    write("bomb.png", &png_claiming(20_000, 20_000));
    std::fs::create_dir_all(dir.join("a-folder.png")).expect("mkdir");

    let lines: Vec<Line> = vec![
        good(
            r#"{"id": "plain", "title": "Apple (first)", "image": "apple.png"}"#,
            "plain",
        ),
        good(
            r#"{"id": "sixteen-bit", "image": "sixteen-bit.png"}"#,
            "sixteen-bit",
        ),
        good(r#"{"id": "animated", "image": "animated.gif"}"#, "animated"),
        good(r#"{"id": "webp", "image": "lossless.webp"}"#, "webp"),
        good(
            r#"{"id": "png-named-jpg", "image": "teapot-really-a-png.jpg"}"#,
            "png-named-jpg",
        ),
        good(r#"{"id": "exif", "image": "exif-rotated.jpg"}"#, "exif"),
        good(r#"{"id": "cmyk", "image": "cmyk.jpg"}"#, "cmyk"),
        bad(
            r#"{"title": "no id at all", "image": "apple.png"}"#,
            None,
            &["no id"],
        ),
        bad(
            r#"{"id": "", "image": "apple.png"}"#,
            None,
            &["no id", "empty"],
        ),
        bad(
            r#"{"id": "plain", "title": "Teapot (duplicate)", "image": "apple.png"}"#,
            Some("plain"),
            &["duplicate id", "first seen on row 1"],
        ),
        bad(
            r#"{"id": "no-image", "title": "nothing"}"#,
            Some("no-image"),
            &["no image"],
        ),
        bad(
            r#"{"id": "missing", "image": "does-not-exist.png"}"#,
            Some("missing"),
            &["not found", "does-not-exist.png"],
        ),
        bad(
            r#"{"id": "empty-file", "image": "empty.png"}"#,
            Some("empty-file"),
            &["empty.png", "the file is empty"],
        ),
        bad(
            r#"{"id": "truncated", "image": "truncated.png"}"#,
            Some("truncated"),
            &["truncated.png", "damaged or truncated"],
        ),
        bad(
            r#"{"id": "html", "image": "page.png"}"#,
            Some("html"),
            &["page.png", "not an image"],
        ),
        bad(
            r#"{"id": "bomb", "image": "bomb.png"}"#,
            Some("bomb"),
            &["bomb.png", "20000x20000", "pixels", "--max-pixels"],
        ),
        bad(
            r#"{"id": "folder", "image": "a-folder.png"}"#,
            Some("folder"),
            &["a-folder.png", "folder, not an image"],
        ),
        bad(
            r#"{"id": "ftp", "image": "ftp://shop.example/a.png"}"#,
            Some("ftp"),
            &["unsupported ftp: scheme"],
        ),
        bad(
            r#"{"id": "broken json", "image": "#,
            None,
            &["not a JSON object"],
        ),
    ];
    let mut text = String::new();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (i, (line, id, reason)) in lines.into_iter().enumerate() {
        text.push_str(line);
        text.push('\n');
        match reason {
            None => good.push(id.expect("good rows have ids")),
            Some(words) => bad.push((i + 1, id, words)),
        }
    }
    let catalogue = dir.join("catalogue.jsonl");
    write("catalogue.jsonl", text.as_bytes());
    Corpus {
        catalogue,
        good,
        bad,
    }
}

#[track_caller]
fn assert_skipped_as_expected(skipped: &[SkippedRow], corpus: &Corpus) {
    let got: BTreeMap<usize, &SkippedRow> = skipped.iter().map(|s| (s.row, s)).collect();
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        corpus.bad.iter().map(|b| b.0).collect::<Vec<_>>(),
        "exactly the bad rows are skipped, in row order: {skipped:#?}"
    );
    for (row, id, words) in &corpus.bad {
        let s = got[row];
        assert_eq!(s.id.as_deref(), *id, "row {row}: {s:?}");
        for w in words {
            assert!(
                s.reason.contains(w),
                "row {row}: {:?} names {w:?}",
                s.reason
            );
        }
    }
}

#[test]
fn every_bad_row_is_reported_and_every_readable_image_is_indexed() {
    let tmp = tempdir();
    let corpus = make_corpus(tmp.path());
    let out = tmp.path().join("site");
    let built = new_build(&corpus.catalogue, &out, &tmp.path().join("cache")).run();
    built.run.expect_code(3);
    let raw: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("site.report.json")).expect("report"),
    )
    .expect("JSON report");
    // The report's shape, exactly.
    let keys: Vec<&String> = raw.as_object().expect("an object").keys().collect();
    assert_eq!(
        keys,
        [
            "damaged_cache_records",
            "dropped_columns",
            "embedded",
            "excluded",
            "filters",
            "indexed",
            "partition",
            "remote_images",
            "reused",
            "rows",
            "searchable_columns",
            "shortened",
            "skipped",
            "text_encoder"
        ]
    );
    for s in raw["skipped"].as_array().expect("a list") {
        let keys: Vec<&String> = s.as_object().expect("an object").keys().collect();
        assert_eq!(keys, ["id", "reason", "row"]);
    }
    let report = built.report.expect("report");
    assert_eq!(report.rows, corpus.good.len() + corpus.bad.len());
    assert_eq!(report.indexed, corpus.good.len());
    assert_eq!(report.embedded, corpus.good.len());
    assert_eq!(report.reused, 0);
    assert_skipped_as_expected(&report.skipped, &corpus);

    let site = common::assert_complete_site(&out);
    let items = site.items_by_id();
    assert_eq!(
        items.keys().map(String::as_str).collect::<Vec<_>>(),
        {
            let mut ids = corpus.good.clone();
            ids.sort_unstable();
            ids
        },
        "exactly the good rows are indexed"
    );
    assert_eq!(site.manifest.info["rows"], report.rows);
    assert_eq!(site.manifest.info["skipped"], corpus.bad.len());
    // The first row with a duplicated id wins.
    assert_eq!(items["plain"].title, "Apple (first)");
    assert!(built.run.stderr.is_empty(), "-q: {}", built.run.stderr);

    // Each encoding decoded to the right pixels.
    let exif = site.thumbnail("exif");
    assert_eq!(
        (exif.width(), exif.height()),
        (32, 64),
        "EXIF orientation 6 is applied"
    );
    let top = exif.crop_imm(0, 0, 32, 24);
    let bottom = exif.crop_imm(0, 40, 32, 24);
    assert!(
        mean_rgb(&top)[0] > 180.0 && mean_rgb(&top)[2] < 80.0,
        "red on top"
    );
    assert!(
        mean_rgb(&bottom)[2] > 180.0 && mean_rgb(&bottom)[0] < 80.0,
        "blue below"
    );

    let gif = mean_rgb(&site.thumbnail("animated"));
    assert!(
        gif[0] > 200.0 && gif[2] < 40.0,
        "the first (red) frame: {gif:?}"
    );

    let sixteen = mean_rgb(&site.thumbnail("sixteen-bit"));
    for c in 0..3 {
        assert!(
            (sixteen[c] - SIXTEEN_BIT_AS_8[c]).abs() < 4.0,
            "16-bit scaled to 8: {sixteen:?}"
        );
    }

    let cmyk = mean_rgb(&site.thumbnail("cmyk"));
    for c in 0..3 {
        assert!(
            (cmyk[c] - CMYK_MEAN[c]).abs() < 8.0,
            "CMYK colours as Pillow shows them: {cmyk:?}"
        );
    }
    assert_eq!(site.thumbnail("cmyk").width(), 48);

    let webp = site.thumbnail("webp");
    assert_eq!((webp.width(), webp.height()), (50, 40));
    let webp = mean_rgb(&webp);
    assert!(webp[1] > 150.0 && webp[0] < 120.0, "{webp:?}");

    let teapot = site.thumbnail("png-named-jpg");
    assert_eq!((teapot.width(), teapot.height()), (64, 64));
}

#[test]
fn strict_mode_turns_any_skipped_row_into_a_failure_that_writes_nothing() {
    let tmp = tempdir();
    let corpus = make_corpus(tmp.path());
    let out = tmp.path().join("site");
    let built = new_build(&corpus.catalogue, &out, &tmp.path().join("cache"))
        .args(["--strict"])
        .run();
    built.run.expect_code(1);
    assert!(
        built.run.stderr.contains("--strict")
            && built.run.stderr.contains(&format!(
                "{} of {} rows cannot be used",
                corpus.bad.len(),
                corpus.good.len() + corpus.bad.len()
            )),
        "{}",
        built.run.stderr
    );
    assert!(!out.exists(), "no site, no manifest");
    // The report still tells the maintainer what to fix.
    let report = built.report.expect("report");
    assert_eq!(report.indexed, corpus.good.len());
    assert_skipped_as_expected(&report.skipped, &corpus);
}

#[test]
fn max_pixels_skips_larger_images_and_keeps_smaller_ones() {
    let tmp = tempdir();
    let catalogue = tmp.path().join("c.jsonl");
    let apple = folder_catalogue().join("food/fruit/apple.png"); // 128x142 = 18,176 pixels
    let cat = folder_catalogue().join("emoji/cat-face.png"); // 64x64 = 4,096 pixels
    std::fs::write(
        &catalogue,
        format!(
            "{}\n{}\n",
            serde_json::json!({"id": "apple", "image": apple}),
            serde_json::json!({"id": "cat", "image": cat}),
        ),
    )
    .expect("write");
    let out = tmp.path().join("site");
    let report = new_build(&catalogue, &out, &tmp.path().join("cache"))
        .args(["--max-pixels", "10000", "--allow-outside-paths"])
        .run()
        .expect(3);
    assert_eq!(report.indexed, 1);
    assert_eq!(report.skipped.len(), 1);
    let s = &report.skipped[0];
    assert_eq!((s.row, s.id.as_deref()), (1, Some("apple")));
    assert!(
        s.reason
            .contains("128x142 (18176 pixels), over the limit of 10000"),
        "{}",
        s.reason
    );
    assert_eq!(
        SiteDir::open(&out).items_by_id().keys().collect::<Vec<_>>(),
        ["cat"]
    );
}

#[test]
fn exif_orientation_turns_the_embedding_upright_too() {
    let tmp = tempdir();
    let exif = tmp.path().join("exif.jpg");
    let bytes = exif_rotated_jpeg();
    std::fs::write(&exif, &bytes).expect("write");
    // The same decoded pixels, turned by hand (the decoder ignores EXIF here) and stored
    // losslessly; and the same pixels left sideways.
    let sideways = image::load_from_memory(&bytes).expect("decode");
    assert_eq!(sideways.width(), 64, "load_from_memory does not apply EXIF");
    let upright_path = tmp.path().join("upright.png");
    let sideways_path = tmp.path().join("sideways.png");
    std::fs::write(&upright_path, png(&sideways.rotate90())).expect("write");
    std::fs::write(&sideways_path, png(&sideways)).expect("write");
    let run = common::run([
        "embed".as_ref(),
        "--model".as_ref(),
        common::MODEL.as_ref(),
        "--image".as_ref(),
        exif.as_os_str(),
        "--image".as_ref(),
        upright_path.as_os_str(),
        "--image".as_ref(),
        sideways_path.as_os_str(),
    ]);
    run.expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let vecs: Vec<Vec<f64>> = serde_json::from_value(json["image"].clone()).expect("3 vectors");
    let diff = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    };
    assert!(diff(&vecs[0], &vecs[1]) < 1e-4, "{vecs:?}");
    assert!(
        diff(&vecs[0], &vecs[2]) > 1e-3,
        "orientation matters: {vecs:?}"
    );
}

#[test]
fn a_catalogue_without_an_image_column_fails_naming_the_file_and_the_flag() {
    let tmp = tempdir();
    let feed = tmp.path().join("products.csv");
    std::fs::write(&feed, "id,title,price\na1,Mug,9.50\n").expect("write");
    let out = tmp.path().join("site");
    let built = new_build(&feed, &out, &tmp.path().join("cache")).run();
    built.run.expect_code(1);
    let stderr = &built.run.stderr;
    assert!(
        stderr.contains(&feed.display().to_string())
            && stderr.contains("no image column")
            && stderr.contains("id, title, price")
            && stderr.contains("--image-column"),
        "{stderr}"
    );
    assert!(!out.exists());
    assert!(
        built.report.is_none(),
        "nothing was read, nothing to report"
    );
}

#[test]
fn a_catalogue_with_no_usable_row_fails_and_writes_nothing() {
    let tmp = tempdir();
    let catalogue = tmp.path().join("c.jsonl");
    std::fs::write(
        &catalogue,
        "{\"id\": \"a\", \"image\": \"gone.png\"}\n{\"id\": \"b\", \"image\": \"gone.jpg\"}\n",
    )
    .expect("write");
    let out = tmp.path().join("site");
    let built = new_build(&catalogue, &out, &tmp.path().join("cache")).run();
    built.run.expect_code(1);
    assert!(
        built.run.stderr.contains("no row of") && built.run.stderr.contains("nothing was written"),
        "{}",
        built.run.stderr
    );
    assert!(!out.exists());
    let report = built.report.expect("report");
    assert_eq!(
        (report.rows, report.indexed, report.skipped.len()),
        (2, 0, 2)
    );
}

#[test]
fn usage_errors_exit_with_status_2_before_any_work() {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    let cache = tmp.path().join("cache");
    let cases: [(&[&str], &str); 5] = [
        (&["--facet", "color"], "--facet"),
        (&["--facet", "color=red"], "at least two labels"),
        (&["--facet-template", "no placeholder"], "--facet-template"),
        (&["--colour", "red"], "--colour"),
        (&["--min-recall", "2"], "--min-recall"),
    ];
    for (args, needle) in cases {
        let built = new_build(&folder_catalogue(), &out, &cache)
            .args(args)
            .run();
        built.run.expect_code(2);
        assert!(
            built.run.stderr.contains(needle),
            "{args:?}: {}",
            built.run.stderr
        );
        assert!(!out.exists() && built.report.is_none());
    }
    // A missing subcommand argument is a usage error too (`search` without a query browses).
    common::run(["search", "--text", "x"]).expect_code(2);
}
