//! What an adversarial pass found on the file side, each proved fixed: `--out` never deletes a
//! folder that is not a vitrine site; special files, truncated JPEGs and local paths outside the
//! catalogue's folder cost one row each; a Shopify export publishes neither drafts nor internal
//! columns; a damaged embedding cache is repaired; decoding stays within its memory budget; a
//! manifest cannot make `verify` read outside the site.

mod common;

use std::path::Path;

use common::{
    SiteDir, assert_complete_site, folder_catalogue, new_build, run, tempdir, tree, verify,
};

/// Copies a few committed images into `dir` (as `a.png`, `b.png`, `c.jpg`).
fn images(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let root = folder_catalogue();
    for (from, to) in [
        ("emoji/cat-face.png", "a.png"),
        ("emoji/teapot.png", "b.png"),
        ("photos/house-cat.jpg", "c.jpg"),
    ] {
        std::fs::copy(root.join(from), dir.join(to)).expect("copy image");
    }
}

#[test]
fn an_out_folder_that_is_not_a_vitrine_site_is_refused_and_left_whole() {
    let tmp = tempdir();
    let shop = tmp.path().join("shop");
    images(&shop);
    let csv = shop.join("products.csv");
    std::fs::write(&csv, "id,image\na,a.png\nb,b.png\n").expect("csv");
    std::fs::write(shop.join("notes.txt"), "do not lose me").expect("notes");
    let before = tree(&shop);

    // `--out shop`: the folder holding the catalogue itself.
    let built = new_build(&csv, &shop, &tmp.path().join("cache")).run();
    built.run.expect_code(2);
    assert!(
        built.run.stderr.contains("shop") && built.run.stderr.contains("no vitrine index"),
        "{}",
        built.run.stderr
    );
    assert_eq!(tree(&shop), before, "not one file of the folder changed");

    // `--out dist`: the app shell. The index goes to dist/search, beside the shell.
    let dist = tmp.path().join("dist");
    std::fs::create_dir_all(&dist).expect("dist");
    std::fs::write(dist.join("index.html"), "<!doctype html>").expect("shell");
    std::fs::write(dist.join("sw.js"), "// shell").expect("shell");
    let shell = tree(&dist);
    new_build(&csv, &dist, &tmp.path().join("cache"))
        .run()
        .run
        .expect_code(2);
    assert_eq!(tree(&dist), shell);
    new_build(&csv, &dist.join("search"), &tmp.path().join("cache"))
        .run()
        .expect(0);
    let after = tree(&dist);
    assert!(
        shell.iter().all(|(f, bytes)| after.get(f) == Some(bytes)),
        "the shell is intact beside dist/search"
    );
    assert_complete_site(&dist.join("search"));

    // A site of ours with a file someone put in it is not replaced either.
    std::fs::write(dist.join("search/README.txt"), "mine").expect("extra file");
    let built = new_build(&csv, &dist.join("search"), &tmp.path().join("cache")).run();
    built.run.expect_code(2);
    assert!(
        built.run.stderr.contains("README.txt"),
        "{}",
        built.run.stderr
    );
    assert!(dist.join("search/README.txt").exists());
}

#[test]
fn special_files_and_truncated_jpegs_cost_one_row_each() {
    let tmp = tempdir();
    let shop = tmp.path().join("shop");
    images(&shop);
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        shop.join("pipe.png"),
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
    )
    .expect("mkfifo");
    std::os::unix::fs::symlink("/dev/zero", shop.join("zero.png")).expect("symlink");
    let jpeg = std::fs::read(shop.join("c.jpg")).expect("jpeg");
    std::fs::write(shop.join("cut.jpg"), &jpeg[..jpeg.len() * 2 / 3]).expect("cut");
    let csv = shop.join("products.csv");
    std::fs::write(
        &csv,
        "id,image\na,a.png\npipe,pipe.png\nzero,/dev/zero\nlinked,zero.png\ncut,cut.jpg\nc,c.jpg\n",
    )
    .expect("csv");
    let report = new_build(&csv, &tmp.path().join("site"), &tmp.path().join("cache"))
        .args(["--allow-outside-paths"])
        .run()
        .expect(3);
    assert_eq!(report.indexed, 2);
    let reason = |id: &str| {
        report
            .skipped
            .iter()
            .find(|s| s.id.as_deref() == Some(id))
            .map(|s| s.reason.clone())
            .unwrap_or_else(|| panic!("{id} is not skipped: {report:?}"))
    };
    assert!(
        reason("pipe").contains("named pipe (FIFO), not an image file"),
        "{}",
        reason("pipe")
    );
    assert!(
        reason("zero").contains("a device, not an image file"),
        "{}",
        reason("zero")
    );
    assert!(
        reason("linked").contains("a device, not an image file"),
        "{}",
        reason("linked")
    );
    assert!(reason("cut").contains("truncated"), "{}", reason("cut"));
}

