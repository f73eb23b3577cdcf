//! The relaxed-SIMD build of the search worker (built by Trunk as `data-type="worker"` with
//! `--features relaxed-simd`; the page loads it where `WebAssembly.validate` accepts relaxed SIMD).

fn main() {
    vitrine_worker::start();
}
