//! Fixture access shared by the parity tests: the tiny CLIP checkpoint in Hugging Face layout and
//! the outputs `transformers` computed from it (copied from `shared/fixtures`, see tests/fixtures).

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use serde::Deserialize;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

pub fn tiny_clip() -> PathBuf {
    fixtures().join("tiny-clip")
}

#[derive(Deserialize)]
pub struct Reference {
    pub texts: Vec<String>,
    pub input_ids_unpadded: Vec<Vec<u32>>,
    pub text_embeds: Vec<Vec<f32>>,
    pub images: Vec<String>,
    pub image_embeds: Vec<Vec<f32>>,
    pub logit_scale: f32,
    pub logits_per_image: Vec<Vec<f32>>,
}

pub fn reference() -> Reference {
    let bytes = std::fs::read(tiny_clip().join("reference_outputs.json")).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Max absolute difference relative to the reference vector's L2 norm.
pub fn rel_max_abs(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "vector lengths");
    let norm = want.iter().map(|v| v * v).sum::<f32>().sqrt();
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
        / norm
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|v| v * v).sum::<f32>().sqrt();
    let nb = b.iter().map(|v| v * v).sum::<f32>().sqrt();
    dot / (na * nb)
}