#[test]
fn local_paths_stay_inside_the_catalogue_folder_unless_allowed() {
    let tmp = tempdir();
    let shop = tmp.path().join("shop");
    images(&shop);
    let outside = tmp.path().join("private");
    images(&outside);
    std::os::unix::fs::symlink(outside.join("b.png"), shop.join("link.png")).expect("symlink");
    let csv = shop.join("products.csv");
    std::fs::write(
        &csv,
        format!(
            "id,image\nin,a.png\nup,../private/a.png\nabs,{}\nurl,file://{}\nlink,link.png\n",
            outside.join("b.png").display(),
            outside.join("c.jpg").display()
        ),
    )
    .expect("csv");
    let report = new_build(&csv, &tmp.path().join("site"), &tmp.path().join("cache"))
        .run()
        .expect(3);
    assert_eq!(report.indexed, 1);
    let skipped: Vec<&str> = report
        .skipped
        .iter()
        .filter_map(|s| s.id.as_deref())
        .collect();
    assert_eq!(skipped, ["up", "abs", "url", "link"]);
    assert!(
        report
            .skipped
            .iter()
            .all(|s| s.reason.contains("outside the catalogue's folder")
                && s.reason.contains("--allow-outside-paths")),
        "{report:?}"
    );
    // A folder catalogue does not follow a link out of itself either.
    let folder = new_build(
        &shop,
        &tmp.path().join("folder-site"),
        &tmp.path().join("cache"),
    )
    .run()
    .expect(3);
    assert!(
        folder
            .skipped
            .iter()
            .any(|s| s.id.as_deref() == Some("link.png"))
    );

    let allowed = new_build(&csv, &tmp.path().join("site2"), &tmp.path().join("cache"))
        .args(["--allow-outside-paths"])
        .run()
        .expect(0);
    assert_eq!(allowed.indexed, 5);
}

#[test]
fn verify_never_reads_a_path_that_leaves_the_site() {
    let tmp = tempdir();
    let shop = tmp.path().join("shop");
    images(&shop);
    std::fs::write(shop.join("products.csv"), "id,image\na,a.png\n").expect("csv");
    let out = tmp.path().join("site");
    new_build(&shop.join("products.csv"), &out, &tmp.path().join("cache"))
        .run()
        .expect(0);
    let path = out.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("manifest")).expect("json");
    manifest["files"]["vectors"]["path"] = "../shop/products.csv".into();
    std::fs::write(&path, serde_json::to_vec(&manifest).expect("json")).expect("write");
    let run = verify(&out);
    run.expect_code(1);
    assert!(
        run.stderr.contains("../shop/products.csv") && run.stderr.contains("content-addressed"),
        "{}",
        run.stderr
    );
}

