//! Rebuilds: equal inputs give byte-identical sites whatever the cache or thread count; a
//! rebuild re-embeds only changed images and keeps the names of unchanged files (so browsers and
//! CDNs keep their copies); a build killed at any moment leaves the previous site exactly as it
//! was, and the next build resumes from what the killed ones put in the cache.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{
    Build, CATALOGUE_IMAGES, EMPTY_CACHE, RECORD, SiteDir, assert_complete_site, catalogues,
    copy_dir, embedding_cache_size, folder_catalogue, new_build, png, tempdir, tree,
};

#[test]
fn two_builds_with_separate_fresh_caches_write_byte_identical_sites() {
    let tmp = tempdir();
    let feed = catalogues().join("merchant-center.tsv");
    let build = |name: &str, jobs: &str| {
        let out = tmp.path().join(name);
        new_build(&feed, &out, &tmp.path().join(format!("{name}-cache")))
            .args(["--facet", "kind=food,clothing,tool,animal", "--jobs", jobs])
            .run()
            .expect(0);
        tree(&out)
    };
    // Different thread counts finish images in different orders; the output must not care.
    let one = build("one", "1");
    let two = build("two", "3");
    assert_eq!(
        one.keys().collect::<Vec<_>>(),
        two.keys().collect::<Vec<_>>(),
        "the same file names"
    );
    for (path, bytes) in &one {
        assert!(two[path] == *bytes, "{path} differs between the two builds");
    }
    // manifest, vectors (root, its one list and that list's group), item table, chunk table,
    // three encoder files, the keyword shards, and one metadata chunk with its thumbnail pack.
    let shards = one.keys().filter(|k| k.starts_with("keywords/")).count();
    assert!(shards >= 1, "{:?}", one.keys());
    assert_eq!(one.len(), 11 + shards);
}

#[test]
fn changing_one_image_re_embeds_only_it_and_keeps_the_other_file_names() {
    // The tiny model's 4-bit layouts sit right at the encoder gate's recall threshold, so a changed
    // image may move the choice between them; q8e8 passes with a margin (the gate's own tests
    // cover the choice).
    const STABLE_ENCODER: [&str; 2] = ["--text-encoder", "q8e8"];
    let tmp = tempdir();
    let shop = tmp.path().join("shop");
    copy_dir(&folder_catalogue(), &shop);
    let out = tmp.path().join("site");
    let cache = tmp.path().join("cache");

    let first = new_build(&shop, &out, &cache)
        .args(STABLE_ENCODER)
        .run()
        .expect(0);
    assert_eq!((first.embedded, first.reused), (CATALOGUE_IMAGES, 0));
    let a = SiteDir::open(&out);
    let a_items = a.items_by_id();
    let tree_a = tree(&out);

    // Nothing changed: everything comes from the cache, the vision tower is never loaded, and
    // the site is the same to the byte.
    let again = new_build(&shop, &out, &cache)
        .args(STABLE_ENCODER)
        .verbose()
        .run();
    again.run.expect_code(0);
    let report = again.report.expect("report");
    assert_eq!((report.embedded, report.reused), (0, CATALOGUE_IMAGES));
    assert!(
        !again.run.stderr.contains("loading the image tower"),
        "{}",
        again.run.stderr
    );
    assert_eq!(tree(&out), tree_a);

    // One image changes content (mirrored), under the same name.
    let changed = "photos/horse.png";
    let horse = image::open(shop.join(changed)).expect("decode");
    std::fs::write(shop.join(changed), png(&horse.fliph())).expect("write");
    let report = new_build(&shop, &out, &cache)
        .args(STABLE_ENCODER)
        .run()
        .expect(0);
    assert_eq!(report.embedded, 1);
    assert_eq!(report.reused, CATALOGUE_IMAGES - 1);
    assert!(report.skipped.is_empty());
    let b = assert_complete_site(&out);

    let (fa, fb) = (&a.manifest.files, &b.manifest.files);
    assert_eq!(fa.encoder, fb.encoder, "the encoder files keep their names");
    assert_eq!(fa.items, fb.items, "same ids, same item table");
    assert_ne!(fa.vectors.path, fb.vectors.path, "the vectors changed");
    assert_ne!(a.manifest.build_id, b.manifest.build_id);
    // Thumbnails by hash: one changed, the others are the same images.
    let thumbs =
        |items: &std::collections::BTreeMap<String, vitrine_index::Item>| -> BTreeSet<String> {
            items
                .values()
                .filter_map(|i| i.thumbnail.as_ref().map(|t| t.sha256.clone()))
                .collect()
        };
    let b_items = b.items_by_id();
    let (ta, tb) = (thumbs(&a_items), thumbs(&b_items));
    assert_eq!(ta.intersection(&tb).count(), CATALOGUE_IMAGES - 1);
    let horse_a = a_items[changed].thumbnail.clone().expect("thumb").sha256;
    let horse_b = b_items[changed].thumbnail.clone().expect("thumb").sha256;
    assert_eq!(ta.difference(&tb).collect::<Vec<_>>(), [&horse_a]);
    assert_eq!(tb.difference(&ta).collect::<Vec<_>>(), [&horse_b]);
    // Every unchanged file is byte-for-byte the same under the same name.
    let tree_b = tree(&out);
    let kept = tree_a
        .iter()
        .filter(|(path, bytes)| tree_b.get(*path) == Some(bytes))
        .count();
    // All but the manifest, the vectors (root, list, and the group holding the list's centroid:
    // the mean of every item), the chunk table, and the metadata chunk and thumbnail pack
    // holding the horse.
    assert_eq!(kept, tree_a.len() - 7);
}

