//! The browser benchmark page (`bench/index.html`, driven by `vitrine-bench-browser`): loads the
//! exported text encoder from `data/`, times the first load, the warm encode of a 12-token query
//! (median of 20) and the int8 scan over 10k and 100k synthetic vectors, and writes the figures
//! as JSON into `#result` for the driver to read.

use vitrine_clip::{ClipTokenizer, TextEncoder};
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

async fn run() -> Result<serde_json::Value, String> {
    let t0 = now();
    let config = fetch("data/config.json").await?;
    let weights = fetch("data/text.safetensors").await?;
    let tokenizer = fetch("data/tokenizer.json").await?;
    let downloaded = now() - t0;
    let encoder = TextEncoder::from_bytes(&config, &weights).map_err(|e| e.to_string())?;
    let tokenizer =
        ClipTokenizer::from_bytes(&tokenizer, encoder.max_len()).map_err(|e| e.to_string())?;
    let ids = tokenizer.encode(QUERY).map_err(|e| e.to_string())?;
    let first = encoder.encode(&ids).map_err(|e| e.to_string())?;
    let first_load = now() - t0;
    for _ in 0..3 {
        encoder.encode(&ids).map_err(|e| e.to_string())?;
    }
    let mut encode = Vec::new();
    for _ in 0..20 {
        let t = now();
        encoder.encode(&ids).map_err(|e| e.to_string())?;
        encode.push(now() - t);
    }
    let mut rank = serde_json::Map::new();
    let all = synthetic(100_000, encoder.dim());
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
        "weights_bytes": weights.len(),
        "download_ms": downloaded,
        "first_load_ms": first_load,
        "encode_median_ms": median(encode),
        "rank": rank,
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
