//! Finding a Hugging Face `CLIPModel` checkpoint on disk or on the hub (native only).
//! A local directory is used as it is; a hub id is downloaded once into the standard Hugging Face
//! cache (`HF_HOME`), and `HF_HUB_OFFLINE=1` reads that cache without touching the network.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::config::{ClipConfig, PreprocessConfig};
use crate::preprocess::Preprocessor;
use crate::text::TextEncoder;
use crate::tokenize::ClipTokenizer;
use crate::vision::ImageEncoder;
use crate::{Error, Result};

/// The model `build-index` uses when `--model` is not given.
pub const DEFAULT_MODEL: &str = "openai/clip-vit-base-patch32";

/// The weight files of a checkpoint, in the order they are tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Weights {
    /// One or more safetensors files (several when sharded).
    Safetensors(Vec<PathBuf>),
    /// A PyTorch pickle (`pytorch_model.bin`), for checkpoints published without safetensors.
    Pytorch(PathBuf),
}

/// A resolved checkpoint: its files, parsed configs, and where it came from.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The `--model` argument as given (a directory or a hub id).
    pub source: String,
    /// Directory holding `config.json` (a local folder or a hub cache snapshot).
    pub dir: PathBuf,
    /// The weight files.
    pub weights: Weights,
    /// The parsed `config.json`.
    pub config: ClipConfig,
    /// The parsed `preprocessor_config.json` (OpenAI's defaults at the model's size if absent).
    pub preprocess: PreprocessConfig,
}

impl Checkpoint {
    /// Opens `spec`: an existing directory, else a hub id such as `openai/clip-vit-base-patch32`
    /// (optionally `id@revision`).
    pub fn open(spec: &str) -> Result<Self> {
        let path = Path::new(spec);
        if path.is_dir() {
            return Self::from_dir(spec, path);
        }
        if path.exists() || spec.starts_with('.') || spec.starts_with('/') || spec.contains('\\') {
            return Err(Error::Checkpoint(format!(
                "--model {spec}: not a directory; pass a folder holding config.json and \
                 model.safetensors, or a Hugging Face hub id like {DEFAULT_MODEL}"
            )));
        }
        let dir = crate::hub::download(spec)?;
        Self::from_dir(spec, &dir)
    }

    /// Opens a checkpoint folder in Hugging Face layout.
    pub fn from_dir(source: &str, dir: &Path) -> Result<Self> {
        let config_path = dir.join("config.json");
        let config_bytes = read(&config_path)?;
        let config = ClipConfig::from_json(&config_bytes).map_err(|e| e.in_file(&config_path))?;
        let pre_path = dir.join("preprocessor_config.json");
        let preprocess = if pre_path.exists() {
            PreprocessConfig::from_json(&read(&pre_path)?).map_err(|e| e.in_file(&pre_path))?
        } else {
            let s = config.vision.image_size;
            PreprocessConfig {
                shortest_edge: Some(s),
                crop: Some((s, s)),
                ..PreprocessConfig::default()
            }
        };
        preprocess
            .check_against(&config.vision)
            .map_err(|e| e.in_file(&pre_path))?;
        let weights = find_weights(dir)?;
        Ok(Self {
            source: source.to_string(),
            dir: dir.to_path_buf(),
            weights,
            config,
            preprocess,
        })
    }

    /// A name for the model that is safe to publish: the hub id, or a local folder's own name
    /// (never the path, which would leak the machine's layout and vary between checkouts).
    pub fn name(&self) -> String {
        let local = Path::new(&self.source);
        if local.is_dir() {
            let canonical = local.canonicalize().unwrap_or_else(|_| local.to_path_buf());
            if let Some(n) = canonical.file_name() {
                return n.to_string_lossy().into_owned();
            }
        }
        self.source.clone()
    }

