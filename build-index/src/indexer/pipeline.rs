//! The embedding pipeline: worker threads read (or download), hash, decode, thumbnail and
//! preprocess images while the main thread runs the image tower on batches. Batches are formed
//! in catalogue order whatever order workers finish in, so equal inputs give equal bytes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;

use anyhow::Result;
use sha2::{Digest, Sha256};
use vitrine_clip::{ImageEncoder, Preprocessor};

use super::budget::DecodeBudget;
use super::cache::{EmbeddingCache, ImageHash, ThumbCache};
use super::progress::Progress;
use super::thumbs;
use crate::catalogue::{ImageRef, Row};
use crate::fetch::{FetchError, Fetcher};
use crate::local::{self, Confinement, LocalError};

/// Files over this size are refused while reading: no catalogue image needs 256 MB.
const MAX_FILE_BYTES: u64 = 256 << 20;

/// A row's JPEG thumbnail, or `None` where the page shows its image URL (`--thumbnails remote`).
pub(crate) type Thumb = Option<Vec<u8>>;

/// What became of one row's image.
pub(crate) enum ImageOutcome {
    /// Embedded (or taken from the cache) with its thumbnail.
    Done {
        /// Projected image features (not normalised).
        embedding: Vec<f32>,
        /// Its thumbnail.
        thumb: Thumb,
        /// Whether the embedding came from the cache.
        reused: bool,
    },
    /// Unusable; the reason is shown to the maintainer.
    Failed(RowError),
}

/// Why a row's image cannot be indexed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RowError {
    /// The local file cannot be read.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// The download failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The bytes are not a usable image.
    #[error("{source_name}: {error}")]
    Image {
        /// The path or URL.
        source_name: String,
        /// What is wrong with the image.
        error: vitrine_clip::Error,
    },
    /// A download that was still cut short when fetched again.
    #[error("{0}: {1} (downloaded twice)")]
    TruncatedTwice(String, vitrine_clip::Error),
    /// Decoding would take more memory than the budget.
    #[error(
        "{source_name}: decoding this {width}x{height} image takes {} MB, more than \
         --decode-memory {} MB allows; shrink the image or raise --decode-memory",
        need >> 20,
        budget >> 20
    )]
    Memory {
        /// The path or URL.
        source_name: String,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Bytes decoding takes.
        need: u64,
        /// The whole budget.
        budget: u64,
    },
    /// The thumbnail cannot be encoded.
    #[error("cannot make a thumbnail: {0}")]
    Thumbnail(#[from] image::ImageError),
    /// The build stopped before this row was done.
    #[error("not processed")]
    NotProcessed,
    /// The model gave NaN or infinite features.
    #[error("the model gave a non-finite embedding for this image (NaN); it is not indexed")]
    NotFinite,
}

enum Prepared {
    Failed(RowError),
    Cached {
        embedding: Vec<f32>,
        thumb: Thumb,
    },
    Pending {
        hash: ImageHash,
        pixels: Vec<f32>,
        thumb: Thumb,
    },
}

/// Settings of one pipeline run.
pub(crate) struct Settings<'a> {
    pub(crate) preprocessor: &'a Preprocessor,
    pub(crate) embeddings: &'a EmbeddingCache,
    pub(crate) thumbs: &'a ThumbCache,
    pub(crate) fetcher: Option<&'a Fetcher>,
    pub(crate) local: &'a Confinement,
    pub(crate) budget: &'a DecodeBudget,
    pub(crate) max_pixels: u64,
    pub(crate) thumb_size: u32,
    pub(crate) batch_size: usize,
    pub(crate) workers: usize,
    /// `--embeddings` by row number: not run through the tower (the image is still read for its
    /// hash and thumbnail, unless it is shown remote).
    pub(crate) imported: &'a HashMap<usize, Vec<f32>>,
    /// `--thumbnails remote`: rows with an image URL are shown from it, so no thumbnail is made
    /// for them (and an imported embedding's image is not read at all).
    pub(crate) remote_thumbnails: bool,
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
            embed(batch, &mut loaded, encoder, s, out, progress)
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
        .map(|o| o.unwrap_or_else(|| ImageOutcome::Failed(RowError::NotProcessed)))
        .collect())
}

/// Images waiting for the image tower, and rows whose image is one of them (rows sharing an
/// image, like a feed's variants, embed it once).
#[derive(Default)]
struct Batch {
    items: Vec<(usize, ImageHash, Vec<f32>, Thumb)>,
    copies: Vec<(usize, ImageHash, Thumb)>,
}

fn embed(
    batch: &mut Batch,
    loaded: &mut Option<ImageEncoder>,
    encoder: &mut dyn FnMut() -> Result<ImageEncoder>,
    s: &Settings<'_>,
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
    let mut pixels: Vec<&[f32]> = batch
        .items
        .iter()
        .map(|(_, _, p, _)| p.as_slice())
        .collect();
    // The tower's products block differently by batch size, moving features' last bits: padded
    // to one size, an image gets the same bits whatever shares its batch (shard or not).
    let real = pixels.len();
    pixels.resize(real.max(s.batch_size), pixels[0]);
    let features: Vec<Vec<f32>> = model
        .encode_pixels(&pixels)?
        .into_iter()
        .take(real)
        .collect();
    // A non-finite embedding is never cached or indexed: it would poison every ranking.
    let entries: Vec<(ImageHash, Vec<f32>)> = batch
        .items
        .iter()
        .zip(&features)
        .filter(|(_, f)| f.iter().all(|x| x.is_finite()))
        .map(|((_, h, _, _), f)| (*h, f.clone()))
        .collect();
    s.embeddings.put(&entries)?;
    for ((i, _, _, thumb), embedding) in batch.items.drain(..).zip(features) {
        out[i] = Some(if embedding.iter().all(|x| x.is_finite()) {
            ImageOutcome::Done {
                embedding,
                thumb,
                reused: false,
            }
        } else {
            ImageOutcome::Failed(RowError::NotFinite)
        });
        progress.inc();
    }
    for (i, hash, thumb) in batch.copies.drain(..) {
        out[i] = Some(match s.embeddings.get(&hash) {
            Some(embedding) => ImageOutcome::Done {
                embedding,
                thumb,
                reused: true,
            },
            None => ImageOutcome::Failed(RowError::NotFinite),
        });
        progress.inc();
    }
    Ok(())
}

