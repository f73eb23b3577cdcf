//! The checkpoint's `config.json` and `preprocessor_config.json`, read as Hugging Face writes them.
//! Every size of the model comes from here; nothing about ViT-B/32 is hard-coded, so any
//! `CLIPModel` checkpoint (and the tiny test fixture) loads through the same code.

use serde::{Deserialize, Serialize};

use crate::Error;

/// The activation of the feed-forward blocks (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Activation {
    /// `quick_gelu`: `x * sigmoid(1.702 x)`, used by OpenAI's CLIP checkpoints.
    QuickGelu,
    /// `gelu`: the exact (erf) GELU, used by many LAION/OpenCLIP conversions.
    Gelu,
}

impl Activation {
    fn parse(name: &str, tower: &str) -> Result<Self, Error> {
        match name {
            "quick_gelu" => Ok(Self::QuickGelu),
            "gelu" => Ok(Self::Gelu),
            other => Err(Error::Config(format!(
                "{tower}.hidden_act is \"{other}\"; vitrine supports \"quick_gelu\" and \"gelu\""
            ))),
        }
    }

    /// The name used in `config.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QuickGelu => "quick_gelu",
            Self::Gelu => "gelu",
        }
    }
}

/// The sizes shared by both towers' transformer encoders.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderConfig {
    /// Width of the residual stream (`hidden_size`).
    pub hidden_size: usize,
    /// Width of the feed-forward layer (`intermediate_size`).
    pub intermediate_size: usize,
    /// Number of transformer layers (`num_hidden_layers`).
    pub num_hidden_layers: usize,
    /// Number of attention heads (`num_attention_heads`).
    pub num_attention_heads: usize,
    /// The feed-forward activation (`hidden_act`).
    pub activation: Activation,
    /// Epsilon of every layer norm (`layer_norm_eps`).
    pub layer_norm_eps: f64,
}

/// `text_config` of a `CLIPModel`.
#[derive(Debug, Clone, PartialEq)]
pub struct TextConfig {
    /// The transformer sizes.
    pub encoder: EncoderConfig,
    /// Vocabulary size (rows of the token embedding).
    pub vocab_size: usize,
    /// Maximum sequence length (rows of the position embedding), 77 for OpenAI CLIP.
    pub max_position_embeddings: usize,
    /// `eos_token_id`; the legacy value 2 means "pool at the largest input id".
    pub eos_token_id: u32,
}

/// `vision_config` of a `CLIPModel`.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionConfig {
    /// The transformer sizes.
    pub encoder: EncoderConfig,
    /// Side of the square input image in pixels.
    pub image_size: usize,
    /// Side of a square patch in pixels.
    pub patch_size: usize,
    /// Input channels (3).
    pub num_channels: usize,
}

impl VisionConfig {
    /// Number of positions: one per patch plus the class token.
    pub fn num_positions(&self) -> usize {
        (self.image_size / self.patch_size).pow(2) + 1
    }
}

/// The whole model's configuration, as read from `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipConfig {
    /// The text tower.
    pub text: TextConfig,
    /// The vision tower.
    pub vision: VisionConfig,
    /// Width of the shared embedding space (`projection_dim`).
    pub projection_dim: usize,
    /// `logit_scale_init_value`: informational only, the checkpoint's `logit_scale` tensor is used.
    pub logit_scale_init_value: f64,
}

#[derive(Deserialize)]
struct RawEncoder {
    hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    hidden_act: Option<String>,
    layer_norm_eps: Option<f64>,
    // text
    vocab_size: Option<usize>,
    max_position_embeddings: Option<usize>,
    eos_token_id: Option<u32>,
    // vision
    image_size: Option<usize>,
    patch_size: Option<usize>,
    num_channels: Option<usize>,
}

#[derive(Deserialize)]
struct RawConfig {
    text_config: Option<RawEncoder>,
    vision_config: Option<RawEncoder>,
    projection_dim: Option<usize>,
    logit_scale_init_value: Option<f64>,
}

/// Transformers' defaults for `CLIPTextConfig` / `CLIPVisionConfig`: a key absent from
/// `config.json` means this value, exactly as `CLIPConfig.from_pretrained` reads it.
mod defaults {
    pub(super) const TEXT: [(&str, usize); 5] = [
        ("hidden_size", 512),
        ("intermediate_size", 2048),
        ("num_hidden_layers", 12),
        ("num_attention_heads", 8),
        ("vocab_size", 49408),
    ];
    pub(super) const VISION: [(&str, usize); 4] = [
        ("hidden_size", 768),
        ("intermediate_size", 3072),
        ("num_hidden_layers", 12),
        ("num_attention_heads", 12),
    ];
    pub(super) fn get(table: &[(&str, usize)], key: &str) -> usize {
        table
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    }
}

