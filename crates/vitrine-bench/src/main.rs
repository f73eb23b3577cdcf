//! The browser benchmark page (`bench/index.html`, and `bench/relaxed.html` built with relaxed
//! SIMD; driven by `vitrine-bench-browser`): loads the exported text encoders from `data/` (the
//! quantized one, then f16), times each one's first load and the warm encode of a 12-token query
//! (median of 20), the wasm memory each load takes, the int8 scan over 10k and 100k synthetic
//! vectors and a warm query of a partitioned 1M-item index, and writes the figures as JSON into
//! `#result` for the driver to read.

mod partitioned;

use vitrine_clip::{ClipTokenizer, QuantTextEncoder, TextEncoder};
use vitrine_index::Vectors;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// The query the benchmark encodes: 12 tokens with start and end.
const QUERY: &str = "a photo of a fluffy pink cat on a tv";

fn now() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

async fn fetch(path: &str) -> Result<Vec<u8>, String> {
    let window = web_sys::window().ok_or("no window")?;
    let resp: web_sys::Response = JsFuture::from(window.fetch_with_str(path))
        .await
        .map_err(|e| format!("{path}: {e:?}"))?
        .unchecked_into();
    if !resp.ok() {
        return Err(format!("{path}: HTTP {}", resp.status()));
    }
    let buf = JsFuture::from(resp.array_buffer().map_err(|e| format!("{e:?}"))?)
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `n` pseudo-random embeddings of width `dim` (deterministic).
fn synthetic(n: usize, dim: usize) -> Vec<Vec<f32>> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            (0..dim)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        })
        .collect()
}

/// Bytes of the page's wasm memory (it only grows: after a load it holds that load's peak).
fn wasm_memory() -> f64 {
    wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length() as f64
}

/// First load (fetch, parse, first encode) and warm encodes of one encoder.
async fn time_encoder<E>(
    file: &str,
    ids: &[u32],
    load: impl Fn(Vec<u8>) -> Result<E, String>,
    encode: impl Fn(&E, &[u32]) -> Result<Vec<f32>, String>,
) -> Result<(serde_json::Value, Vec<f32>), String> {
    let memory_before = wasm_memory();
    let t0 = now();
    let bytes = fetch(file).await?;
    let size = bytes.len();
    let encoder = load(bytes)?;
    let first = encode(&encoder, ids)?;
    let first_load = now() - t0;
    let memory = wasm_memory() - memory_before;
    for _ in 0..3 {
        encode(&encoder, ids)?;
    }
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = now();
        encode(&encoder, ids)?;
        times.push(now() - t);
    }
    Ok((
        serde_json::json!({
            "file_bytes": size,
            "first_load_ms": first_load,
            "encode_median_ms": median(times),
            "wasm_memory_growth_bytes": memory,
        }),
        first,
    ))
}

/// `?profile=quantized|f16`: only that encoder, encoded `PROFILE_ENCODES` times, for the
/// driver's CPU profile of where a warm encode spends its time.
const PROFILE_ENCODES: usize = 200;

async fn profile(which: &str, config: &[u8], ids: &[u32]) -> Result<serde_json::Value, String> {
    let t = now();
    match which {
        "quantized" => {
            let e = QuantTextEncoder::from_bytes(config, fetch("data/text.vtq").await?)
                .map_err(|e| e.to_string())?;
            for _ in 0..PROFILE_ENCODES {
                e.encode(ids).map_err(|e| e.to_string())?;
            }
        }
        _ => {
            let e = TextEncoder::from_bytes(config, &fetch("data/text.safetensors").await?)
                .map_err(|e| e.to_string())?;
            for _ in 0..PROFILE_ENCODES {
                e.encode(ids).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(serde_json::json!({ "profiled": which, "ms": now() - t }))
}

async fn run() -> Result<serde_json::Value, String> {
    let config = fetch("data/config.json").await?;
    let tokenizer = fetch("data/tokenizer.json").await?;
    let tokenizer = ClipTokenizer::from_bytes(&tokenizer, 77).map_err(|e| e.to_string())?;
    let ids = tokenizer.encode(QUERY).map_err(|e| e.to_string())?;
    let search = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    if let Some(which) = search.strip_prefix("?profile=") {
        return profile(which, &config, &ids).await;
    }
    let (quantized, _) = time_encoder(
        "data/text.vtq",
        &ids,
        |b| QuantTextEncoder::from_bytes(&config, b).map_err(|e| e.to_string()),
        |e, ids| e.encode(ids).map_err(|e| e.to_string()),
    )
    .await?;
    let (f16, first) = time_encoder(
        "data/text.safetensors",
        &ids,
        |b| TextEncoder::from_bytes(&config, &b).map_err(|e| e.to_string()),
        |e, ids| e.encode(ids).map_err(|e| e.to_string()),
    )
    .await?;
    let mut rank = serde_json::Map::new();
    let all = synthetic(100_000, first.len());
    for n in [10_000usize, 100_000] {
        let vectors = Vectors::quantize(&all[..n]).map_err(|e| e.to_string())?;
        let query = vectors.query(&first);
        let mut times = Vec::new();
        for i in 0..21 {
            let t = now();
            let hits = vectors.search(&query, 48, None);
            if i > 0 {
                times.push(now() - t);
            }
            assert_eq!(hits.len(), 48);
        }
        rank.insert(format!("rank_{n}_ms"), median(times).into());
    }
    Ok(serde_json::json!({
        "tokens": ids.len(),
        "kernel": format!("{:?}", vitrine_clip::quant::kernels::Kernel::best(7)),
        "quantized": quantized,
        "f16": f16,
        "rank": rank,
        "partitioned": partitioned::run(first.len())?,
    }))
}

fn main() {
    console_error_panic_hook::set_once();
    wasm_bindgen_futures::spawn_local(async {
        let out = match run().await {
            Ok(v) => v.to_string(),
            Err(e) => serde_json::json!({ "error": e }).to_string(),
        };
        if let Some(el) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id("result"))
        {
            el.set_text_content(Some(&out));
            let _ = el.set_attribute("data-done", "true");
        }
    });
}
