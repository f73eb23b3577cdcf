//! The partitioned-index benchmark on synthetic CLIP-like vectors (see `data.rs`): partitioning
//! time and peak memory as build-index does it (lists shaped for 1,000 text queries other than
//! the measured ones), the probe curves, what a cold query fetches, warm query time natively, and
//! list-file churn after changing 1% of the items (anywhere, or one collection's) as
//! build-index's rebuild does it, with recall and cold-query bytes after it. `./dev bench` runs
//! it.

#![allow(clippy::print_stdout)]

#[path = "vitrine-bench-partition/churn.rs"]
mod churn;
#[path = "vitrine-bench-partition/data.rs"]
mod data;
#[path = "vitrine-bench-partition/stats.rs"]
mod stats;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use data::{DIM, Mixture};
use stats::{first_load, mean, realism};
use vitrine_index::Quantizer;
use vitrine_index::lists::{ListIndex, Probes, QueryKind, Root};
use vitrine_index::partition::{Centroids, Metric, SEED, default_lists, partition, train};
use vitrine_index::probing::Sample;

const DATA_SEED: u64 = 0xC11F;
const IMAGE_QUERIES: usize = 200;
const TEXT_QUERIES: u64 = 500;
/// The build's text queries (titles and everyday queries): other draws than the measured ones.
const BUILD_TEXTS: std::ops::Range<u64> = 1_000_000..1_001_000;
const TARGET: f64 = 0.95;
const MB: f64 = 1e6;

struct Args {
    sizes: Vec<usize>,
    lists_factor: f64,
    partition_only: Option<(usize, String)>,
}

fn args() -> Result<Args> {
    let mut a = Args {
        sizes: vec![100_000, 1_000_000],
        lists_factor: 1.0,
        partition_only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--sizes" => {
                a.sizes = value()?
                    .split(',')
                    .map(|s| s.trim().replace('_', "").parse())
                    .collect::<Result<_, _>>()?;
            }
            "--lists-factor" => a.lists_factor = value()?.parse()?,
            "--partition-only" => {
                let n = value()?.parse()?;
                a.partition_only = Some((n, value()?));
            }
            other => bail!("unknown argument {other} (--sizes 100000,1000000, --lists-factor F)"),
        }
    }
    Ok(a)
}

fn lists_for(n: usize, factor: f64) -> usize {
    ((default_lists(n) as f64 * factor).round() as usize).clamp(1, n)
}

/// Peak resident memory of this process, in bytes.
fn vm_hwm() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The child process: generates the data, partitions it exactly as build-index's `trained`
/// does, prints `key=value` timings and peak memory, and leaves the result in `out`.
fn partition_only(n: usize, factor: f64, out: &Path) -> Result<()> {
    let t = Instant::now();
    let mix = Mixture::new(n, DATA_SEED);
    let (unit, _) = mix.items(n);
    let texts: Vec<Vec<f32>> = BUILD_TEXTS.map(|q| mix.text(q)).collect();
    let (data_s, data_hwm) = (t.elapsed().as_secs_f64(), vm_hwm());
    let t = Instant::now();
    let metric = Metric::for_texts(&texts, DIM);
    let means = train(&unit, DIM, lists_for(n, factor), SEED, &metric);
    let train_s = t.elapsed().as_secs_f64();
    let centroids = Centroids::from_means(&means, DIM, metric)?;
    let p = partition(&unit, DIM, centroids, Quantizer::fit(&unit, DIM))?;
    let step_s = t.elapsed().as_secs_f64();
    let hwm = vm_hwm();
    println!(
        "data_s={data_s} data_hwm={data_hwm} train_s={train_s} step_s={step_s} hwm={hwm} fit={}",
        p.root.fit()
    );
    std::fs::write(out.join("root.bin"), p.root.to_bytes())?;
    std::fs::write(
        out.join("lists.bin"),
        [p.files.concat(), p.groups.concat()].concat(),
    )?;
    let order: Vec<u8> = p.order.iter().flat_map(|o| o.to_le_bytes()).collect();
    std::fs::write(out.join("order.bin"), order)?;
    Ok(())
}