impl RawEncoder {
    fn encoder(&self, tower: &str, table: &[(&str, usize)]) -> Result<EncoderConfig, Error> {
        let pick = |v: Option<usize>, key: &str| v.unwrap_or_else(|| defaults::get(table, key));
        let enc = EncoderConfig {
            hidden_size: pick(self.hidden_size, "hidden_size"),
            intermediate_size: pick(self.intermediate_size, "intermediate_size"),
            num_hidden_layers: pick(self.num_hidden_layers, "num_hidden_layers"),
            num_attention_heads: pick(self.num_attention_heads, "num_attention_heads"),
            activation: Activation::parse(
                self.hidden_act.as_deref().unwrap_or("quick_gelu"),
                tower,
            )?,
            layer_norm_eps: self.layer_norm_eps.unwrap_or(1e-5),
        };
        if enc.num_attention_heads == 0 || !enc.hidden_size.is_multiple_of(enc.num_attention_heads)
        {
            return Err(Error::Config(format!(
                "{tower}.hidden_size ({}) is not a multiple of num_attention_heads ({})",
                enc.hidden_size, enc.num_attention_heads
            )));
        }
        Ok(enc)
    }
}

impl ClipConfig {
    /// Parses a `CLIPModel` `config.json`.
    pub fn from_json(json: &[u8]) -> Result<Self, Error> {
        let raw: RawConfig = serde_json::from_slice(json)
            .map_err(|e| Error::Config(format!("config.json is not valid JSON: {e}")))?;
        let text_raw = raw.text_config.ok_or_else(|| {
            Error::Config(
                "config.json has no \"text_config\"; is this a CLIPModel checkpoint?".into(),
            )
        })?;
        let vision_raw = raw.vision_config.ok_or_else(|| {
            Error::Config(
                "config.json has no \"vision_config\"; is this a CLIPModel checkpoint?".into(),
            )
        })?;
        let text = TextConfig {
            encoder: text_raw.encoder("text_config", &defaults::TEXT)?,
            vocab_size: text_raw.vocab_size.unwrap_or(49408),
            max_position_embeddings: text_raw.max_position_embeddings.unwrap_or(77),
            eos_token_id: text_raw.eos_token_id.unwrap_or(2),
        };
        let vision = VisionConfig {
            encoder: vision_raw.encoder("vision_config", &defaults::VISION)?,
            image_size: vision_raw.image_size.unwrap_or(224),
            patch_size: vision_raw.patch_size.unwrap_or(32),
            num_channels: vision_raw.num_channels.unwrap_or(3),
        };
        if vision.patch_size == 0 || !vision.image_size.is_multiple_of(vision.patch_size) {
            return Err(Error::Config(format!(
                "vision_config.image_size ({}) is not a multiple of patch_size ({})",
                vision.image_size, vision.patch_size
            )));
        }
        if vision.num_channels != 3 {
            return Err(Error::Config(format!(
                "vision_config.num_channels is {}; CLIP images are RGB (3)",
                vision.num_channels
            )));
        }
        Ok(Self {
            text,
            vision,
            projection_dim: raw.projection_dim.unwrap_or(512),
            logit_scale_init_value: raw.logit_scale_init_value.unwrap_or(2.6592),
        })
    }
}

/// A size in `preprocessor_config.json`: a number or `{"shortest_edge": n}` / `{"height", "width"}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawSize {
    Int(usize),
    Map {
        shortest_edge: Option<usize>,
        height: Option<usize>,
        width: Option<usize>,
    },
}

#[derive(Deserialize)]
struct RawPreprocessor {
    do_resize: Option<bool>,
    size: Option<RawSize>,
    resample: Option<u32>,
    do_center_crop: Option<bool>,
    crop_size: Option<RawSize>,
    do_rescale: Option<bool>,
    rescale_factor: Option<f64>,
    do_normalize: Option<bool>,
    image_mean: Option<[f64; 3]>,
    image_std: Option<[f64; 3]>,
}

/// What `CLIPImageProcessor` does to an image, from `preprocessor_config.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreprocessConfig {
    /// Resize so the shortest edge has this many pixels (`None`: no resize).
    pub shortest_edge: Option<usize>,
    /// Centre-crop to this height and width (`None`: no crop).
    pub crop: Option<(usize, usize)>,
    /// Multiply pixel values by this (1/255), if rescaling.
    pub rescale_factor: Option<f64>,
    /// Per-channel mean and standard deviation, if normalising.
    pub mean_std: Option<([f64; 3], [f64; 3])>,
}

