//! The page's text path in a real browser: the tiny model loaded from bytes through
//! `TextEncoder::from_bytes`, tokenized and encoded in wasm32, equals `transformers`.
//! Run with `cargo test -p vitrine-clip --target wasm32-unknown-unknown --test browser`
//! (wasm-bindgen-test-runner drives headless Chromium through chromedriver).

#![cfg(target_arch = "wasm32")]

use vitrine_clip::{ClipTokenizer, TextEncoder};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const CONFIG: &[u8] = include_bytes!("../../../tests/fixtures/tiny-clip/config.json");
const WEIGHTS: &[u8] = include_bytes!("../../../tests/fixtures/tiny-clip/model.safetensors");
const TOKENIZER: &[u8] = include_bytes!("../../../tests/fixtures/tiny-clip/tokenizer.json");
const REFERENCE: &[u8] = include_bytes!("../../../tests/fixtures/tiny-clip/reference_outputs.json");

#[derive(serde::Deserialize)]
struct Reference {
    texts: Vec<String>,
    input_ids_unpadded: Vec<Vec<u32>>,
    text_embeds: Vec<Vec<f32>>,
}

#[wasm_bindgen_test]
fn text_features_in_the_browser_equal_transformers() {
    let r: Reference = serde_json::from_slice(REFERENCE).unwrap();
    let encoder = TextEncoder::from_bytes(CONFIG, WEIGHTS).unwrap();
    let tokenizer = ClipTokenizer::from_bytes(TOKENIZER, encoder.max_len()).unwrap();
    for (i, text) in r.texts.iter().enumerate() {
        let ids = tokenizer.encode(text).unwrap();
        assert_eq!(ids, r.input_ids_unpadded[i], "ids of {text:?}");
        let got = encoder.encode(&ids).unwrap();
        let want = &r.text_embeds[i];
        let norm = want.iter().map(|v| v * v).sum::<f32>().sqrt();
        let err = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
            / norm;
        assert!(err < 1e-4, "{text:?}: relative error {err}");
    }
}
