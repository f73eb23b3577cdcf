//! The browser benchmark: builds `bench/index.html` with Trunk, exports the text encoder of a
//! full-size random ViT-B/32 checkpoint (made by `random_checkpoint` if missing) beside it,
//! serves it, runs it in headless Chromium and prints the figures next to the same encode run
//! natively. `./dev bench` runs it; see README "Benchmarks".

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use vitrine_testkit::server::TestServer;
use vitrine_testkit::webdriver::Browser;

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

fn main() -> Result<()> {
    let root = vitrine_testkit::repo_root();
    let ckpt = root.join("target/random-vit-b-32");
    if !ckpt.join("model.safetensors").exists() {
        run(Command::new("cargo")
            .args([
                "run",
                "--release",
                "-q",
                "-p",
                "vitrine-clip",
                "--example",
                "random_checkpoint",
                "--",
            ])
            .arg(&ckpt)
            .current_dir(&root))?;
    }
    let dist = root.join("target/bench-dist");
    run(Command::new("trunk")
        .args(["build", "bench/index.html", "--release", "--dist"])
        .arg(&dist)
        .current_dir(&root))?;
    let checkpoint = vitrine_clip::Checkpoint::open(ckpt.to_str().context("path")?)?;
    let weights = checkpoint.export_text_encoder()?;
    let data = dist.join("data");
    std::fs::create_dir_all(&data)?;
    std::fs::write(data.join("text.safetensors"), &weights)?;
    std::fs::copy(ckpt.join("config.json"), data.join("config.json"))?;
    std::fs::copy(ckpt.join("tokenizer.json"), data.join("tokenizer.json"))?;

    let serving = TestServer::files(&dist)?;
    let browser = Browser::start()?;
    browser.goto(&serving.url())?;
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
    let wasm: serde_json::Value = serde_json::from_str(&result)?;
    if let Some(e) = wasm.get("error") {
        bail!("benchmark page failed: {e}");
    }

    // The same encode natively, from the same exported f16 file.
    let enc =
        vitrine_clip::TextEncoder::from_bytes(&std::fs::read(data.join("config.json"))?, &weights)?;
    let tok =
        vitrine_clip::ClipTokenizer::from_bytes(&std::fs::read(data.join("tokenizer.json"))?, 77)?;
    let ids = tok.encode("a photo of a fluffy pink cat on a tv")?;
    for _ in 0..3 {
        enc.encode(&ids)?;
    }
    let native: Vec<f64> = (0..20)
        .map(|_| {
            let t = Instant::now();
            enc.encode(&ids).map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, _>>()?;
    let native = median(native);
    let encode = wasm["encode_median_ms"].as_f64().unwrap_or(f64::NAN);
    let wasm_file = std::fs::read_dir(&dist)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "wasm"))
        .context("no wasm in the bench build")?;
    let wasm_bytes = std::fs::read(&wasm_file)?;
    println!(
        "browser benchmark (headless Chromium, full-size ViT-B/32 text tower, random weights)"
    );
    println!(
        "  text encoder download: {:.1} MB (f16)",
        weights.len() as f64 / 1e6
    );
    println!(
        "  first load (fetch + parse + build + first encode): {:.0} ms",
        wasm["first_load_ms"].as_f64().unwrap_or(f64::NAN)
    );
    println!(
        "  warm encode, {} tokens, median of 20: {encode:.1} ms (wasm) vs {native:.1} ms (native) = {:.2}x",
        wasm["tokens"],
        encode / native
    );
    for n in ["10000", "100000"] {
        println!(
            "  rank {n} int8 vectors (k=48), median of 20: {:.2} ms",
            wasm["rank"][format!("rank_{n}_ms")]
                .as_f64()
                .unwrap_or(f64::NAN)
        );
    }
    println!(
        "  bench wasm ({}): {} bytes",
        file_name(&wasm_file),
        wasm_bytes.len()
    );
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
