//! Overlapping builds (a slow cron run and the next one): they take turns on the output folder
//! instead of removing each other's staging files, and the one that waited reuses every embedding
//! the first one cached, so nothing is embedded twice.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use common::{
    CATALOGUE_IMAGES, EMPTY_CACHE, RECORD, assert_complete_site, embedding_cache_size,
    folder_catalogue, new_build, tempdir, tree,
};

fn finish(child: Child) {
    let out = child.wait_with_output().expect("wait for build-index");
    assert!(
        out.status.success(),
        "build-index failed ({:?}):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_build_waits_while_another_holds_the_output_folder() {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    let build = new_build(&folder_catalogue(), &out, &tmp.path().join("cache")).verbose();

    // Stand in for a running build: hold the folder that receives `--out`.
    let held = File::open(tmp.path()).expect("open the output's parent");
    held.lock().expect("lock it");
    let mut child = build
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn build-index");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    loop {
        line.clear();
        let n = stderr.read_line(&mut line).expect("read stderr");
        assert!(n > 0, "build-index ended without saying it waits");
        if line.contains("waiting for it to finish") {
            break;
        }
    }
    assert!(
        line.contains(&tmp.path().display().to_string()),
        "the message names the folder: {line}"
    );
    assert!(
        child.try_wait().expect("try_wait").is_none() && !out.exists(),
        "nothing is written while the other build holds the folder"
    );
    drop(held);
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    finish(child);
    assert_eq!(
        assert_complete_site(&out).manifest.count as usize,
        CATALOGUE_IMAGES
    );
}

#[test]
fn two_overlapping_builds_of_one_site_both_succeed_and_embed_each_image_once() {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    let cache = tmp.path().join("cache");
    let build = new_build(&folder_catalogue(), &out, &cache);
    let spawn = || {
        build
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn build-index")
    };
    let (first, second) = (spawn(), spawn());
    finish(first);
    finish(second);

    let site = assert_complete_site(&out);
    assert_eq!(site.manifest.count as usize, CATALOGUE_IMAGES);
    common::verify(&out).expect_code(0);
    assert_eq!(
        embedding_cache_size(&cache),
        EMPTY_CACHE + RECORD * CATALOGUE_IMAGES as u64,
        "the build that waited reused every embedding of the first"
    );
    let clean = tmp.path().join("clean");
    new_build(&folder_catalogue(), &clean, &tmp.path().join("cache-c"))
        .run()
        .expect(0);
    assert!(tree(&out) == tree(&clean), "the site is a normal build's");
}
