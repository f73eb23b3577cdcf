//! The measurement: texts, the f32 reference, each layout's queries, cosine and recall@10.

use std::path::PathBuf;

use crate::bert::{Bert, Linears, Maxima, Reference, Result, Rows, Weights};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use rayon::prelude::*;
use tokenizers::{Tokenizer, TruncationParams};

/// CLIP's context length; the study truncates there too.
const MAX_LEN: usize = 77;
/// Rows of the token embedding kept in 8 bits by the `…e4h…` layouts.
const HEAD: usize = vitrine_clip::quant::export::EIGHT_BIT_HEAD;

struct Args {
    model: PathBuf,
    texts: PathBuf,
    study: Option<PathBuf>,
}

fn args() -> Result<Args> {
    let mut a = std::env::args().skip(1);
    let usage = "usage: real_weights MODEL_DIR TEXTS_JSON [STUDY_RESULTS_JSON]";
    Ok(Args {
        model: a.next().ok_or(usage)?.into(),
        texts: a.next().ok_or(usage)?.into(),
        study: a.next().map(PathBuf::from),
    })
}

#[derive(serde::Deserialize)]
struct Texts {
    queries: Vec<String>,
    corpus: Vec<String>,
}

/// One row of the study's results.
#[derive(serde::Deserialize)]
struct StudyRow {
    variant: String,
    cos_mean: f64,
    recall10: f64,
}

#[derive(serde::Deserialize)]
struct Study {
    rows: Vec<StudyRow>,
}

/// What is measured: a name, how it is stored, and the study's row for the same layout
/// (`=`) or the nearest one (`≈`).
struct Variant {
    name: &'static str,
    linears: Linears,
    rows: Rows,
    study: (&'static str, &'static str),
}

fn variants() -> Vec<Variant> {
    let q = |bits, outliers| Linears::Quant { bits, outliers };
    let v = |name, linears, rows, study| Variant {
        name,
        linears,
        rows,
        study,
    };
    vec![
        v(
            "f32, our forward pass",
            Linears::F32,
            Rows::F32,
            ("=", "ref f32 (sanity)"),
        ),
        v(
            "int8 per-channel, f32 activations",
            Linears::WeightsOnly,
            Rows::F32,
            ("=", "a int8 per-channel"),
        ),
        v(
            "f32 / emb int8-row",
            Linears::F32,
            Rows::Eight,
            ("=", "emb int8-row only"),
        ),
        v(
            "f32 / emb 4-bit",
            Linears::F32,
            Rows::Four,
            ("≈", "emb 4-bit(Q4_0) only"),
        ),
        v(
            "int8 per-channel / emb int8-row",
            Linears::WeightsOnly,
            Rows::Eight,
            ("=", "f a + emb int8-row"),
        ),
        v(
            "int8 per-channel / emb 4-bit",
            Linears::WeightsOnly,
            Rows::Four,
            ("≈", "f a + emb 4-bit"),
        ),
        v(
            "q8e8a8 (page)",
            q(8, true),
            Rows::Eight,
            ("≈", "f b + emb Q8_0"),
        ),
        v(
            "q8e8a7 (page)",
            q(7, true),
            Rows::Eight,
            ("≈", "f b + emb Q8_0"),
        ),
        v(
            "q8e8a7 without outlier channels",
            q(7, false),
            Rows::Eight,
            ("≈", "f b + emb Q8_0"),
        ),
        v(
            "q8e4ha8 (page)",
            q(8, true),
            Rows::FourWithEightBitHead(HEAD),
            ("≈", "f b + emb 4-bit"),
        ),
        v(
            "q8e4ha7 (page)",
            q(7, true),
            Rows::FourWithEightBitHead(HEAD),
            ("≈", "f b + emb 4-bit"),
        ),
        v(
            "q8e4a8 (page)",
            q(8, true),
            Rows::Four,
            ("≈", "f b + emb 4-bit"),
        ),
        v(
            "q8e4a7 (page)",
            q(7, true),
            Rows::Four,
            ("≈", "f b + emb 4-bit"),
        ),
    ]
}

/// Indices of the `k` largest scores of `query` against `corpus` (row-major, `d` wide).
fn top_k(query: &[f32], corpus: &[Vec<f32>], k: usize) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> = corpus
        .iter()
        .enumerate()
        .map(|(i, c)| (query.iter().zip(c).map(|(a, b)| a * b).sum(), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, i)| i).collect()
}

struct Metrics {
    cos_mean: f64,
    cos_p1: f64,
    cos_min: f64,
    recall10: f64,
    top1: f64,
}

