//! The embedding pipeline: worker threads read (or download), hash, decode, thumbnail and
//! preprocess images while the main thread runs the image tower on batches. Batches are formed
//! in catalogue order whatever order workers finish in, so equal inputs give equal bytes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;

use anyhow::Result;
use sha2::{Digest, Sha256};
use vitrine_clip::{ImageEncoder, Preprocessor};

use super::cache::{EmbeddingCache, ImageHash, ThumbCache};
use super::progress::Progress;
use super::thumbs;
use crate::catalogue::{ImageRef, Row};
use crate::fetch::Fetcher;

/// Files over this size are refused before reading: no catalogue image needs 256 MB.
const MAX_FILE_BYTES: u64 = 256 << 20;

/// What became of one row's image.
pub(crate) enum ImageOutcome {
    /// Embedded (or taken from the cache) with its thumbnail.
    Done {
        /// Projected image features (not normalised).
        embedding: Vec<f32>,
        /// JPEG thumbnail.
        thumb: Vec<u8>,
        /// Whether the embedding came from the cache.
        reused: bool,
    },
    /// Unusable; the reason is shown to the maintainer.
    Failed(String),
}

enum Prepared {
    Failed(String),
    Cached {
        embedding: Vec<f32>,
        thumb: Vec<u8>,
    },
    Pending {
        hash: ImageHash,
        pixels: Vec<f32>,
        thumb: Vec<u8>,
    },
}

/// Settings of one pipeline run.
pub(crate) struct Settings<'a> {
    pub(crate) preprocessor: &'a Preprocessor,
    pub(crate) embeddings: &'a EmbeddingCache,
    pub(crate) thumbs: &'a ThumbCache,
    pub(crate) fetcher: Option<&'a Fetcher>,
    pub(crate) max_pixels: u64,
    pub(crate) thumb_size: u32,
    pub(crate) batch_size: usize,
    pub(crate) workers: usize,
}

