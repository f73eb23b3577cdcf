//! The quantized text encoder as documentation: the tiny fixture exported as `q8e4a7` equals the
//! committed golden file byte for byte, its vectors equal the committed ones bit for bit (the
//! browser test checks the same vectors in wasm, both builds), and every layout stays close to
//! `transformers`. `UPDATE_GOLDEN=1` rewrites the golden files after an intended change.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{cosine, reference, tiny_clip};
use vitrine_clip::{Checkpoint, ClipTokenizer, EmbeddingBits, QuantLayout, QuantTextEncoder};

/// What the golden vectors encode (the parity fixture's strings).
fn texts() -> Vec<String> {
    reference().texts
}

fn golden(name: &str, bytes: &[u8]) {
    let path = tiny_clip().join("quantized").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    let want = std::fs::read(&path).unwrap_or_default();
    assert!(
        want == bytes,
        "{name} differs from its golden file; UPDATE_GOLDEN=1 if intended"
    );
}

#[test]
fn the_tiny_fixture_quantizes_to_the_golden_file_and_vectors() {
    let ckpt = Checkpoint::open(tiny_clip().to_str().unwrap()).unwrap();
    let tokenizer = ckpt.tokenizer().unwrap();
    let ids: Vec<Vec<u32>> = texts()
        .iter()
        .map(|t| tokenizer.encode(t).unwrap())
        .collect();
    let layout = QuantLayout {
        embedding: EmbeddingBits::Four,
        activation_bits: 7,
    };
    let bytes = ckpt.export_quantized_text_encoder(layout, &ids).unwrap();
    golden("text.q8e4a7.vtq", &bytes);
    let config = std::fs::read(tiny_clip().join("config.json")).unwrap();
    let q = QuantTextEncoder::from_bytes(&config, bytes).unwrap();
    let vectors: Vec<Vec<f32>> = ids.iter().map(|i| q.encode(i).unwrap()).collect();
    golden(
        "text.q8e4a7.vectors.json",
        &serde_json::to_vec(&vectors).unwrap(),
    );
}

#[test]
fn every_layout_stays_close_to_transformers() {
    let ckpt = Checkpoint::open(tiny_clip().to_str().unwrap()).unwrap();
    let r = reference();
    let tokenizer: ClipTokenizer = ckpt.tokenizer().unwrap();
    let ids: Vec<Vec<u32>> = r
        .texts
        .iter()
        .map(|t| tokenizer.encode(t).unwrap())
        .collect();
    let config = std::fs::read(tiny_clip().join("config.json")).unwrap();
    for embedding in [
        EmbeddingBits::Eight,
        EmbeddingBits::Four,
        EmbeddingBits::FourWithEightBitHead,
    ] {
        for activation_bits in [7, 8] {
            let layout = QuantLayout {
                embedding,
                activation_bits,
            };
            let bytes = ckpt.export_quantized_text_encoder(layout, &ids).unwrap();
            let q = QuantTextEncoder::from_bytes(&config, bytes).unwrap();
            let worst = ids
                .iter()
                .zip(&r.text_embeds)
                .map(|(i, want)| cosine(&q.encode(i).unwrap(), want))
                .fold(1.0f32, f32::min);
            assert!(worst > 0.99, "{}: worst cosine {worst}", layout.name());
        }
    }
}