fn measure(
    got: &[Vec<f32>],
    want: &[Vec<f32>],
    want_top: &[Vec<usize>],
    corpus: &[Vec<f32>],
) -> Metrics {
    let mut cos: Vec<f64> = got
        .iter()
        .zip(want)
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum())
        .collect();
    let (recall, top1): (Vec<f64>, Vec<f64>) = got
        .par_iter()
        .zip(want_top)
        .map(|(q, want)| {
            let top = top_k(q, corpus, 10);
            let hit = top.iter().filter(|i| want.contains(i)).count();
            (hit as f64 / 10.0, f64::from(u8::from(top[0] == want[0])))
        })
        .unzip();
    let n = cos.len() as f64;
    cos.sort_by(f64::total_cmp);
    Metrics {
        cos_mean: cos.iter().sum::<f64>() / n,
        cos_p1: cos[(cos.len() - 1) / 100],
        cos_min: cos[0],
        recall10: recall.iter().sum::<f64>() / n,
        top1: top1.iter().sum::<f64>() / n,
    }
}

pub(crate) fn run() -> Result<()> {
    let args = args()?;
    let texts: Texts = serde_json::from_slice(&std::fs::read(&args.texts)?)?;
    let study: Option<Study> = match &args.study {
        Some(p) => Some(serde_json::from_slice(&std::fs::read(p)?)?),
        None => None,
    };
    let mut tokenizer = Tokenizer::from_file(args.model.join("tokenizer.json"))?;
    tokenizer.with_padding(None);
    tokenizer.with_truncation(Some(TruncationParams {
        max_length: MAX_LEN,
        ..Default::default()
    }))?;
    let ids = |t: &[String]| -> Result<Vec<Vec<u32>>> {
        t.iter()
            .map(|s| Ok(tokenizer.encode(s.as_str(), true)?.get_ids().to_vec()))
            .collect()
    };
    let (queries, corpus) = (ids(&texts.queries)?, ids(&texts.corpus)?);
    let config: candle_transformers::models::bert::Config =
        serde_json::from_slice(&std::fs::read(args.model.join("config.json"))?)?;
    let file = args.model.join("model.safetensors");
    let vb = VarBuilder::from_buffered_safetensors(std::fs::read(file)?, DType::F32, &Device::Cpu)?;
    let reference = Reference::load(vb.clone(), &config)?;
    let weights = Weights::load(&vb, &config)?;
    println!(
        "all-MiniLM-L6-v2: {} queries against {} texts; reference: candle-transformers BertModel (f32)",
        queries.len(),
        corpus.len()
    );
    let start = std::time::Instant::now();
    let encode_ref = |t: &[Vec<u32>]| -> Result<Vec<Vec<f32>>> {
        t.iter().map(|i| reference.encode(i)).collect()
    };
    let corpus_f32 = encode_ref(&corpus)?;
    let queries_f32 = encode_ref(&queries)?;
    let want_top: Vec<Vec<usize>> = queries_f32
        .par_iter()
        .map(|q| top_k(q, &corpus_f32, 10))
        .collect();
    println!(
        "reference encoded in {:.0} s",
        start.elapsed().as_secs_f64()
    );

    // Outliers are placed as build-index places them: from the everyday queries it calibrates on.
    let everyday = include_str!("../../../../build-index/data/everyday-queries.txt");
    let calibration: Vec<String> = everyday
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .take(64)
        .map(str::to_string)
        .collect();
    let f32_model = Bert::new(&weights, Linears::F32, Rows::F32, &Maxima::new());
    let mut maxima = Maxima::new();
    for t in ids(&calibration)? {
        f32_model.encode(&t, Some(&mut maxima));
    }

    let quantized = Linears::Quant {
        bits: 8,
        outliers: true,
    };
    let counts = Bert::new(&weights, quantized, Rows::F32, &maxima).outlier_counts();
    println!("input channels kept in f32, per linear: {counts:?}");
    println!();
    println!(
        "| variant | cos mean | cos p1 | cos min | R@10 | top-1 | study row | study cos mean | study R@10 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|---:|---:|");
    for v in variants() {
        let model = Bert::new(&weights, v.linears, v.rows, &maxima);
        let got: Vec<Vec<f32>> = queries.par_iter().map(|q| model.encode(q, None)).collect();
        let m = measure(&got, &queries_f32, &want_top, &corpus_f32);
        let row = study
            .as_ref()
            .and_then(|s| s.rows.iter().find(|r| r.variant == v.study.1));
        let (sc, sr) = row.map_or(("–".into(), "–".into()), |r| {
            (format!("{:.5}", r.cos_mean), format!("{:.4}", r.recall10))
        });
        println!(
            "| {} | {:.5} | {:.5} | {:.5} | {:.4} | {:.3} | {} {} | {sc} | {sr} |",
            v.name, m.cos_mean, m.cos_p1, m.cos_min, m.recall10, m.top1, v.study.0, v.study.1
        );
    }
    Ok(())
}
