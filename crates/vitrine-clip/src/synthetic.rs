//! Full-size CLIP checkpoints filled with seeded random weights, for benchmarks only: real weights
//! cannot be downloaded everywhere, and speed depends on the sizes, not the values. The tensor
//! names and shapes are exactly those of a Hugging Face `CLIPModel`.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use crate::Result;
use crate::config::ClipConfig;
use crate::shapes::tensor_shapes;

/// The sizes of `openai/clip-vit-base-patch32` (its `config.json`, trimmed to what is read).
pub const VIT_B_32_CONFIG: &str = r#"{
  "architectures": ["CLIPModel"],
  "model_type": "clip",
  "projection_dim": 512,
  "logit_scale_init_value": 2.6592,
  "text_config": {
    "hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
    "num_attention_heads": 8, "max_position_embeddings": 77, "vocab_size": 49408,
    "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05, "eos_token_id": 2,
    "bos_token_id": 0, "pad_token_id": 1, "projection_dim": 512
  },
  "vision_config": {
    "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
    "num_attention_heads": 12, "image_size": 224, "patch_size": 32, "num_channels": 3,
    "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05, "projection_dim": 512
  }
}"#;

/// Seeded random tensors for every weight: N(0, 0.02)-like matrices, unit layer-norm scales,
/// small biases, `logit_scale = ln(100)`. Deterministic for a given seed.
pub fn random_tensors(c: &ClipConfig, seed: u64) -> Result<HashMap<String, Tensor>> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        // xorshift64*, mapped to roughly uniform [-0.035, 0.035) (std 0.02).
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        (r as f32 / (1u64 << 24) as f32 - 0.5) * 0.0693
    };
    let mut out = HashMap::new();
    for (name, shape) in tensor_shapes(c) {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = if name == "logit_scale" {
            vec![100f32.ln()]
        } else if name.contains("norm") && name.ends_with(".weight") {
            (0..n).map(|_| 1.0 + next()).collect()
        } else {
            (0..n).map(|_| next()).collect()
        };
        out.insert(name, Tensor::from_vec(values, shape, &Device::Cpu)?);
    }
    Ok(out)
}

/// Writes a checkpoint folder in Hugging Face layout (`config.json`, `preprocessor_config.json`,
/// `model.safetensors` with [`random_tensors`], and the given `tokenizer.json`): benchmarks at
/// full size, tests at odd sizes.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_checkpoint(
    out: &std::path::Path,
    config_json: &str,
    tokenizer_json: &[u8],
    seed: u64,
) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let config = ClipConfig::from_json(config_json.as_bytes())?;
    std::fs::write(out.join("config.json"), config_json)?;
    let size = config.vision.image_size;
    let pre = format!(
        r#"{{"crop_size": {size}, "do_center_crop": true, "do_normalize": true, "do_resize": true,
  "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
  "resample": 3, "size": {size}}}"#
    );
    std::fs::write(out.join("preprocessor_config.json"), pre)?;
    std::fs::write(out.join("tokenizer.json"), tokenizer_json)?;
    let tensors = random_tensors(&config, seed)?;
    candle_core::safetensors::save(&tensors, out.join("model.safetensors"))?;
    Ok(())
}