/// Reads (or downloads), hashes, decodes, thumbnails and preprocesses one row's image (worker
/// thread). A download that turns out truncated is fetched once more.
fn prepare(row: &Row, s: &Settings<'_>) -> Prepared {
    if let (true, Some(embedding)) = (shown_remote(row, s), s.imported.get(&row.row)) {
        // Nothing to read: the embedding is given and the page shows the image from its URL.
        return Prepared::Cached {
            embedding: embedding.clone(),
            thumb: None,
        };
    }
    let bytes = match read(&row.image, s) {
        Ok(b) => b,
        Err(e) => return Prepared::Failed(e),
    };
    match (prepare_bytes(row, s, &bytes), &row.image, s.fetcher) {
        (
            Err(RowError::Image {
                error: vitrine_clip::Error::Truncated(_),
                ..
            }),
            ImageRef::Url(url),
            Some(fetcher),
        ) => {
            let again = match fetcher.refetch(url) {
                Ok(fetched) => fetched.bytes,
                Err(e) => return Prepared::Failed(e.into()),
            };
            match prepare_bytes(row, s, &again) {
                Ok(prepared) => prepared,
                Err(RowError::Image {
                    error: error @ vitrine_clip::Error::Truncated(_),
                    ..
                }) => Prepared::Failed(RowError::TruncatedTwice(url.clone(), error)),
                Err(e) => Prepared::Failed(e),
            }
        }
        (Ok(prepared), _, _) => prepared,
        (Err(e), _, _) => Prepared::Failed(e),
    }
}

/// [`prepare`] for bytes in hand: the header is checked (size, truncation) before the cache is
/// asked, so an image cached before a check existed is still refused.
fn prepare_bytes(row: &Row, s: &Settings<'_>, bytes: &[u8]) -> Result<Prepared, RowError> {
    let image_error = |error| RowError::Image {
        source_name: describe(&row.image),
        error,
    };
    let probe = vitrine_clip::probe(bytes, s.max_pixels).map_err(image_error)?;
    let hash: ImageHash = Sha256::digest(bytes).into();
    let cached = s.embeddings.get(&hash).or_else(|| {
        let imported = s.imported.get(&row.row)?;
        // Cached under the image's hash for later builds (a failed write only costs time).
        let _ = s.embeddings.put(&[(hash, imported.clone())]);
        Some(imported.clone())
    });
    let remote = shown_remote(row, s);
    let cached_thumb = if remote { None } else { s.thumbs.get(&hash) };
    if let Some(embedding) = &cached
        && (remote || cached_thumb.is_some())
    {
        return Ok(Prepared::Cached {
            embedding: embedding.clone(),
            thumb: cached_thumb,
        });
    }
    let (width, height) = probe.dimensions();
    let need = DecodeBudget::cost(width, height, probe.decoded_bytes());
    let Some(_held) = s.budget.reserve(need) else {
        return Err(RowError::Memory {
            source_name: describe(&row.image),
            width,
            height,
            need,
            budget: s.budget.total(),
        });
    };
    let image = probe.decode().map_err(image_error)?;
    let thumb = match (remote, cached_thumb) {
        (true, _) => None,
        (false, Some(t)) => Some(t),
        (false, None) => {
            let t = thumbs::make(&image, s.thumb_size)?;
            // A cache write failure only costs time on the next build.
            let _ = s.thumbs.put(&hash, &t);
            Some(t)
        }
    };
    Ok(match cached {
        Some(embedding) => Prepared::Cached { embedding, thumb },
        None => {
            let pixels = s.preprocessor.pixels(&vitrine_clip::to_rgb(&image));
            Prepared::Pending {
                hash,
                pixels,
                thumb,
            }
        }
    })
}

/// Whether the page shows `row`'s picture from its image URL (`--thumbnails remote`).
fn shown_remote(row: &Row, s: &Settings<'_>) -> bool {
    s.remote_thumbnails && matches!(row.image, ImageRef::Url(_))
}

fn describe(image: &ImageRef) -> String {
    match image {
        ImageRef::Path(p) => p.display().to_string(),
        ImageRef::Url(u) => u.clone(),
    }
}

fn read(image: &ImageRef, s: &Settings<'_>) -> Result<Vec<u8>, RowError> {
    match image {
        ImageRef::Path(path) => Ok(local::read(path, s.local, MAX_FILE_BYTES)?),
        ImageRef::Url(url) => match s.fetcher {
            Some(f) => Ok(f.fetch(url)?.bytes),
            None => unreachable!("a fetcher is made whenever a row has a URL"),
        },
    }
}
