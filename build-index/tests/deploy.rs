//! `--host-headers`: the host's cache rules, written into the site's root beside the index,
//! cover every file with the right `Cache-Control` (the manifest revalidated, every file named
//! by content cached for ever) without overlapping; the S3 upload script is valid shell that
//! uploads the fixed names last; a file of the maintainer's is never replaced.

mod common;

use std::path::Path;

use common::{folder_catalogue, new_build, tempdir, tree};
use vitrine_protocol::{CACHE_IMMUTABLE, CACHE_REVALIDATE};

/// `(pattern, cache-control)` of a `_headers` file.
fn rules(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pattern = None;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        match line.strip_prefix("  Cache-Control: ") {
            Some(value) => out.push((pattern.clone().expect("a rule's path"), value.to_string())),
            None => pattern = Some(line.to_string()),
        }
    }
    out
}

fn matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

fn build(site: &Path, host: &str) -> common::Built {
    let out = site.join("search");
    new_build(&folder_catalogue(), &out, &site.join("cache"))
        .args(["--host-headers", host])
        .run()
}

#[test]
fn netlify_and_cloudflare_headers_cover_every_file_once_with_its_cache_policy() {
    let tmp = tempdir();
    let site = tmp.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), "<!doctype html>").unwrap();
    for host in ["netlify", "cloudflare"] {
        build(&site, host).expect(0);
        let text = std::fs::read_to_string(site.join("_headers")).unwrap();
        assert!(
            text.starts_with("# Written by build-index --host-headers"),
            "{text}"
        );
        let rules = rules(&text);
        assert!(
            rules.len() <= 100,
            "Cloudflare reads at most 100 rules: {}",
            rules.len()
        );
        for path in tree(&site.join("search")).keys() {
            let path = format!("/search/{path}");
            let hits: Vec<&(String, String)> =
                rules.iter().filter(|(p, _)| matches(p, &path)).collect();
            assert_eq!(hits.len(), 1, "{host}: {path} matches {hits:?}");
            let want = if path.ends_with("/manifest.json") {
                CACHE_REVALIDATE
            } else {
                CACHE_IMMUTABLE
            };
            assert_eq!(hits[0].1, want, "{host}: {path}");
        }
        for fixed in [
            "/",
            "/index.html",
            "/sw.js",
            "/worker-boot.js",
            "/vitrine-worker_bg.wasm",
        ] {
            let hit = rules.iter().find(|(p, _)| p == fixed);
            assert_eq!(
                hit.map(|h| h.1.as_str()),
                Some(CACHE_REVALIDATE),
                "{host}: {fixed}"
            );
        }
    }
}

#[test]
fn the_s3_script_is_valid_shell_and_uploads_the_fixed_names_last() {
    let tmp = tempdir();
    let site = tmp.path().join("site");
    build(&site, "s3").expect(0);
    let script = site.join("s3-upload.sh");
    let text = std::fs::read_to_string(&script).unwrap();
    let status = std::process::Command::new("sh")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success(), "sh -n {}: {text}", script.display());
    let thumbs = text.find("sync_folder 'search/thumbs'").expect(&text);
    let manifest = text
        .find(&format!("put 'search/manifest.json' '{CACHE_REVALIDATE}'"))
        .expect(&text);
    assert!(thumbs < manifest, "{text}");
    assert!(text.contains("create-invalidation"), "{text}");
}

#[test]
fn a_headers_file_of_the_maintainers_is_kept_and_out_must_be_the_index_folder() {
    let tmp = tempdir();
    let site = tmp.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("_headers"), "/*\n  X-Frame-Options: DENY\n").unwrap();
    let refused = build(&site, "netlify");
    refused.run.expect_code(2);
    assert!(
        refused.run.stderr.contains("_headers"),
        "{}",
        refused.run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(site.join("_headers")).unwrap(),
        "/*\n  X-Frame-Options: DENY\n"
    );
    assert!(!site.join("search").exists(), "nothing is built");

    let elsewhere = new_build(
        &folder_catalogue(),
        &tmp.path().join("index"),
        &site.join("cache"),
    )
    .args(["--host-headers", "cloudflare"])
    .run();
    elsewhere.run.expect_code(2);
    assert!(
        elsewhere.run.stderr.contains("search/"),
        "{}",
        elsewhere.run.stderr
    );
}