/// What became of a build started as a child process.
enum Ended {
    /// Killed (SIGKILL) while still running, after this long.
    Killed(Duration),
    /// It finished on its own first.
    Finished(Option<i32>),
}

/// Runs `build` and kills it as soon as `now` says so (it gets the time since the start).
fn kill_when(build: &Build, mut now: impl FnMut(Duration) -> bool) -> Ended {
    let mut child: Child = build
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn build-index");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Ended::Finished(status.code());
        }
        if now(start.elapsed()) {
            child.kill().expect("kill");
            child.wait().expect("wait");
            return Ended::Killed(start.elapsed());
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the build hangs"
        );
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Relative paths of the files under `dir` (without reading them).
fn file_names(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&entry.path(), &format!("{name}/"), out);
            } else {
                out.push(name);
            }
        }
    }
    let mut names = Vec::new();
    walk(dir, "", &mut names);
    names.sort();
    names
}

/// Names in `dir` starting with `.site.` (staging or swap leftovers).
fn hidden_siblings(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".site."))
        .collect()
}

#[test]
fn a_killed_build_leaves_the_previous_site_intact_and_the_next_one_resumes() {
    let tmp = tempdir();
    let shop = tmp.path().join("shop");
    copy_dir(&folder_catalogue(), &shop);
    let out = tmp.path().join("site");
    new_build(&shop, &out, &tmp.path().join("cache-a"))
        .run()
        .expect(0);
    let site_a: BTreeMap<String, Vec<u8>> = tree(&out);
    assert_complete_site(&out);

    // The shop adds mirrored versions of every image: twice the catalogue.
    for rel in common::tree(&folder_catalogue()).into_keys() {
        let img = image::open(folder_catalogue().join(&rel)).expect("decode");
        let target = shop.join("mirrored").join(&rel).with_extension("png");
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(&target, png(&img.fliph())).expect("write");
    }
    let total = 2 * CATALOGUE_IMAGES;

    // The next build runs with a fresh cache and is killed again and again.
    let cache = tmp.path().join("cache-b");
    let killed = new_build(&shop, &out, &cache);
    let still_a = |when: &str| {
        eprintln!(
            "killed {when}; embedding cache: {} bytes",
            embedding_cache_size(&cache)
        );
        assert!(
            tree(&out) == site_a,
            "killed {when}: the site is exactly the previous one"
        );
        common::verify(&out).expect_code(0);
    };
    for (when, after) in [
        ("while starting", Duration::from_millis(50)),
        ("after 300 ms", Duration::from_millis(300)),
    ] {
        match kill_when(&killed, |t| t >= after) {
            Ended::Killed(t) => still_a(&format!("{when} (at {t:?})")),
            Ended::Finished(code) => panic!(
                "the build finished ({code:?}) before it could be killed {when}; this test \
                 assumes a debug build of {total} images takes longer"
            ),
        }
    }
    // Killed once half the images are embedded and cached, then right after the next batch.
    let half = EMPTY_CACHE + RECORD * total as u64 / 2;
    match kill_when(&killed, |_| embedding_cache_size(&cache) >= half) {
        Ended::Killed(t) => still_a(&format!("with half the images cached (at {t:?})")),
        Ended::Finished(code) => panic!("finished ({code:?}) before half the images were cached"),
    }
    let before = embedding_cache_size(&cache);
    assert!(before >= half, "the killed builds filled the cache");
    match kill_when(&killed, |_| embedding_cache_size(&cache) > before) {
        Ended::Killed(t) => still_a(&format!("after one more batch was cached (at {t:?})")),
        Ended::Finished(code) => panic!("finished ({code:?}) before caching a batch"),
    }
    // Killed while writing the new site: the swap is atomic, so `--out` is either still the
    // previous site or (if the kill landed after the swap) the complete new one, never a mix.
    // (Watching `--out` itself too catches a writer that would not stage at all.)
    let names_a: Vec<String> = site_a.keys().cloned().collect();
    let killed_while_writing = kill_when(&killed, |_| {
        !hidden_siblings(tmp.path()).is_empty() || file_names(&out) != names_a
    });
    let replaced = tree(&out) != site_a;
    eprintln!(
        "killed while writing: {}; the site was {}",
        match killed_while_writing {
            Ended::Killed(t) => format!("killed at {t:?}"),
            Ended::Finished(_) => "finished first".into(),
        },
        if replaced { "replaced" } else { "kept" }
    );
    if replaced {
        let site = assert_complete_site(&out);
        assert_eq!(site.manifest.count as usize, total);
    } else {
        still_a("while writing the site");
    }
    if let Ended::Finished(code) = killed_while_writing {
        assert_eq!(code, Some(0));
        assert!(replaced, "a finished build replaced the site");
    }

    // Finally the build runs to the end, reusing what the killed runs embedded.
    let report = killed.run().expect(0);
    eprintln!("final build: {report:?}");
    assert_eq!(report.rows, total);
    assert_eq!(report.indexed, total);
    assert!(report.reused > 0, "resumed from the cache: {report:?}");
    assert_eq!(report.embedded + report.reused, total);
    let site = assert_complete_site(&out);
    assert_eq!(site.manifest.count as usize, total);
    assert!(
        embedding_cache_size(&cache) <= EMPTY_CACHE + RECORD * total as u64,
        "no image was embedded twice"
    );
    // The resumed build wrote exactly what a build from scratch writes.
    let clean = tmp.path().join("clean");
    new_build(&shop, &clean, &tmp.path().join("cache-c"))
        .run()
        .expect(0);
    assert!(
        tree(&out) == tree(&clean),
        "resumed and clean builds are identical"
    );
    assert!(
        hidden_siblings(tmp.path()).is_empty(),
        "leftovers of killed builds are cleaned up: {:?}",
        hidden_siblings(tmp.path())
    );
}

