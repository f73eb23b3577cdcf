//! Downloads a checkpoint from the Hugging Face hub into the standard cache, once.
//! Honours `HF_HOME` (cache location), `HF_ENDPOINT` (mirror) and `HF_HUB_OFFLINE` (cache only).

use std::path::PathBuf;

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

use crate::{Error, Result};

/// What to do when the hub cannot be reached.
const OFFLINE_HINT: &str = "download the model on a machine that is online (or copy its folder: \
     config.json, model.safetensors, tokenizer.json, preprocessor_config.json) and pass the folder \
     with --model DIR";

/// Whether `HF_HUB_OFFLINE` asks for cache-only operation.
fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
        .unwrap_or(false)
}

enum Fetch {
    Found(PathBuf),
    NotFound,
}

/// Fetches `spec` (`owner/name` or `owner/name@revision`) and returns its snapshot directory.
pub(crate) fn download(spec: &str) -> Result<PathBuf> {
    let (id, revision) = spec.split_once('@').unwrap_or((spec, "main"));
    if id.split('/').count() > 2 || id.is_empty() {
        return Err(Error::Checkpoint(format!(
            "--model {spec}: not a folder and not a hub id (owner/name)"
        )));
    }
    let repo = Repo::with_revision(id.to_string(), RepoType::Model, revision.to_string());
    let cache = Cache::from_env();
    let api = if offline() {
        None
    } else {
        Some(
            ApiBuilder::from_env()
                .with_progress(true)
                .build()
                .map_err(|e| Error::Checkpoint(format!("cannot start the hub client: {e}")))?,
        )
    };
    let fetch = |file: &str| -> Result<Fetch> {
        if let Some(path) = cache.repo(repo.clone()).get(file) {
            return Ok(Fetch::Found(path));
        }
        let Some(api) = &api else {
            return Ok(Fetch::NotFound);
        };
        match api.repo(repo.clone()).get(file) {
            Ok(path) => Ok(Fetch::Found(path)),
            Err(ApiError::RequestError(e)) if matches!(*e, ureq::Error::Status(404, _)) => {
                Ok(Fetch::NotFound)
            }
            Err(ApiError::RequestError(e)) if matches!(*e, ureq::Error::Status(..)) => {
                Err(Error::Checkpoint(format!(
                    "the Hugging Face hub refused {file} of {spec} ({e}); check the id, and for a \
                     private or gated model log in (HF_TOKEN or `huggingface-cli login`)"
                )))
            }
            Err(e) => Err(Error::Checkpoint(format!(
                "could not reach the Hugging Face hub to download {file} of {spec} ({e}); {OFFLINE_HINT}"
            ))),
        }
    };
    let config = match fetch("config.json")? {
        Fetch::Found(path) => path,
        Fetch::NotFound if api.is_none() => {
            return Err(Error::Checkpoint(format!(
                "{spec} is not in the Hugging Face cache ({}) and HF_HUB_OFFLINE is set; \
                 unset it to download, or {OFFLINE_HINT}",
                cache.path().display()
            )));
        }
        Fetch::NotFound => {
            return Err(Error::Checkpoint(format!(
                "{spec} has no config.json on the Hugging Face hub; is it a CLIPModel checkpoint?"
            )));
        }
    };
    let dir = config.parent().map(PathBuf::from).unwrap_or_default();
    let missing = |what: &str| {
        if api.is_none() {
            Error::Checkpoint(format!(
                "{what} of {spec} is not in the Hugging Face cache ({}) and HF_HUB_OFFLINE is set; \
                 unset it to download, or {OFFLINE_HINT}",
                cache.path().display()
            ))
        } else {
            Error::Checkpoint(format!("{spec} has no {what} on the Hugging Face hub"))
        }
    };
    // Optional: without it, OpenAI's preprocessing at the model's image size is used.
    fetch("preprocessor_config.json")?;
    if let Fetch::NotFound = fetch("tokenizer.json")? {
        return Err(missing("tokenizer.json"));
    }
    if let Fetch::Found(index) = fetch("model.safetensors.index.json")? {
        let names = crate::checkpoint::shard_names(&std::fs::read(&index)?)?;
        for name in names {
            if let Fetch::NotFound = fetch(&name)? {
                return Err(missing(&name));
            }
        }
    } else if let Fetch::NotFound = fetch("model.safetensors")?
        && let Fetch::NotFound = fetch("pytorch_model.bin")?
    {
        return Err(missing("model.safetensors (or pytorch_model.bin)"));
    }
    Ok(dir)
}
