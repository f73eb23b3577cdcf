//! Writes a full-size `openai/clip-vit-base-patch32`-shaped checkpoint folder with seeded random
//! weights, for benchmarks where the real weights cannot be downloaded:
//! `cargo run --release -p vitrine-clip --example random_checkpoint -- OUT_DIR`.
//! Speed depends on the sizes only; rankings from it mean nothing. Never commit its output.

#![allow(clippy::print_stdout)]

#[cfg(not(target_arch = "wasm32"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::path::PathBuf;

    use vitrine_clip::synthetic::{VIT_B_32_CONFIG, write_checkpoint};

    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: random_checkpoint OUT_DIR")?,
    );
    // The real CLIP tokenizer (the fixture's is byte-identical to the hub's).
    let tokenizer = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/tiny-clip/tokenizer.json"),
    )?;
    write_checkpoint(&out, VIT_B_32_CONFIG, &tokenizer, 42)?;
    println!("wrote {}", out.display());
    Ok(())
}

// Writing files is a native job: there is nothing to run in wasm.
#[cfg(target_arch = "wasm32")]
fn main() {}
