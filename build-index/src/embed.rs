//! `build-index embed`: features of texts and images exactly as `transformers`'
//! `get_text_features` / `get_image_features` give them, printed as one JSON object.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use vitrine_clip::{Checkpoint, DEFAULT_MAX_PIXELS, DEFAULT_MODEL};

/// Arguments of `build-index embed`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// A checkpoint folder in Hugging Face layout, or a hub id.
    #[arg(long, default_value = DEFAULT_MODEL)]
    model: String,
    /// A text to embed (repeatable).
    #[arg(long = "text")]
    texts: Vec<String>,
    /// An image file to embed (repeatable).
    #[arg(long = "image")]
    images: Vec<PathBuf>,
}

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let ckpt = Checkpoint::open(&args.model)?;
    let mut text = Vec::new();
    if !args.texts.is_empty() {
        let tokenizer = ckpt.tokenizer()?;
        let encoder = ckpt.text_encoder()?;
        let ids = args
            .texts
            .iter()
            .map(|t| tokenizer.encode(t))
            .collect::<Result<Vec<_>, _>>()?;
        let batch: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        text = encoder.encode_batch(&batch)?;
    }
    let mut image = Vec::new();
    if !args.images.is_empty() {
        let pre = ckpt.preprocessor();
        let encoder = ckpt.image_encoder()?;
        let pixels = args
            .images
            .iter()
            .map(|path| {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                pre.pixels_from_bytes(&bytes, DEFAULT_MAX_PIXELS)
                    .with_context(|| path.display().to_string())
            })
            .collect::<Result<Vec<_>>>()?;
        let batch: Vec<&[f32]> = pixels.iter().map(Vec::as_slice).collect();
        image = encoder.encode_pixels(&batch)?;
    }
    #[derive(serde::Serialize)]
    struct Output {
        text: Vec<Vec<f32>>,
        image: Vec<Vec<f32>>,
    }
    println!("{}", serde_json::to_string(&Output { text, image })?);
    Ok(ExitCode::SUCCESS)
}
