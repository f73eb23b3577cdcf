//! Writes a full-size `openai/clip-vit-base-patch32`-shaped checkpoint folder with seeded random
//! weights, for benchmarks where the real weights cannot be downloaded:
//! `cargo run --release -p vitrine-clip --example random_checkpoint -- OUT_DIR`.
//! Speed depends on the sizes only; rankings from it mean nothing. Never commit its output.

#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use vitrine_clip::ClipConfig;
use vitrine_clip::synthetic::{VIT_B_32_CONFIG, random_tensors};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: random_checkpoint OUT_DIR")?,
    );
    std::fs::create_dir_all(&out)?;
    let config = ClipConfig::from_json(VIT_B_32_CONFIG.as_bytes())?;
    std::fs::write(out.join("config.json"), VIT_B_32_CONFIG)?;
    let pre = r#"{"crop_size": 224, "do_center_crop": true, "do_normalize": true, "do_resize": true,
  "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
  "resample": 3, "size": 224}"#;
    std::fs::write(out.join("preprocessor_config.json"), pre)?;
    // The real CLIP tokenizer (the fixture's is byte-identical to the hub's).
    let tokenizer = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/tiny-clip/tokenizer.json");
    std::fs::copy(tokenizer, out.join("tokenizer.json"))?;
    let tensors = random_tensors(&config, 42)?;
    candle_core::safetensors::save(&tensors, out.join("model.safetensors"))?;
    println!("wrote {}", out.display());
    Ok(())
}
