// Starts the search worker: loads wasm-bindgen's no-modules glue, then the worker's WebAssembly,
// whose main() installs the message handler. The page names both files in the worker's name
// (JSON `{"glue": "./….js", "wasm": "./….wasm"}`), so their names are defined once, in the
// page's build; the name survives being served from the offline cache, unlike a query string.
const local = (name) => (typeof name === "string" && /^\.\/[A-Za-z0-9_.-]+$/.test(name) ? name : null);
let files = {};
try {
  files = JSON.parse(self.name);
} catch (_) {}
const glue = local(files.glue);
const wasm = local(files.wasm);
if (!glue || !wasm) throw new Error("worker-boot.js: the page must name the worker's files");
importScripts(glue);
wasm_bindgen({ module_or_path: wasm });
