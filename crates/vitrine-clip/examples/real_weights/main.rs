//! Quantization quality on REAL trained weights (a benchmark, not a CI test): runs our quantizer,
//! outlier rule, activation rounding and integer kernels on all-MiniLM-L6-v2 and compares each
//! layout with candle-transformers' f32 `BertModel`, the way `../shared/quant-study` measured its
//! layouts (1,000 title queries against 6,000 texts: query cosine and recall@10 against f32).
//! Run through `./dev real-weights` (it fetches the texts of the study's split first).

#![allow(clippy::print_stdout)]

#[cfg(not(target_arch = "wasm32"))]
mod bert;
#[cfg(not(target_arch = "wasm32"))]
mod measure;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> bert::Result<()> {
    measure::run()
}

// A native benchmark: there is nothing to run in wasm.
#[cfg(target_arch = "wasm32")]
fn main() {}