#[test]
fn shopify_drafts_and_internal_columns_are_not_published() {
    let tmp = tempdir();
    let shop = tmp.path().join("shop");
    images(&shop);
    let csv = shop.join("products_export.csv");
    std::fs::write(
        &csv,
        "Handle,Title,Body (HTML),Vendor,Published,Variant Inventory Qty,Variant Price,Image Src,\
         Cost per item,Status\n\
         mug,Mug,<p>Secret supplier: Acme</p>,Acme,true,40,9.00,a.png,2.10,active\n\
         teapot,Teapot,<p>Launching soon</p>,Acme,true,0,30.00,b.png,11.00,draft\n\
         cat,Cat photo,,Acme,FALSE,5,4.00,c.jpg,1.00,active\n",
    )
    .expect("csv");
    let out = tmp.path().join("site");
    let report = new_build(&csv, &out, &tmp.path().join("cache"))
        .run()
        .expect(0);
    assert_eq!((report.rows, report.indexed), (3, 1));
    let excluded: Vec<&str> = report
        .excluded
        .iter()
        .filter_map(|e| e.id.as_deref())
        .collect();
    assert_eq!(excluded, ["teapot", "cat"]);
    assert_eq!(
        report.dropped_columns,
        ["Cost per item", "Variant Inventory Qty", "description"]
    );
    // The vendor is the brand: searchable (a filter needs two values; one product has one).
    assert_eq!(report.searchable_columns, ["Vendor"]);
    let site = assert_complete_site(&out);
    let items = site.items();
    assert_eq!(items.len(), 1);
    // What describes the items: the manifest, the item table and the metadata chunks.
    let files = &site.manifest.files;
    let mut text = String::from_utf8_lossy(&site.read("manifest.json")).into_owned();
    let table = site.chunk_table();
    for f in std::iter::once(&files.items).chain(table.metadata_files()) {
        text += &String::from_utf8_lossy(&site.read(&f.path));
    }
    for secret in [
        "2.10",
        "Cost per item",
        "Inventory",
        "Secret supplier",
        "teapot",
        "Launching",
    ] {
        assert!(!text.contains(secret), "{secret:?} is published");
    }

    // The maintainer publishes the vendor on purpose.
    let kept = new_build(&csv, &tmp.path().join("site2"), &tmp.path().join("cache"))
        .args(["--keep-column", "vendor"])
        .run()
        .expect(0);
    assert!(!kept.dropped_columns.contains(&"Vendor".to_string()));
    let items = SiteDir::open(&tmp.path().join("site2")).items();
    assert_eq!(items[0].extra["Vendor"], "Acme");
}

#[test]
fn a_damaged_embedding_cache_record_is_embedded_again_and_reported() {
    let tmp = tempdir();
    let shop = tmp.path().join("shop");
    images(&shop);
    let csv = shop.join("products.csv");
    std::fs::write(&csv, "id,image\na,a.png\nb,b.png\n").expect("csv");
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("site");
    new_build(&csv, &out, &cache).run().expect(0);
    let items = SiteDir::open(&out).items();
    let file = std::fs::read_dir(cache.join("embeddings"))
        .expect("cache")
        .flatten()
        .next()
        .expect("one cache file")
        .path();
    let mut bytes = std::fs::read(&file).expect("cache file");
    bytes[12 + 32 + 3] ^= 0x40; // a bit of the first record's vector
    std::fs::write(&file, bytes).expect("damage");
    let report = new_build(&csv, &out, &cache).run().expect(0);
    assert_eq!(
        (report.damaged_cache_records, report.embedded, report.reused),
        (1, 1, 1)
    );
    assert_complete_site(&out);
    assert_eq!(SiteDir::open(&out).items(), items);
}

#[test]
fn decoding_stays_within_its_memory_budget_and_absurd_limits_are_usage_errors() {
    let tmp = tempdir();
    let shop = tmp.path().join("shop");
    images(&shop);
    // 3000 x 3000 RGBA: 36 MB decoded, about 108 MB with the thumbnail's and the model's copies.
    let big = image::RgbaImage::from_pixel(3000, 3000, image::Rgba([200, 30, 30, 255]));
    big.save(shop.join("big.png")).expect("big png");
    let csv = shop.join("products.csv");
    std::fs::write(&csv, "id,image\na,a.png\nbig,big.png\n").expect("csv");
    let report = new_build(&csv, &tmp.path().join("site"), &tmp.path().join("cache"))
        .args(["--decode-memory", "64"])
        .run()
        .expect(3);
    assert_eq!(report.indexed, 1);
    assert!(
        report.skipped[0].reason.contains("3000x3000")
            && report.skipped[0].reason.contains("--decode-memory 64 MB"),
        "{:?}",
        report.skipped
    );
    for args in [
        ["--max-pixels", "100000000000"],
        ["--batch-size", "1000000"],
        ["--decode-memory", "1"],
        ["--thumb-size", "0"],
    ] {
        let run = new_build(&csv, &tmp.path().join("site"), &tmp.path().join("cache"))
            .args(args)
            .run()
            .run;
        run.expect_code(2);
        assert!(run.stderr.contains(args[0]), "{}", run.stderr);
    }
    let run = run(["build", "--catalogue", "x.csv", "--out", "y", "--jobs", "0"]);
    run.expect_code(2);
}
