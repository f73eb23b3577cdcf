//! The browser benchmark: builds the benchmark page twice with Trunk (`simd128`, and relaxed SIMD),
//! exports the text encoder of a full-size random ViT-B/32 checkpoint (made by `random_checkpoint`
//! if missing) beside each, both as f16 and quantized (`q8e4a7`), serves them, runs them in
//! headless Chromium, profiles a warm encode of each encoder with Chromium's CPU profiler, and
//! prints the figures next to the same encodes run natively and the worker's size. `./dev bench`
//! runs it; see README "Benchmarks".

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use vitrine_clip::{Checkpoint, EmbeddingBits, QuantLayout, QuantTextEncoder, TextEncoder};
use vitrine_testkit::server::TestServer;
use vitrine_testkit::webdriver::Browser;

/// The query both engines encode (12 tokens with start and end), as the page's benchmark does.
const QUERY: &str = "a photo of a fluffy pink cat on a tv";

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Builds `page` into `dist` with Trunk and writes the encoders beside it.
fn build_page(root: &Path, page: &str, dist: &Path, data: &[(&str, &[u8])]) -> Result<()> {
    run(Command::new("trunk")
        .args(["build", page, "--release", "--dist"])
        .arg(dist)
        .current_dir(root))?;
    let dir = dist.join("data");
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in data {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

/// Runs a built page and returns its `#result` JSON.
fn run_page(browser: &Browser, url: &str) -> Result<Value> {
    browser.goto(url)?;
    let result = browser.wait_until(
        "the benchmark page to finish",
        Duration::from_secs(600),
        || {
            let el = browser.find("#result")?;
            Ok(match el.attr("data-done")? {
                Some(_) => Some(el.text()?),
                None => None,
            })
        },
    )?;
    let v: Value = serde_json::from_str(&result)?;
    if let Some(e) = v.get("error") {
        bail!("benchmark page failed: {e}");
    }
    Ok(v)
}

/// A CPU profile of `page?profile=which`: self time by function, largest first.
fn profile(browser: &Browser, url: &str) -> Result<Vec<(String, f64)>> {
    browser.goto("about:blank")?;
    browser.cdp("Profiler.enable", json!({}))?;
    browser.cdp("Profiler.setSamplingInterval", json!({"interval": 200}))?;
    browser.cdp("Profiler.start", json!({}))?;
    run_page(browser, url)?;
    let profile = browser.cdp("Profiler.stop", json!({}))?;
    let nodes = profile["profile"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let samples = profile["profile"]["samples"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let deltas = profile["profile"]["timeDeltas"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: BTreeMap<u64, String> = nodes
        .iter()
        .filter_map(|n| {
            let f = &n["callFrame"];
            let name = f["functionName"].as_str().unwrap_or("");
            let name = if name.is_empty() { "(anonymous)" } else { name };
            Some((n["id"].as_u64()?, name.to_string()))
        })
        .collect();
    let mut by_name: BTreeMap<String, f64> = BTreeMap::new();
    for (s, d) in samples.iter().zip(&deltas) {
        let name = s
            .as_u64()
            .and_then(|id| names.get(&id))
            .cloned()
            .unwrap_or_default();
        *by_name.entry(name).or_default() += d.as_f64().unwrap_or(0.0) / 1000.0;
    }
    let total: f64 = by_name.values().sum();
    let mut top: Vec<(String, f64)> = by_name
        .into_iter()
        .filter(|(n, _)| !matches!(n.as_str(), "(idle)" | "(program)" | "(garbage collector)"))
        .map(|(n, ms)| (n, 100.0 * ms / total.max(1e-9)))
        .collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    top.truncate(8);
    Ok(top)
}

/// Bytes of `path` compressed with `gzip -9`.
fn gzip_size(path: &Path) -> Result<usize> {
    let out = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .context("gzip")?;
    Ok(out.stdout.len())
}

fn main() -> Result<()> {
    let root = vitrine_testkit::repo_root();
    let ckpt_dir = vitrine_testkit::random_vit_b_32()?;
    let ckpt = Checkpoint::open(ckpt_dir.to_str().context("path")?)?;
    let tokenizer = ckpt.tokenizer()?;
    let ids = tokenizer.encode(QUERY)?;
    let f16 = ckpt.export_text_encoder()?;
    let layout = QuantLayout {
        embedding: EmbeddingBits::Four,
        activation_bits: 7,
    };
    let quantized = ckpt.export_quantized_text_encoder(layout, std::slice::from_ref(&ids))?;
    let config = std::fs::read(ckpt_dir.join("config.json"))?;
    let tok = std::fs::read(ckpt_dir.join("tokenizer.json"))?;
    let data: [(&str, &[u8]); 4] = [
        ("config.json", &config),
        ("tokenizer.json", &tok),
        ("text.safetensors", &f16),
        ("text.vtq", &quantized),
    ];
    let pages: [(&str, &str, PathBuf); 2] = [
        (
            "simd128",
            "bench/index.html",
            root.join("target/bench-dist"),
        ),
        (
            "relaxed",
            "bench/relaxed.html",
            root.join("target/bench-dist-relaxed"),
        ),
    ];
    for (_, page, dist) in &pages {
        build_page(&root, page, dist, &data)?;
    }
    let browser = Browser::start()?;
    let mut results = BTreeMap::new();
    let mut profiles = BTreeMap::new();
    for (name, _, dist) in &pages {
        let serving = TestServer::files(dist)?;
        results.insert(*name, run_page(&browser, &serving.url())?);
        for which in ["quantized", "f16"] {
            if *name == "relaxed" || which == "quantized" {
                let url = format!("{}?profile={which}", serving.url());
                profiles.insert(format!("{which} on {name}"), profile(&browser, &url)?);
            }
        }
    }

    // The same encodes natively, from the same files.
    let native = |encode: &dyn Fn() -> Result<Vec<f32>>| -> Result<f64> {
        for _ in 0..3 {
            encode()?;
        }
        let times: Vec<f64> = (0..20)
            .map(|_| {
                let t = Instant::now();
                encode().map(|_| t.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<Result<_>>()?;
        Ok(median(times))
    };
    let f16_model = TextEncoder::from_bytes(&config, &f16)?;
    let q_model = QuantTextEncoder::from_bytes(&config, quantized.clone())?;
    let native_f16 = native(&|| Ok(f16_model.encode(&ids)?))?;
    let native_q = native(&|| Ok(q_model.encode(&ids)?))?;

    let ms = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let mb = |v: &Value| v.as_f64().unwrap_or(f64::NAN) / 1e6;
    let simd = &results["simd128"];
    let relaxed = &results["relaxed"];
    println!(
        "browser benchmark (headless Chromium, full-size ViT-B/32 text tower, random weights, {} tokens)",
        simd["tokens"]
    );
    println!(
        "  encoder files: f16 {:.1} MB, {} {:.1} MB",
        f16.len() as f64 / 1e6,
        layout.name(),
        quantized.len() as f64 / 1e6
    );
    for (label, v) in [
        ("f16 (candle, simd128 build)", &simd["f16"]),
        ("q8e4a7, simd128 build", &simd["quantized"]),
        ("q8e4a7, relaxed-SIMD build", &relaxed["quantized"]),
    ] {
        println!(
            "  {label}: warm encode median of 20 {:.1} ms; first load (fetch + parse + first encode, loopback) {:.0} ms; wasm memory grown by {:.1} MB",
            ms(&v["encode_median_ms"]),
            ms(&v["first_load_ms"]),
            mb(&v["wasm_memory_growth_bytes"]),
        );
    }
    println!(
        "  native (this CPU, one thread): f16 {native_f16:.1} ms, {} {native_q:.1} ms",
        layout.name()
    );
    for n in ["10000", "100000"] {
        println!(
            "  rank {n} int8 vectors (k=48), median of 20: {:.2} ms",
            ms(&simd["rank"][format!("rank_{n}_ms")])
        );
    }
    let part = &simd["partitioned"];
    println!(
        "  partitioned index of 1M items ({} lists in {} groups, root {:.2} MB parsed in {:.1} ms), warm query, index part, median: text ({} groups, {} lists) {:.2} ms, image ({} groups, {} lists) {:.2} ms",
        part["lists"],
        part["groups"],
        mb(&part["root_bytes"]),
        ms(&part["root_parse_ms"]),
        part["text_group_probes"],
        part["text_probes"],
        ms(&part["text_query_ms"]),
        part["image_group_probes"],
        part["image_probes"],
        ms(&part["image_query_ms"]),
    );
    for (what, top) in &profiles {
        let parts: Vec<String> = top.iter().map(|(n, p)| format!("{n} {p:.0}%")).collect();
        println!("  profile of {what}: {}", parts.join(", "));
    }
    // The site's worker builds, as `./dev test` or `./dev site` left them.
    for dir in [root.join("target/e2e-dist"), root.join("dist")] {
        let files: Vec<PathBuf> = ["vitrine-worker_bg.wasm", "vitrine-worker-relaxed_bg.wasm"]
            .iter()
            .map(|f| dir.join(f))
            .filter(|p| p.exists())
            .collect();
        if files.is_empty() {
            continue;
        }
        for f in files {
            println!(
                "  worker {}: {:.2} MB, {:.2} MB gzip -9",
                f.display(),
                std::fs::metadata(&f)?.len() as f64 / 1e6,
                gzip_size(&f)? as f64 / 1e6
            );
        }
        break;
    }
    Ok(())
}