fn p95(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() * 95 / 100).min(v.len() - 1)]
}

fn goal(ok: bool) -> &'static str {
    if ok { "goal met" } else { "GOAL MISSED" }
}

fn run_size(n: usize, factor: f64) -> Result<()> {
    let tmp = vitrine_testkit::tempdir();
    let lists = lists_for(n, factor);
    println!("\n== {n} items, {lists} lists (default_lists × {factor}) ==");
    let out = Command::new(std::env::current_exe()?)
        .args(["--lists-factor", &factor.to_string(), "--partition-only"])
        .arg(n.to_string())
        .arg(tmp.path())
        .output()?;
    if !out.status.success() {
        bail!(
            "partition-only {n} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kv: BTreeMap<&str, f64> = stdout
        .split_whitespace()
        .filter_map(|w| {
            w.split_once('=')
                .and_then(|(k, v)| Some((k, v.parse().ok()?)))
        })
        .collect();
    let get = |k: &str| kv.get(k).copied().unwrap_or(f64::NAN);
    let (step_s, hwm) = (get("step_s"), get("hwm") / 1e9);
    println!(
        "  partitioning (child process): data {:.1} s, peak {:.2} GB with the data alone; \
         train {:.1} s + assign/encode {:.1} s = {:.1} s, peak {:.2} GB; fit {:.3}",
        get("data_s"),
        get("data_hwm") / 1e9,
        get("train_s"),
        step_s - get("train_s"),
        step_s,
        hwm,
        get("fit")
    );
    if n >= 1_000_000 {
        println!(
            "  goal ≤ 10 min and ≤ 4 GB at 1M: {:.1} min {}, {hwm:.2} GB {}",
            step_s / 60.0,
            goal(step_s <= 600.0),
            goal(hwm <= 4.0)
        );
    }
    let mix = Mixture::new(n, DATA_SEED);
    let (unit, labels) = mix.items(n);
    let mut root = Root::from_bytes(&std::fs::read(tmp.path().join("root.bin"))?)?;
    let all_lists = std::fs::read(tmp.path().join("lists.bin"))?;
    let order: Vec<u32> = std::fs::read(tmp.path().join("order.bin"))?
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    // Lists, then groups (Root::file order).
    let mut files = Vec::with_capacity(root.file_count());
    let mut at = 0;
    for j in 0..root.file_count() {
        let size = root.file(j).size as usize;
        files.push(&all_lists[at..at + size]);
        at += size;
    }
    let mut index = ListIndex::new(root.clone());
    for (j, f) in files.iter().enumerate() {
        index.add_file(j, f)?;
    }
    let t = Instant::now();
    realism(&mix, &unit, &labels, &index, &order);
    println!("           ({:.0} s)", t.elapsed().as_secs_f64());

    let images: Vec<u32> = (0..n as u32).step_by(n.div_ceil(IMAGE_QUERIES)).collect();
    let texts: Vec<Vec<f32>> = (0..TEXT_QUERIES).map(|q| mix.text(q)).collect();
    let t = Instant::now();
    let sample = Sample::new(&index, &images, &texts, 10);
    let curve = sample.curve(&index);
    let (all, all_groups) = (root.lists() as u32, root.groups() as u32);
    let size_of = |j: usize| root.file(j).size as f64;
    let group_bytes = mean(
        &(root.lists()..root.file_count())
            .map(size_of)
            .collect::<Vec<_>>(),
    );
    let cap = (root.lists() / 4).max(1);
    let counts = curve
        .cheapest(TARGET, root.lists())
        .unwrap_or(Probes::counts(all_groups, all));
    println!(
        "  probe curve, recall@10 vs scanning every list ({} image + {} text queries, {:.0} s):",
        images.len(),
        texts.len(),
        t.elapsed().as_secs_f64()
    );
    println!(
        "    lists ranked within the nearest {} (image) / {} (text) of {all_groups} groups",
        counts.image_groups, counts.text_groups
    );
    println!("    {:>7} {:>8} {:>8}", "probes", "image", "text");
    let mut shown: BTreeSet<u32> = [1, 2, 4, 8, 16, 32, 64].into();
    shown.extend([counts.image, counts.text]);
    for p in shown.into_iter().filter(|&p| p as usize <= root.lists()) {
        let (i, t) = curve.at(Probes {
            image: p,
            text: p,
            ..counts
        });
        let mark = |c: u32| if p == c { "←" } else { " " };
        println!(
            "    {p:>7} {i:>8.4}{} {t:>8.4}{}",
            mark(counts.image),
            mark(counts.text)
        );
    }
    let cap_note = |p: u32| {
        if p as usize > cap {
            format!("; ABOVE build-index's default --max-probes {cap}: the build would fail")
        } else {
            String::new()
        }
    };
    println!(
        "  probe counts at {TARGET}: image {}, text {} of {} lists{}",
        counts.image,
        counts.text,
        root.lists(),
        cap_note(counts.image.max(counts.text))
    );
    let t = Instant::now();
    let tuned = sample.tune(&index, counts, TARGET, cap);
    let chosen = tuned.probes;
    for (name, m, p, gap) in [
        ("image", tuned.image, chosen.image, chosen.image_gap),
        ("text", tuned.text, chosen.text, chosen.text_gap),
    ] {
        println!(
            "  with a gap ({:.1} s): {name} at most {p} lists, none trailing the nearest by more \
             than {gap:.4} → {:.1} lists, {:.2} MB of lists per query, recall {:.4}",
            t.elapsed().as_secs_f64(),
            m.lists,
            m.bytes / MB,
            m.recall
        );
    }

    root.set_probes(chosen);
    drop(index);
    let mut index = ListIndex::new(root.clone());
    for (j, f) in files.iter().enumerate() {
        index.add_file(j, f)?;
    }
    let root_bytes = root.to_bytes().len() as f64;
    let sizes: Vec<f64> = root.files().iter().map(|f| f.size as f64).collect();
    let lists_only = &sizes[..root.lists()];
    println!(
        "  files: root {:.3} MB; {} list files, mean {:.1} KB, max {:.1} KB, {:.1} MB in all; \
         {} group files, mean {:.1} KB",
        root_bytes / MB,
        lists_only.len(),
        mean(lists_only) / 1e3,
        lists_only.iter().copied().fold(0.0, f64::max) / 1e3,
        lists_only.iter().sum::<f64>() / MB,
        root.groups(),
        group_bytes / 1e3
    );
    let k = vitrine_search::WINDOW;
    let cold = |queries: &[Vec<f32>], kind| stats::cold(&root, &index, queries, kind);
    let image_vectors: Vec<Vec<f32>> = images
        .iter()
        .filter_map(|&i| index.decode(i).ok())
        .collect();
    let limit = if n >= 1_000_000 { 4.0 } else { 1.5 };
    for (kind, queries, name) in [
        (QueryKind::Text, &texts, "text"),
        (QueryKind::Image, &image_vectors, "image"),
    ] {
        let parts = cold(queries, kind);
        let groups = mean(&parts.iter().map(|p| p.0).collect::<Vec<_>>()) / MB;
        let lists = mean(&parts.iter().map(|p| p.1).collect::<Vec<_>>()) / MB;
        let bytes: Vec<f64> = parts.iter().map(|p| root_bytes + p.0 + p.1).collect();
        let (cold_mean, cold_p95) = (mean(&bytes) / MB, p95(bytes) / MB);
        let verdict = match kind {
            QueryKind::Text => format!(
                "; goal ≤ {limit} MB at {}: {} (the p95 query {})",
                if n >= 1_000_000 { "1M" } else { "100k" },
                goal(cold_mean <= limit),
                if cold_p95 <= limit { "within" } else { "above" }
            ),
            QueryKind::Image => String::new(),
        };
        println!(
            "  cold {name} query: root {:.2} + {} groups {groups:.2} + at most {} lists \
             {lists:.2} = {cold_mean:.2} MB mean, {cold_p95:.2} MB p95 (manifest and model \
             excluded){verdict}",
            root_bytes / MB,
            chosen.groups(kind),
            chosen.of(kind),
        );
    }
    filtered(&texts, &root, &index, &sizes)?;
    println!("  {}", first_load(&root)?);
    let mut plan_ms = Vec::new();
    let mut warm_ms = Vec::new();
    for q in &texts {
        let t = Instant::now();
        let lists = index
            .plan(q, QueryKind::Text, k, None)
            .map_err(|e| anyhow::anyhow!("groups missing: {:?}", e.0))?;
        plan_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let hits = index.scan(q, &lists, k, None);
        warm_ms.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(hits.map_err(|e| anyhow::anyhow!("lists missing: {:?}", e.0))?);
    }
    let warm = mean(&warm_ms);
    println!(
        "  warm text query, native (plan {:.2} ms + scan; top {k}, one thread): {warm:.2} ms \
         mean, {:.2} ms p95{}",
        mean(&plan_ms),
        p95(warm_ms),
        if n >= 1_000_000 {
            format!("; goal ≤ 10 ms at 1M: {}", goal(warm <= 10.0))
        } else {
            String::new()
        }
    );

    let before = churn::Before {
        root: &root,
        files: &files,
        texts: &texts,
        probes: tuned,
    };
    churn::churn(&mix, &unit, &labels, &before)?;
    Ok(())
}

/// What a cold text query fetches under a filter (a brand, a colour) that allows a share of the
/// items scattered over the lists: lists planned to hold the results the page shows, and, as
/// before, to hold the whole window fused with keywords.
fn filtered(texts: &[Vec<f32>], root: &Root, index: &ListIndex, sizes: &[f64]) -> Result<()> {
    let (shown, window) = (vitrine_protocol::RESULTS_PER_SEARCH, vitrine_search::WINDOW);
    let root_bytes = root.to_bytes().len() as f64;
    for share in [0.1, 0.01] {
        let mut rng = data::Rng::new(DATA_SEED, 0xF117);
        let allowed: Vec<bool> = (0..root.count())
            .map(|_| (rng.below(10_000) as f64) < share * 1e4)
            .collect();
        let bytes = |held: usize| -> Vec<f64> {
            stats::parallel(texts, |q| {
                let groups = root.plan_groups(q, QueryKind::Text, held, Some(&allowed));
                let lists = index
                    .plan(q, QueryKind::Text, held, Some(&allowed))
                    .unwrap_or_default();
                root_bytes
                    + groups.iter().map(|&g| sizes[root.lists() + g]).sum::<f64>()
                    + lists.iter().map(|&j| sizes[j]).sum::<f64>()
            })
        };
        let (few, all) = (bytes(shown), bytes(window));
        println!(
            "  cold text query, filter allowing {:.0}% of the items (scattered): {:.2} MB mean \
             ({:.2} p95) with lists for the {shown} results shown; {:.2} MB ({:.2}) for a \
             window of {window}",
            share * 100.0,
            mean(&few) / MB,
            p95(few) / MB,
            mean(&all) / MB,
            p95(all) / MB
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let a = args()?;
    if let Some((n, out)) = a.partition_only {
        return partition_only(n, a.lists_factor, Path::new(&out));
    }
    println!(
        "vitrine-bench-partition: synthetic CLIP-like vectors, dim {DIM}, seed {DATA_SEED:#x}; \
         ≈ n/2000 coarse topics × ~20 sub-topics, power-law spectrum under a random rotation, \
         shared image direction, text queries across a modality gap; {} threads",
        std::thread::available_parallelism().map_or(1, |t| t.get())
    );
    for &n in &a.sizes {
        run_size(n, a.lists_factor)?;
    }
    Ok(())
}
