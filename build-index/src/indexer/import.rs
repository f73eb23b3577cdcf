//! `--embeddings`: image embeddings computed elsewhere (clip-retrieval's distributed inference,
//! or any job writing an `.npy` and its row metadata) matched to catalogue rows by id, image path
//! or URL, so those rows skip the image tower. Errors name the file and the fix.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::npy::{self, NpyError};
use crate::catalogue::{ImageRef, Row};

/// Why precomputed embeddings cannot be used (the build stops: exit 1, like a bad catalogue).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImportError {
    /// Neither an `.npy` file nor a clip-retrieval output folder.
    #[error(
        "--embeddings {0}: neither an .npy file nor a folder holding img_emb/img_emb_*.npy; give \
         clip-retrieval's --output_folder or an .npy file"
    )]
    NotFound(PathBuf),
    /// No metadata file for an `.npy`.
    #[error(
        "{0}: no row metadata found ({1}); give --embeddings-metadata FILE (JSON Lines or CSV \
         with a column image_path, url or id)"
    )]
    NoMetadata(PathBuf, String),
    /// Only Parquet metadata, which is not read.
    #[error(
        "{0}: Parquet metadata is not read; convert it beside it to JSON Lines: python -c \
         \"import pandas as pd; pd.read_parquet('{0}').to_json('{1}', orient='records', \
         lines=True)\""
    )]
    Parquet(PathBuf, PathBuf),
    /// The file cannot be read.
    #[error("{0}: cannot read it ({1})")]
    Read(PathBuf, std::io::Error),
    /// The `.npy` is not a usable matrix.
    #[error("{0}: {1}")]
    Npy(PathBuf, NpyError),
    /// Embeddings and metadata rows differ in number.
    #[error("{npy} holds {rows} rows, {meta} {meta_rows}: they must come from the same run")]
    RowCount {
        /// The `.npy` file.
        npy: PathBuf,
        /// Its rows.
        rows: usize,
        /// The metadata file.
        meta: PathBuf,
        /// Its rows.
        meta_rows: usize,
    },
    /// Embeddings of another width than the model's.
    #[error(
        "{npy}: width {width}, the model --model {model} embeds {dim}: embed with the same model"
    )]
    Width {
        /// The `.npy` file.
        npy: PathBuf,
        /// Its width.
        width: usize,
        /// `--model`.
        model: String,
        /// The model's projection width.
        dim: usize,
    },
    /// A NaN or infinite value.
    #[error("{0}: row {1} (counted from 0) holds NaN or infinite values; embed that image again")]
    NotFinite(PathBuf, usize),
    /// A metadata file without a usable column or with a bad line.
    #[error("{0}: {1}")]
    Metadata(PathBuf, String),
}

/// Embeddings matched to catalogue rows, and notes for stderr.
#[derive(Default)]
pub(crate) struct Imported {
    /// By catalogue row number ([`Row::row`]).
    pub(crate) by_row: HashMap<usize, Vec<f32>>,
    /// What was imported and what matched nothing.
    pub(crate) notes: Vec<String>,
}

/// Keys of one metadata row.
#[derive(Debug, Default, PartialEq)]
struct Keys {
    id: Option<String>,
    image_path: Option<String>,
    url: Option<String>,
}

/// Reads every `--embeddings` source and matches its rows to `rows` (images relative to `base`).
pub(crate) fn read(
    sources: &[PathBuf],
    metadata: &[PathBuf],
    model: &str,
    dim: usize,
    rows: &[Row],
    base: &Path,
) -> Result<Imported> {
    let pairs = pairs(sources, metadata)?;
    let index = Index::new(rows, base);
    let mut imported = Imported::default();
    let (mut total, mut unmatched, mut example) = (0, 0, None);
    for (npy_path, meta_path) in &pairs {
        let bytes = std::fs::read(npy_path).map_err(|e| ImportError::Read(npy_path.clone(), e))?;
        let m = npy::parse(&bytes).map_err(|e| ImportError::Npy(npy_path.clone(), e))?;
        let keys = read_metadata(meta_path)?;
        if keys.len() != m.rows {
            Err(ImportError::RowCount {
                npy: npy_path.clone(),
                rows: m.rows,
                meta: meta_path.clone(),
                meta_rows: keys.len(),
            })?;
        }
        if m.cols != dim {
            Err(ImportError::Width {
                npy: npy_path.clone(),
                width: m.cols,
                model: model.to_string(),
                dim,
            })?;
        }
        for (i, k) in keys.iter().enumerate() {
            let v = m.row(i);
            if !v.iter().all(|x| x.is_finite()) {
                Err(ImportError::NotFinite(npy_path.clone(), i))?;
            }
            let matched = index.find(k);
            total += 1;
            if matched.is_empty() {
                unmatched += 1;
                example.get_or_insert_with(|| format!("{k:?}"));
            }
            for row in matched {
                imported.by_row.insert(row, v.to_vec());
            }
        }
    }
    imported.notes.push(format!(
        "imported {total} embeddings from {} file(s): {} catalogue rows will not be embedded",
        pairs.len(),
        imported.by_row.len()
    ));
    if let Some(e) = example {
        imported.notes.push(format!(
            "{unmatched} imported embeddings name no catalogue row (e.g. {e}); they are not used"
        ));
    }
    Ok(imported)
}

