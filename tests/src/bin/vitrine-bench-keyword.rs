//! The keyword benchmark: how soon a shopper gets results and what a keyword query costs.
//! 1. A 100k-item shop (the demo's 325 images under 100,000 SKUs with brands, colours and sizes;
//!    tiny model, as only the keyword index matters): keyword query time through `vitrine-search`
//!    (what the worker runs, here natively) and the bytes a cold query fetches beyond the first load.
//! 2. The demo (full-size random ViT-B/32, q8e4a7 encoder) served gzipped on a link throttled by
//!    Chromium to 20 Mbit/s and 50 ms RTT: time from navigation to the first keyword results, cold.
//!
//! `./dev bench` runs it (`--scale-only`: part 1 alone); see README "Benchmarks".

#![allow(clippy::print_stdout)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use vitrine_index::{MANIFEST, Manifest, SearchMode};
use vitrine_search::{Engine, Query, Selection, keyword_text};
use vitrine_testkit::cli::Cli;
use vitrine_testkit::server::{TestServer, file_reply};
use vitrine_testkit::webdriver::Browser;

const ITEMS: usize = 100_000;
const BRANDS: [&str; 12] = [
    "Acme",
    "Nordlicht",
    "Kawaii Co",
    "Verde",
    "Orchard",
    "Toolbox",
    "Hatter",
    "Playtime",
    "Maison Rouge",
    "Trail",
    "Pack It",
    "Sticker Co",
];
const COLOURS: [&str; 8] = [
    "red", "blue", "green", "black", "white", "pink", "yellow", "grey",
];
const SIZES: [&str; 5] = ["small", "medium", "large", "XL", "mini"];

