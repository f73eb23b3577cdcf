// Starts the search worker: loads wasm-bindgen's no-modules glue, then the worker's WebAssembly,
// whose main() installs the message handler.
importScripts("./vitrine-worker.js");
wasm_bindgen({ module_or_path: "./vitrine-worker_bg.wasm" });
