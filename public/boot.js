// Starts the page's WebAssembly. Trunk writes the hashed file names into this script's tag; the
// file exists so the Content Security Policy can forbid inline scripts.
const tag = document.querySelector("script[data-js]");
const { default: init } = await import(tag.dataset.js);
await init({ module_or_path: tag.dataset.wasm });