fn read(dir: &Path, rel: &str) -> Result<Vec<u8>> {
    std::fs::read(dir.join(rel)).with_context(|| format!("cannot read {rel}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Writes the 100k catalogue (JSON Lines, images relative to the demo) and returns its path.
fn big_catalogue(root: &Path, dir: &Path) -> Result<std::path::PathBuf> {
    let demo = std::fs::read_to_string(root.join("demo/catalogue.jsonl"))?;
    let rows: Vec<serde_json::Value> = demo
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let mut out = String::new();
    for i in 0..ITEMS {
        let r = &rows[i % rows.len()];
        let image = root
            .join("demo")
            .join(r["image"].as_str().unwrap_or_default());
        let row = json!({
            "id": format!("SKU-{i:06}"),
            "title": format!("{} {} {}", r["title"].as_str().unwrap_or_default(),
                COLOURS[i / rows.len() % COLOURS.len()], SIZES[i / 7 % SIZES.len()]),
            "brand": BRANDS[i % BRANDS.len()],
            "keywords": r["keywords"],
            "price": format!("{}.{:02} EUR", 1 + i % 200, i % 100),
            "image": image.display().to_string(),
        });
        out += &row.to_string();
        out.push('\n');
    }
    let path = dir.join("catalogue.jsonl");
    std::fs::write(&path, out)?;
    Ok(path)
}

fn keyword_at_scale(root: &Path, cli: &Cli, tmp: &Path) -> Result<()> {
    let catalogue = big_catalogue(root, tmp)?;
    let site = tmp.join("big/search");
    let t = Instant::now();
    let built = cli
        .build(&catalogue, &site, &tmp.join("cache"))
        .default_min_recall()
        .args([
            "--allow-outside-paths",
            "--thumb-size",
            "32",
            "--min-recall",
            "0",
        ])
        .args(["--min-encoder-recall", "0", "--min-encoder-cosine", "0"])
        .run();
    built.run.expect_code(0);
    println!(
        "100k items built in {:.0} s (tiny model)",
        t.elapsed().as_secs_f64()
    );
    let manifest = Manifest::from_json(&read(&site, MANIFEST)?)?;
    let files = manifest.files.clone();
    let table = vitrine_index::chunks::ChunkTable::from_bytes(
        &read(&site, &files.chunks.path)?,
        manifest.count,
    )?;
    let shards: Vec<u64> = files.keywords.iter().map(|s| s.file.size).collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &read(&site, &files.items.path)?)?;
    println!(
        "keyword index: {} shards, {:.1} MB in all, largest {:.1} KB; item table {:.2} MB \
         ({:.2} MB gzipped); manifest {:.1} KB",
        shards.len(),
        shards.iter().sum::<u64>() as f64 / 1e6,
        *shards.iter().max().unwrap_or(&0) as f64 / 1e3,
        files.items.size as f64 / 1e6,
        gz.finish()?.len() as f64 / 1e6,
        read(&site, MANIFEST)?.len() as f64 / 1e3
    );
    println!(
        "{:<24} {:>9} {:>10} {:>11} {:>9}",
        "query", "results", "shards KB", "metadata KB", "ms"
    );
    for query in [
        "SKU-004711",
        "nordlicht",
        "red apple",
        "guitar blue large",
        "fl",
        "maison rouge chair",
    ] {
        let mut engine = Engine::open(manifest.clone(), &read(&site, &files.items.path)?)?;
        let mut shard_bytes = 0;
        let missing: Vec<(usize, vitrine_index::FileRef)> = engine
            .keywords()
            .missing(&keyword_text(query))
            .into_iter()
            .map(|(n, r)| (n, r.clone()))
            .collect();
        for (n, r) in missing {
            shard_bytes += r.size;
            engine.keywords_mut().insert(n, &read(&site, &r.path)?)?;
        }
        let search = || {
            engine.search(
                &Query::Text(query.into()),
                SearchMode::Keyword,
                &Selection::default(),
                48,
            )
        };
        let outcome = search()?;
        let times: Vec<f64> = (0..30)
            .map(|_| {
                let t = Instant::now();
                search().map(|_| t.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<Result<_, _>>()?;
        let chunks: BTreeSet<usize> = outcome
            .hits
            .iter()
            .filter_map(|h| table.chunk_of(h.index).map(|(n, _)| n))
            .collect();
        let chunk_bytes: u64 = chunks.iter().map(|&n| table.chunks[n].metadata.size).sum();
        println!(
            "{query:<24} {:>9} {:>10.1} {:>11.1} {:>9.2}",
            outcome.counts.total,
            shard_bytes as f64 / 1e3,
            chunk_bytes as f64 / 1e3,
            median(times)
        );
    }
    Ok(())
}

/// Milliseconds from navigation to the first result card, cold (fresh profile), throttled.
fn cold_first_results(url: &str) -> Result<f64> {
    let browser = Browser::start()?;
    browser.cdp("Network.enable", json!({}))?;
    browser.cdp(
        "Network.emulateNetworkConditions",
        json!({"offline": false, "latency": 50, "downloadThroughput": 20e6 / 8.0,
               "uploadThroughput": 5e6 / 8.0}),
    )?;
    browser.on_new_document(
        "new MutationObserver((_, o) => {\
           if (document.querySelector('[data-testid=result]')) {\
             window.__firstResult = performance.now(); o.disconnect(); }\
         }).observe(document, {subtree: true, childList: true});",
    )?;
    browser.goto(url)?;
    let ms = browser.wait_until("the first results", Duration::from_secs(120), || {
        Ok(browser
            .execute("return window.__firstResult || null;", vec![])?
            .as_f64())
    })?;
    let state = browser.find("[data-testid=status]")?.attr("data-state")?;
    if state.as_deref() == Some("ready") {
        bail!("the encoder was already loaded: this measures nothing");
    }
    Ok(ms)
}

fn demo_cold_load(root: &Path, cli: &Cli, tmp: &Path) -> Result<()> {
    let ckpt = vitrine_testkit::random_vit_b_32()?;
    let site = tmp.join("demo");
    vitrine_testkit::copy_dir(&vitrine_testkit::web::app_shell()?, &site)?;
    let built = cli
        .build(
            &root.join("demo/catalogue.jsonl"),
            &site.join("search"),
            &tmp.join("cache"),
        )
        .model(&ckpt)
        .default_min_recall()
        .args([
            "--text-encoder",
            "q8e4",
            "--min-encoder-recall",
            "0",
            "--min-encoder-cosine",
            "0",
        ])
        .args(["--min-recall", "0"])
        .run();
    built.run.expect_code(0);
    let server = {
        let site = site.clone();
        TestServer::start(move |hit, _| file_reply(&site, hit).gzip_for(hit))?
    };
    let first_load: u64 = [
        "index.html",
        "boot.js",
        "worker-boot.js",
        "vitrine-worker-relaxed_bg.wasm",
    ]
    .iter()
    .map(|f| {
        std::fs::metadata(site.join(f))
            .map(|m| m.len())
            .unwrap_or(0)
    })
    .sum();
    println!(
        "\ndemo, cold, 20 Mbit/s and 50 ms RTT, gzip ({:.1} MB of shell and worker uncompressed):",
        first_load as f64 / 1e6
    );
    for query in ["apple", "guitar", "red car"] {
        let times: Vec<f64> = (0..3)
            .map(|_| cold_first_results(&format!("{}?q={query}", server.url())))
            .collect::<Result<_>>()?;
        println!(
            "  ?q={query:<10} first keyword results after {:.0} ms (median of 3)",
            median(times)
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let root = vitrine_testkit::repo_root();
    let cli = Cli::locate()?;
    let tmp = vitrine_testkit::tempdir();
    keyword_at_scale(&root, &cli, tmp.path())?;
    // `--scale-only`: the 100k shop alone (no full-size model, no browser).
    if std::env::args().any(|a| a == "--scale-only") {
        return Ok(());
    }
    demo_cold_load(&root, &cli, tmp.path())
}