    /// A `VarBuilder` over all weights, converting f16/bf16 to f32.
    pub fn var_builder(&self) -> Result<VarBuilder<'static>> {
        let device = Device::Cpu;
        let vb = match &self.weights {
            // SAFETY: the files are memory-mapped read-only; like every safetensors reader we rely
            // on nobody truncating them while the model is being loaded.
            #[allow(unsafe_code)]
            Weights::Safetensors(files) => unsafe {
                VarBuilder::from_mmaped_safetensors(files, DType::F32, &device)?
            },
            Weights::Pytorch(file) => VarBuilder::from_pth(file, DType::F32, &device)?,
        };
        Ok(vb)
    }

    /// The text tower.
    pub fn text_encoder(&self) -> Result<TextEncoder> {
        TextEncoder::new(self.var_builder()?, &self.config).map_err(|e| self.in_weights(e))
    }

    /// The vision tower.
    pub fn image_encoder(&self) -> Result<ImageEncoder> {
        ImageEncoder::new(self.var_builder()?, &self.config).map_err(|e| self.in_weights(e))
    }

    /// The tokenizer, truncating to the model's positions.
    pub fn tokenizer(&self) -> Result<ClipTokenizer> {
        let path = self.dir.join("tokenizer.json");
        ClipTokenizer::from_bytes(&read(&path)?, self.config.text.max_position_embeddings)
            .map_err(|e| e.in_file(&path))
    }

    /// The image preprocessor.
    pub fn preprocessor(&self) -> Preprocessor {
        Preprocessor::new(self.preprocess.clone())
    }

    /// Every file the checkpoint's identity depends on: config, preprocessor config, weights.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.dir.join("config.json")];
        let pre = self.dir.join("preprocessor_config.json");
        if pre.exists() {
            files.push(pre);
        }
        match &self.weights {
            Weights::Safetensors(f) => files.extend(f.iter().cloned()),
            Weights::Pytorch(f) => files.push(f.clone()),
        }
        files
    }

    /// The page's text encoder: `text_model.*` and `text_projection` in f16 (half the download;
    /// the page computes in f32) and `logit_scale` in f32, as deterministic safetensors bytes.
    pub fn export_text_encoder(&self) -> Result<Vec<u8>> {
        let vb = self.var_builder()?;
        let mut tensors = Vec::new();
        for (name, shape) in crate::shapes::tensor_shapes(&self.config) {
            let dtype = match name.as_str() {
                "logit_scale" => DType::F32,
                n if n.starts_with("text_model.") || n.starts_with("text_projection.") => {
                    DType::F16
                }
                _ => continue,
            };
            let t = match vb.get(shape.as_slice(), &name) {
                // Some checkpoints store the scalar logit_scale as a one-element vector.
                Err(_) if name == "logit_scale" => vb.get(1, &name)?.reshape(())?,
                t => t?,
            };
            tensors.push((name, t.to_dtype(dtype)?));
        }
        safetensors::serialize(tensors, None)
            .map_err(|e| Error::Checkpoint(format!("cannot serialise the text encoder: {e}")))
    }

    /// Identifies the model's exact weights and preprocessing: SHA-256 over every file
    /// [`Checkpoint::files`] lists (names and contents).
    pub fn fingerprint(&self) -> Result<[u8; 32]> {
        use sha2::{Digest, Sha256};
        use std::io::Read;
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        for path in self.files() {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            hash.update(name.as_bytes());
            hash.update([0]);
            let mut f = std::fs::File::open(&path)
                .map_err(|e| Error::Checkpoint(format!("cannot read {}: {e}", path.display())))?;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hash.update(&buf[..n]);
            }
        }
        Ok(hash.finalize().into())
    }

    fn in_weights(&self, e: Error) -> Error {
        let names = match &self.weights {
            Weights::Safetensors(f) => f.iter().map(|p| p.display().to_string()).collect(),
            Weights::Pytorch(f) => vec![f.display().to_string()],
        };
        e.in_file(Path::new(&names.join(", ")))
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::Checkpoint(format!("cannot read {}: {e}", path.display())))
}

/// Picks the weight files: a sharded index, a single safetensors, or a PyTorch pickle.
fn find_weights(dir: &Path) -> Result<Weights> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        return Ok(Weights::Safetensors(shards(dir, &index)?));
    }
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(Weights::Safetensors(vec![single]));
    }
    let bin = dir.join("pytorch_model.bin");
    if bin.exists() {
        return Ok(Weights::Pytorch(bin));
    }
    Err(Error::Checkpoint(format!(
        "{} has no model.safetensors, model.safetensors.index.json or pytorch_model.bin",
        dir.display()
    )))
}

/// The distinct shard files listed by `model.safetensors.index.json`, in first-seen order.
pub(crate) fn shards(dir: &Path, index: &Path) -> Result<Vec<PathBuf>> {
    let names = shard_names(&read(index)?).map_err(|e| e.in_file(index))?;
    let files: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    if let Some(missing) = files.iter().find(|f| !f.exists()) {
        return Err(Error::Checkpoint(format!(
            "{} lists {}, which is missing",
            index.display(),
            missing.display()
        )));
    }
    Ok(files)
}

/// Parses the shard file names out of a safetensors index.
pub(crate) fn shard_names(json: &[u8]) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let index: Index = serde_json::from_slice(json)
        .map_err(|e| Error::Checkpoint(format!("not a safetensors index: {e}")))?;
    let mut names: Vec<String> = Vec::new();
    for file in index.weight_map.into_values() {
        if !names.contains(&file) {
            names.push(file);
        }
    }
    Ok(names)
}
