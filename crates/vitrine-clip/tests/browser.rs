//! The page's text path in a real browser: the tiny model loaded from bytes through
//! `TextEncoder::from_bytes`, tokenized and encoded in wasm32, equals `transformers`; the
//! integer kernels of this build equal the portable reference; the quantized encoder gives the
//! very vectors the native build gave (the golden file of `tests/quantized.rs`). Run with
//! `cargo test -p vitrine-clip --target wasm32-unknown-unknown --test browser`, and again with
//! `--features relaxed-simd` for the relaxed-SIMD build (wasm-bindgen-test-runner drives
//! headless Chromium through chromedriver).

#![cfg(target_arch = "wasm32")]

use vitrine_clip::quant::kernels::{Kernel, dots, row_sums};
use vitrine_clip::{ClipTokenizer, QuantTextEncoder, TextEncoder};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const CONFIG: &[u8] = include_bytes!("../../../tests/fixtures/tiny-clip/config.json");
const WEIGHTS: &[u8] = include_bytes!("../../../tests/fixtures/tiny-clip/model.safetensors");
const TOKENIZER: &[u8] = include_bytes!("../../../tests/fixtures/tiny-clip/tokenizer.json");
const REFERENCE: &[u8] = include_bytes!("../../../tests/fixtures/tiny-clip/reference_outputs.json");
const QUANTIZED: &[u8] =
    include_bytes!("../../../tests/fixtures/tiny-clip/quantized/text.q8e4a7.vtq");
const QUANTIZED_VECTORS: &[u8] =
    include_bytes!("../../../tests/fixtures/tiny-clip/quantized/text.q8e4a7.vectors.json");

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

#[wasm_bindgen_test]
fn this_builds_integer_kernels_equal_the_portable_reference() {
    let relaxed = cfg!(feature = "relaxed-simd");
    assert_eq!(
        Kernel::best(7),
        if relaxed {
            Kernel::Relaxed
        } else {
            Kernel::Simd128
        }
    );
    assert_eq!(Kernel::best(8), Kernel::Simd128);
    let mut s = 0x9E37_79B9u64;
    let mut next = |max: i32| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s % (2 * max as u64 + 1)) as i32 - max) as i8 as u8
    };
    for (rows, outs, cols) in [(12usize, 36usize, 40usize), (1, 5, 16), (7, 9, 2048)] {
        let stride = cols.div_ceil(16) * 16;
        for bits in [7u32, 8] {
            let mut x = vec![0u8; rows * stride];
            let mut w = vec![0u8; outs * stride];
            for r in 0..rows {
                for c in 0..cols {
                    x[r * stride + c] = next((1 << (bits - 1)) - 1);
                }
            }
            for r in 0..outs {
                for c in 0..cols {
                    w[r * stride + c] = next(127);
                }
            }
            let sums = row_sums(&w, stride);
            let mut want = vec![0; rows * outs];
            dots(
                Kernel::Portable,
                &x,
                rows,
                &w,
                &sums,
                outs,
                stride,
                &mut want,
            );
            let mut got = vec![0; rows * outs];
            dots(
                Kernel::best(bits),
                &x,
                rows,
                &w,
                &sums,
                outs,
                stride,
                &mut got,
            );
            assert_eq!(got, want, "{rows}x{outs}x{cols}, {bits} bits");
        }
    }
}

#[wasm_bindgen_test]
fn quantized_vectors_in_the_browser_are_the_native_ones_bit_for_bit() {
    let r: Reference = serde_json::from_slice(REFERENCE).unwrap();
    let want: Vec<Vec<f32>> = serde_json::from_slice(QUANTIZED_VECTORS).unwrap();
    let encoder = QuantTextEncoder::from_bytes(CONFIG, QUANTIZED.to_vec()).unwrap();
    let tokenizer = ClipTokenizer::from_bytes(TOKENIZER, encoder.max_len()).unwrap();
    for (text, want) in r.texts.iter().zip(&want) {
        let got = encoder.encode(&tokenizer.encode(text).unwrap()).unwrap();
        let same = got
            .iter()
            .zip(want)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{text:?}: {got:?} vs {want:?}");
    }
}