impl Default for PreprocessConfig {
    /// OpenAI CLIP at 224 pixels: the values of `openai/clip-vit-base-patch32`.
    fn default() -> Self {
        Self {
            shortest_edge: Some(224),
            crop: Some((224, 224)),
            rescale_factor: Some(1.0 / 255.0),
            mean_std: Some((OPENAI_MEAN, OPENAI_STD)),
        }
    }
}

/// OpenAI's per-channel image mean.
pub(crate) const OPENAI_MEAN: [f64; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// OpenAI's per-channel image standard deviation.
pub(crate) const OPENAI_STD: [f64; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

impl PreprocessConfig {
    /// Parses `preprocessor_config.json`; absent keys take `CLIPImageProcessor`'s defaults.
    pub fn from_json(json: &[u8]) -> Result<Self, Error> {
        let raw: RawPreprocessor = serde_json::from_slice(json).map_err(|e| {
            Error::Config(format!("preprocessor_config.json is not valid JSON: {e}"))
        })?;
        if let Some(r) = raw.resample
            && r != 3
        {
            return Err(Error::Config(format!(
                "preprocessor_config.json asks for resample={r}; vitrine implements CLIP's bicubic (3)"
            )));
        }
        let shortest_edge = match (raw.do_resize.unwrap_or(true), raw.size) {
            (false, _) => None,
            (true, None) => Some(224),
            (true, Some(RawSize::Int(n))) => Some(n),
            (
                true,
                Some(RawSize::Map {
                    shortest_edge: Some(n),
                    ..
                }),
            ) => Some(n),
            (true, Some(RawSize::Map { .. })) => {
                return Err(Error::Config(
                    "preprocessor_config.json: size must be a number or {\"shortest_edge\": n}"
                        .into(),
                ));
            }
        };
        let crop = match (raw.do_center_crop.unwrap_or(true), raw.crop_size) {
            (false, _) => None,
            (true, None) => Some((224, 224)),
            (true, Some(RawSize::Int(n))) => Some((n, n)),
            (
                true,
                Some(RawSize::Map {
                    height: Some(h),
                    width: Some(w),
                    ..
                }),
            ) => Some((h, w)),
            (
                true,
                Some(RawSize::Map {
                    shortest_edge: Some(n),
                    ..
                }),
            ) => Some((n, n)),
            (true, Some(RawSize::Map { .. })) => {
                return Err(Error::Config(
                    "preprocessor_config.json: crop_size must be a number or {\"height\", \"width\"}"
                        .into(),
                ));
            }
        };
        let rescale_factor = raw
            .do_rescale
            .unwrap_or(true)
            .then(|| raw.rescale_factor.unwrap_or(1.0 / 255.0));
        let mean_std = raw.do_normalize.unwrap_or(true).then(|| {
            (
                raw.image_mean.unwrap_or(OPENAI_MEAN),
                raw.image_std.unwrap_or(OPENAI_STD),
            )
        });
        Ok(Self {
            shortest_edge,
            crop,
            rescale_factor,
            mean_std,
        })
    }

    /// Checks that the processed image has the size the vision tower expects.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn check_against(&self, vision: &VisionConfig) -> Result<(), Error> {
        let want = vision.image_size;
        match self.crop {
            Some((h, w)) if h == want && w == want => Ok(()),
            Some((h, w)) => Err(Error::Config(format!(
                "preprocessor_config.json crops to {w}x{h} but vision_config.image_size is {want}"
            ))),
            None => Err(Error::Config(
                "preprocessor_config.json has do_center_crop=false; vitrine needs square crops"
                    .into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_activation_is_a_clear_error() {
        let json = br#"{"text_config": {"hidden_act": "silu"}, "vision_config": {}}"#;
        let err = ClipConfig::from_json(json).unwrap_err().to_string();
        assert!(err.contains("text_config.hidden_act is \"silu\""), "{err}");
    }

    #[test]
    fn absent_keys_take_transformers_defaults() {
        let cfg = ClipConfig::from_json(br#"{"text_config": {}, "vision_config": {}}"#).unwrap();
        assert_eq!(cfg.text.encoder.hidden_size, 512);
        assert_eq!(cfg.vision.encoder.hidden_size, 768);
        assert_eq!(cfg.vision.num_positions(), 50);
        assert_eq!(cfg.projection_dim, 512);
    }

    #[test]
    fn preprocessor_sizes_accept_numbers_and_maps() {
        let a = PreprocessConfig::from_json(br#"{"size": 64, "crop_size": 64}"#).unwrap();
        let b = PreprocessConfig::from_json(
            br#"{"size": {"shortest_edge": 64}, "crop_size": {"height": 64, "width": 64}}"#,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.shortest_edge, Some(64));
    }
}