/// Each `.npy` with its metadata file.
fn pairs(sources: &[PathBuf], metadata: &[PathBuf]) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut given = metadata.iter();
    let mut out = Vec::new();
    for src in sources {
        if src.is_dir() {
            let folder = src.join("img_emb");
            let mut npys: Vec<PathBuf> = std::fs::read_dir(&folder)
                .map_err(|_| ImportError::NotFound(src.clone()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "npy"))
                .collect();
            npys.sort();
            if npys.is_empty() {
                Err(ImportError::NotFound(src.clone()))?;
            }
            for npy in npys {
                let stem = npy.file_stem().unwrap_or_default().to_string_lossy();
                let part = stem.strip_prefix("img_emb_").unwrap_or(&stem);
                let meta = src.join("metadata").join(format!("metadata_{part}"));
                out.push((npy.clone(), beside(&npy, &meta)?));
            }
        } else if src.is_file() {
            let meta = match given.next() {
                Some(m) => m.clone(),
                None => beside(src, &src.with_extension(""))?,
            };
            out.push((src.clone(), meta));
        } else {
            Err(ImportError::NotFound(src.clone()))?;
        }
    }
    if given.next().is_some() {
        return Err(crate::UsageError(anyhow::anyhow!(
            "more --embeddings-metadata than .npy files given to --embeddings; give one per .npy, \
             in the same order"
        ))
        .into());
    }
    Ok(out)
}

/// The metadata file `stem.jsonl` or `stem.csv`.
fn beside(npy: &Path, stem: &Path) -> Result<PathBuf, ImportError> {
    let with = |ext: &str| PathBuf::from(format!("{}.{ext}", stem.display()));
    if let Some(found) = ["jsonl", "csv"].map(with).into_iter().find(|p| p.is_file()) {
        return Ok(found);
    }
    if with("parquet").is_file() {
        return Err(ImportError::Parquet(with("parquet"), with("jsonl")));
    }
    Err(ImportError::NoMetadata(
        npy.to_path_buf(),
        format!("looked for {}", with("jsonl").display()),
    ))
}

/// The keys of every row of a JSON Lines or CSV metadata file.
fn read_metadata(path: &Path) -> Result<Vec<Keys>, ImportError> {
    let bytes = std::fs::read(path).map_err(|e| ImportError::Read(path.to_path_buf(), e))?;
    let bad = |why: String| ImportError::Metadata(path.to_path_buf(), why);
    let keys: Vec<Keys> = if path.extension().is_some_and(|e| e == "csv") {
        let mut reader = csv::Reader::from_reader(&bytes[..]);
        let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
        let col = |name: &str| headers.iter().position(|h| h.trim() == name);
        let (id, image, url) = (col("id"), col("image_path"), col("url"));
        let mut keys = Vec::new();
        for record in reader.records() {
            let r = record.map_err(|e| bad(e.to_string()))?;
            let get = |c: Option<usize>| c.and_then(|c| r.get(c)).map(str::to_string);
            keys.push(Keys {
                id: get(id),
                image_path: get(image),
                url: get(url),
            });
        }
        keys
    } else {
        let text = String::from_utf8_lossy(&bytes);
        let lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let mut keys = Vec::new();
        for (n, line) in lines {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                bad(format!(
                    "line {}: {e}; write one JSON object per line",
                    n + 1
                ))
            })?;
            let get = |k: &str| match v.get(k)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            };
            keys.push(Keys {
                id: get("id"),
                image_path: get("image_path"),
                url: get("url"),
            });
        }
        keys
    };
    if keys
        .iter()
        .any(|k| k.id.is_none() && k.image_path.is_none() && k.url.is_none())
    {
        return Err(bad(
            "a row has none of the columns image_path, url and id, so it cannot be matched to \
             the catalogue; write one of them for every row"
                .into(),
        ));
    }
    Ok(keys)
}

/// Catalogue rows by id, by image path (as resolved and canonical) and by URL.
struct Index<'a> {
    base: &'a Path,
    ids: HashMap<&'a str, usize>,
    images: HashMap<String, Vec<usize>>,
    canonical: HashMap<PathBuf, Vec<usize>>,
}

impl<'a> Index<'a> {
    fn new(rows: &'a [Row], base: &'a Path) -> Self {
        let mut index = Self {
            base,
            ids: rows.iter().map(|r| (r.id.as_str(), r.row)).collect(),
            images: HashMap::new(),
            canonical: HashMap::new(),
        };
        for r in rows {
            let key = match &r.image {
                ImageRef::Url(u) => u.clone(),
                ImageRef::Path(p) => {
                    if let Ok(c) = p.canonicalize() {
                        index.canonical.entry(c).or_default().push(r.row);
                    }
                    p.to_string_lossy().into_owned()
                }
            };
            index.images.entry(key).or_default().push(r.row);
        }
        index
    }

    /// The rows a metadata row names: by id, else by image path or URL.
    fn find(&self, k: &Keys) -> Vec<usize> {
        if let Some(&row) = k.id.as_deref().and_then(|id| self.ids.get(id)) {
            return vec![row];
        }
        for image in [&k.image_path, &k.url].into_iter().flatten() {
            if let Some(rows) = self.images.get(image.as_str()) {
                return rows.clone();
            }
            let joined = self.base.join(image);
            if let Some(rows) = self.images.get(joined.to_string_lossy().as_ref()) {
                return rows.clone();
            }
            // An absolute path, or one relative to where the embedding job ran.
            for path in [joined.as_path(), Path::new(image)] {
                if let Some(rows) = path
                    .canonicalize()
                    .ok()
                    .and_then(|c| self.canonical.get(&c))
                {
                    return rows.clone();
                }
            }
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests;
