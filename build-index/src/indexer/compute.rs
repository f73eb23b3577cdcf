//! Everything the site is made of that is computed rather than copied: zero-shot facets, the int8
//! vectors and their measured recall (the gate that stops a build rather than ship a worse
//! search). Nothing here writes files; `site` does that once every check has passed.

use anyhow::{Result, bail};
use vitrine_clip::Checkpoint;
use vitrine_index::partition::Partitioned;
use vitrine_index::{ModelInfo, PartitionInfo, Recall, Vectors};

use super::encoder::{self, EncoderChoice, Exported, Gate};
use super::facets::{self, Classified, FacetSpec};
use super::recall;

/// Everyday shopping queries: with the facet prompts and catalogue titles, what the text
/// encoder's quality gate measures.
const EVERYDAY_QUERIES: &str = include_str!("../../data/everyday-queries.txt");

/// At most this many catalogue titles join the gate's prompts.
const GATE_TITLES: usize = 1000;

/// Prompts that, with the facet prompts, stand for text queries in the recall check.
const RECALL_PROMPTS: [&str; 8] = [
    "a photo of a product",
    "something red",
    "a black and white picture",
    "an animal",
    "food and drink",
    "a cartoon drawing",
    "a person smiling",
    "a car on the road",
];

/// What [`compute`] needs besides the embeddings.
pub(crate) struct ComputeOptions<'a> {
    /// The zero-shot facets to classify.
    pub(crate) specs: &'a [FacetSpec],
    /// The build fails if recall@10 of the int8 vectors is below this.
    pub(crate) min_recall: f64,
    /// The probe count is the smallest reaching this recall@10 against scanning every list.
    pub(crate) min_probe_recall: f64,
    /// The most lists a query may probe.
    pub(crate) max_probes: Option<usize>,
    /// The checkpoint's fingerprint (hex), recorded in the manifest.
    pub(crate) fingerprint: &'a str,
    /// `--text-encoder`.
    pub(crate) encoder: EncoderChoice,
    /// The text encoder's quality gate.
    pub(crate) gate: Gate,
    /// The indexed rows' titles (the gate measures up to 1,000 of them, spread evenly).
    pub(crate) titles: &'a [String],
    /// The text encoder layout the site at `--out` ships, if any.
    pub(crate) previous_encoder: Option<&'a str>,
}

/// The computed parts of a site, all checked.
pub(crate) struct Computed {
    /// The model as the manifest describes it.
    pub(crate) model: ModelInfo,
    /// Each facet and each item's label.
    pub(crate) facets: Vec<Classified>,
    /// The int8 vectors, in item order (the quantized whole, for the checks).
    pub(crate) vectors: Vectors,
    /// The vectors as lists, with the probe count measured.
    pub(crate) lists: Partitioned,
    /// The lists and the measured probe count, for the manifest.
    pub(crate) partition: PartitionInfo,
    /// Recall@10 of the int8 ranking against exact f32, at or above the threshold.
    pub(crate) recall: Recall,
    /// The page's text encoder, past its gate.
    pub(crate) encoder: Exported,
}

/// The committed everyday queries.
fn everyday() -> Vec<String> {
    EVERYDAY_QUERIES
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Text query vectors the lists are shaped for: the everyday queries and up to
/// [`GATE_TITLES`] of `titles` (spread evenly), encoded by the checkpoint's text tower.
pub(crate) fn metric_queries(ckpt: &Checkpoint, titles: &[&str]) -> Result<Vec<Vec<f32>>> {
    let tokenizer = ckpt.tokenizer()?;
    let text = ckpt.text_encoder()?;
    let step = titles.len().div_ceil(GATE_TITLES).max(1);
    let prompts: Vec<String> = everyday()
        .into_iter()
        .chain(titles.iter().step_by(step).map(|t| t.to_string()))
        .collect();
    let mut out = Vec::with_capacity(prompts.len());
    for batch in prompts.chunks(64) {
        let ids: Vec<Vec<u32>> = batch
            .iter()
            .map(|p| tokenizer.encode(p))
            .collect::<Result<_, _>>()?;
        let ids: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        out.extend(text.encode_batch(&ids)?);
    }
    Ok(out)
}

/// Classifies facets, quantizes `embeddings` and checks the recall of the result; fails (nothing
/// to write) when recall is below `min_recall`.
pub(crate) fn compute(
    ckpt: &Checkpoint,
    embeddings: &[Vec<f32>],
    mut lists: Partitioned,
    options: &ComputeOptions<'_>,
) -> Result<Computed> {
    let tokenizer = ckpt.tokenizer()?;
    let text = ckpt.text_encoder()?;
    // Facet prompts and the recall prompts are encoded in one batch, once.
    let facet_prompts = facets::prompts(options.specs);
    let prompts: Vec<String> = facet_prompts
        .iter()
        .flatten()
        .cloned()
        .chain(RECALL_PROMPTS.iter().map(|p| p.to_string()))
        .collect();
    let ids: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| tokenizer.encode(p))
        .collect::<Result<_, _>>()?;
    let batch: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let text_queries = text.encode_batch(&batch)?;
    let mut rest = text_queries.iter();
    let encoded: Vec<Vec<Vec<f32>>> = facet_prompts
        .iter()
        .map(|labels| rest.by_ref().take(labels.len()).cloned().collect())
        .collect();
    let facets = facets::classify(options.specs, &encoded, text.logit_scale(), embeddings);

    let vectors = Vectors::quantize(embeddings)?;
    let recall = recall::measure(embeddings, &vectors, &text_queries, 10, options.min_recall);
    if recall.value < options.min_recall {
        bail!(
            "recall@10 of the int8 index is {:.4}, below --min-recall {}; nothing was written \
             (the embeddings may be degenerate: check the model)",
            recall.value,
            options.min_recall
        );
    }
    let step = options.titles.len().div_ceil(GATE_TITLES).max(1);
    let everyday = everyday();
    let gate_prompts: Vec<String> = facet_prompts
        .iter()
        .flatten()
        .chain(&everyday)
        .chain(options.titles.iter().step_by(step))
        .cloned()
        .collect();
    let encoder = encoder::export(
        ckpt,
        &tokenizer,
        &text,
        options.encoder,
        encoder::Prompts {
            measured: &gate_prompts,
            calibration: &everyday,
        },
        &vectors,
        options.gate,
        options.previous_encoder,
    )?;
    let partition = super::lists::measure(
        &mut lists,
        &encoder.queries,
        options.min_probe_recall,
        options.max_probes,
    )?;
    let model = ModelInfo {
        id: ckpt.name(),
        fingerprint: options.fingerprint[..16].to_string(),
        dim: vectors.dim() as u32,
        max_tokens: text.max_len() as u32,
        logit_scale: text.logit_scale(),
    };
    Ok(Computed {
        model,
        facets,
        vectors,
        lists,
        partition,
        recall,
        encoder,
    })
}