#[test]
fn a_folder_catalogue_holding_its_own_site_and_cache_does_not_index_them() {
    let tmp = tempdir();
    let shop = tmp.path().join("shop");
    copy_dir(&folder_catalogue(), &shop);
    let (out, cache) = (shop.join("search"), shop.join("cache"));
    let first = new_build(&shop, &out, &cache).run().expect(0);
    let site = tree(&out);
    // The second run finds the thumbnails and cached files in the folder, and leaves them out.
    let second = new_build(&shop, &out, &cache).run().expect(0);
    assert_eq!(
        (first.rows, second.rows),
        (CATALOGUE_IMAGES, CATALOGUE_IMAGES)
    );
    assert_eq!(second.reused, CATALOGUE_IMAGES);
    assert!(tree(&out) == site, "the rebuild is the same site");
}

#[test]
fn rows_sharing_an_image_embed_it_once_and_all_get_its_vector() {
    let tmp = tempdir();
    let folder = folder_catalogue();
    let (apple, teapot) = (
        folder.join("food/fruit/apple.png"),
        folder.join("emoji/teapot.png"),
    );
    // A feed's variants: four rows, two images.
    let rows = [
        ("red-s", &apple),
        ("red-m", &apple),
        ("pot", &teapot),
        ("red-l", &apple),
    ];
    let jsonl: String = rows
        .iter()
        .map(|(id, image)| {
            format!(
                "{}\n",
                serde_json::json!({"id": id, "title": id, "image": image.to_str().expect("utf-8")})
            )
        })
        .collect();
    let feed = tmp.path().join("variants.jsonl");
    std::fs::write(&feed, jsonl).expect("write feed");
    let out = tmp.path().join("site");
    let report = new_build(&feed, &out, &tmp.path().join("cache"))
        .args(["--allow-outside-paths"])
        .run()
        .expect(0);
    assert_eq!(
        (report.indexed, report.embedded, report.reused),
        (4, 2, 2),
        "each image is embedded once"
    );
    let site = assert_complete_site(&out);
    // One list (a small catalogue): its codes follow a 16-byte header, item-major.
    let list = site.read(&site.manifest.files.lists[0].path);
    let dim = site.manifest.model.dim as usize;
    let row = |i: usize| list[16 + i * dim..16 + (i + 1) * dim].to_vec();
    assert!(
        row(0) == row(1) && row(1) == row(3),
        "the variants share one vector"
    );
    assert!(row(0) != row(2));
}