/// Runs every row through the pipeline; `encoder` is called at most once, when the first image
/// needs embedding (a rebuild served from the cache never loads the vision tower).
pub(crate) fn run(
    rows: &[Row],
    s: &Settings<'_>,
    encoder: &mut dyn FnMut() -> Result<ImageEncoder>,
    progress: &Progress,
) -> Result<Vec<ImageOutcome>> {
    let next = AtomicUsize::new(0);
    // Rows before this one are finished; workers stay within `ahead` rows of it, so a slow row
    // (a download retrying for minutes) never makes the rest pile up in memory.
    let finished = AtomicUsize::new(0);
    let ahead = s.batch_size * 2 + s.workers.max(1) * 2;
    let stop = AtomicBool::new(false);
    let mut out: Vec<Option<ImageOutcome>> = (0..rows.len()).map(|_| None).collect();
    let mut loaded: Option<ImageEncoder> = None;
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = sync_channel::<(usize, Prepared)>(s.batch_size * 2);
        for _ in 0..s.workers.max(1) {
            let tx = tx.clone();
            let (next, finished, stop) = (&next, &finished, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= rows.len() {
                        break;
                    }
                    while i >= finished.load(Ordering::Relaxed) + ahead
                        && !stop.load(Ordering::Relaxed)
                    {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    if tx.send((i, prepare(&rows[i], s))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut waiting = BTreeMap::new();
        let mut expected = 0;
        let mut batch = Batch::default();
        let mut embed_batch = |batch: &mut Batch, out: &mut [Option<ImageOutcome>]| {
            embed(batch, &mut loaded, encoder, s.embeddings, out, progress)
        };
        let result = (|| -> Result<()> {
            for (i, p) in rx.iter() {
                waiting.insert(i, p);
                while let Some(p) = waiting.remove(&expected) {
                    match p {
                        Prepared::Failed(reason) => {
                            out[expected] = Some(ImageOutcome::Failed(reason));
                            progress.inc();
                        }
                        Prepared::Cached { embedding, thumb } => {
                            out[expected] = Some(ImageOutcome::Done {
                                embedding,
                                thumb,
                                reused: true,
                            });
                            progress.inc();
                        }
                        Prepared::Pending {
                            hash,
                            pixels,
                            thumb,
                        } => {
                            if let Some(embedding) = s.embeddings.get(&hash) {
                                // Another row with this image was embedded earlier in this run.
                                out[expected] = Some(ImageOutcome::Done {
                                    embedding,
                                    thumb,
                                    reused: true,
                                });
                                progress.inc();
                            } else if batch.items.iter().any(|(_, h, _, _)| *h == hash) {
                                batch.copies.push((expected, hash, thumb));
                            } else {
                                batch.items.push((expected, hash, pixels, thumb));
                            }
                        }
                    }
                    expected += 1;
                    finished.store(expected, Ordering::Relaxed);
                    if batch.items.len() >= s.batch_size {
                        embed_batch(&mut batch, &mut out)?;
                    }
                }
            }
            embed_batch(&mut batch, &mut out)
        })();
        stop.store(true, Ordering::Relaxed);
        drop(rx);
        result
    })?;
    Ok(out
        .into_iter()
        .map(|o| o.unwrap_or_else(|| ImageOutcome::Failed("not processed".into())))
        .collect())
}

/// Images waiting for the image tower, and rows whose image is one of them (rows sharing an
/// image, like a feed's variants, embed it once).
#[derive(Default)]
struct Batch {
    items: Vec<(usize, ImageHash, Vec<f32>, Vec<u8>)>,
    copies: Vec<(usize, ImageHash, Vec<u8>)>,
}

fn embed(
    batch: &mut Batch,
    loaded: &mut Option<ImageEncoder>,
    encoder: &mut dyn FnMut() -> Result<ImageEncoder>,
    cache: &EmbeddingCache,
    out: &mut [Option<ImageOutcome>],
    progress: &Progress,
) -> Result<()> {
    if batch.items.is_empty() {
        return Ok(());
    }
    if loaded.is_none() {
        *loaded = Some(encoder()?);
    }
    let model = loaded.as_ref().expect("loaded above");
    let pixels: Vec<&[f32]> = batch
        .items
        .iter()
        .map(|(_, _, p, _)| p.as_slice())
        .collect();
    let features = model.encode_pixels(&pixels)?;
    let entries: Vec<(ImageHash, Vec<f32>)> = batch
        .items
        .iter()
        .zip(&features)
        .map(|((_, h, _, _), f)| (*h, f.clone()))
        .collect();
    cache.put(&entries)?;
    for ((i, _, _, thumb), embedding) in batch.items.drain(..).zip(features) {
        out[i] = Some(ImageOutcome::Done {
            embedding,
            thumb,
            reused: false,
        });
        progress.inc();
    }
    for (i, hash, thumb) in batch.copies.drain(..) {
        let embedding = cache
            .get(&hash)
            .ok_or_else(|| anyhow::anyhow!("an embedding just computed is not in the cache"))?;
        out[i] = Some(ImageOutcome::Done {
            embedding,
            thumb,
            reused: true,
        });
        progress.inc();
    }
    Ok(())
}

/// Reads, hashes, decodes, thumbnails and preprocesses one row's image (worker thread).
fn prepare(row: &Row, s: &Settings<'_>) -> Prepared {
    let bytes = match read(&row.image, s.fetcher) {
        Ok(b) => b,
        Err(reason) => return Prepared::Failed(reason),
    };
    let hash: ImageHash = Sha256::digest(&bytes).into();
    let cached = s.embeddings.get(&hash);
    let cached_thumb = s.thumbs.get(&hash);
    if let (Some(embedding), Some(thumb)) = (&cached, &cached_thumb) {
        return Prepared::Cached {
            embedding: embedding.clone(),
            thumb: thumb.clone(),
        };
    }
    let image = match vitrine_clip::decode_image(&bytes, s.max_pixels) {
        Ok(img) => img,
        Err(e) => return Prepared::Failed(format!("{}: {e}", describe(&row.image))),
    };
    let thumb = match cached_thumb {
        Some(t) => t,
        None => match thumbs::make(&image, s.thumb_size) {
            Ok(t) => {
                // A cache write failure only costs time on the next build.
                let _ = s.thumbs.put(&hash, &t);
                t
            }
            Err(e) => return Prepared::Failed(format!("cannot make a thumbnail: {e}")),
        },
    };
    match cached {
        Some(embedding) => Prepared::Cached { embedding, thumb },
        None => {
            let pixels = s.preprocessor.pixels(&vitrine_clip::to_rgb(&image));
            Prepared::Pending {
                hash,
                pixels,
                thumb,
            }
        }
    }
}

fn describe(image: &ImageRef) -> String {
    match image {
        ImageRef::Path(p) => p.display().to_string(),
        ImageRef::Url(u) => u.clone(),
    }
}

fn read(image: &ImageRef, fetcher: Option<&Fetcher>) -> Result<Vec<u8>, String> {
    match image {
        ImageRef::Path(path) => {
            let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => format!("image file not found: {}", path.display()),
                _ => format!("cannot read {}: {e}", path.display()),
            })?;
            if meta.is_dir() {
                return Err(format!("{} is a folder, not an image", path.display()));
            }
            if meta.len() > MAX_FILE_BYTES {
                return Err(format!(
                    "{} is {} MB, over the 256 MB limit",
                    path.display(),
                    meta.len() >> 20
                ));
            }
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        }
        ImageRef::Url(url) => match fetcher {
            Some(f) => f.fetch(url).map(|fetched| fetched.bytes),
            None => Err(format!("{url}: downloading is not available")),
        },
    }
}
