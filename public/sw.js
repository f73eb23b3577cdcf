// vitrine's service worker: makes search work offline after the first visit.
//
// The page registers it as `sw.js?config=<JSON>`: the site's conventions (index folder, manifest
// name, the app shell's fixed-name files, the content-hash naming rule) come from the page's
// build (vitrine-protocol's ServiceWorkerConfig), so this file repeats none of them.
//
// - App shell (index.html, the fixed-name shell files, whatever index.html references) is
//   cached at install.
// - Files whose names carry a content hash (the app's .js/.wasm/.css and every index file except
//   the manifest) never change: served from the cache, fetched once.
// - index.html, the manifest and the other fixed-name files are fetched from the network first
//   (so a redeploy is seen at once) and from the cache when offline. The manifest is cached only
//   once every file it lists is.
// - When the page has loaded an index it posts a `keep_build` message (JSON) naming that
//   build's files: they are cached (thumbnails last, when the page sends them) and index files
//   no manifest lists any more are deleted. A page only ever loads files named by the manifest
//   it fetched, so two builds are never combined.
// - Index files carry the start of their SHA-256 in their names; only bytes that match are cached
//   (a file damaged in transit is fetched again next time, never kept), and a thumbnail that does
//   not match is not shown. The page checks the full hash of what it loads.

const CACHE = "vitrine-v1";
const SCOPE = new URL(self.registration.scope);
const CONFIG = (() => {
  try {
    return JSON.parse(new URL(self.location.href).searchParams.get("config"));
  } catch (_) {
    return null;
  }
})();
// Without a configuration (registered by something other than the page) nothing is cached.
const INDEX = CONFIG ? new URL(CONFIG.index_dir, SCOPE).href : null;
const MANIFEST = CONFIG ? INDEX + CONFIG.manifest : null;
const HASHED = CONFIG ? new RegExp(CONFIG.hashed_name) : null;
// Index files being checked and cached in the background, by URL.
const pending = new Map();
const UNHASHED = CONFIG
  ? ["", ...CONFIG.shell].map((p) => new URL(p, SCOPE).href).concat([MANIFEST])
  : [];

// Same-origin files index.html references (href/src attributes).
function referenced(html) {
  const urls = new Set();
  for (const m of html.matchAll(/(?:href|src|data-js|data-wasm)="([^"]+)"/g)) {
    const u = new URL(m[1], SCOPE);
    if (u.origin === SCOPE.origin && u.pathname.startsWith(SCOPE.pathname)) urls.add(u.href);
  }
  return urls;
}

async function put(cache, url, response) {
  if (response && response.ok && response.type === "basic") await cache.put(url, response);
  return response;
}

async function precacheShell() {
  const cache = await caches.open(CACHE);
  const page = await fetch(SCOPE.href, { cache: "no-cache" });
  if (!page.ok) return;
  const html = await page.clone().text();
  await cache.put(SCOPE.href, page);
  const urls = referenced(html);
  for (const u of UNHASHED) if (u !== MANIFEST && u !== SCOPE.href) urls.add(u);
  await Promise.all([...urls].map((u) =>
    fetch(u, { cache: "no-cache" }).then((r) => put(cache, u, r)).catch(() => {})));
}

self.addEventListener("install", (event) => {
  const shell = CONFIG ? precacheShell() : Promise.resolve();
  event.waitUntil(shell.catch(() => {}).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

// From the network, cached under `key` (unless `store` is false); from the cache when offline.
async function networkFirst(request, key, store = true) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request, { cache: "no-cache" });
    if (response.ok && store) await put(cache, key, response.clone());
    return response;
  } catch (offline) {
    const cached = await cache.match(key);
    if (cached) return cached;
    throw offline;
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) await put(cache, request.url, response.clone());
  return response;
}

// The content hash an index file's name carries (`vectors.<hash>.bin`), by the build's rule.
function namedHash(url) {
  if (!url.startsWith(INDEX)) return null;
  const m = HASHED.exec(new URL(url).pathname.slice(new URL(INDEX).pathname.length));
  return m ? m[1] : null;
}

async function matches(bytes, hash) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("") === hash;
}

// Caches a fetched index file if its bytes match its name (and `current()` still holds);
// returns the bytes, or null. Bytes that do not match are fetched once more past the browser's
// HTTP cache (which may hold a copy damaged in transit, kept a year: hosts mark them immutable).
async function keepChecked(cache, url, response, hash, current = () => true) {
  for (let attempt = 0; ; attempt++) {
    if (!response.ok || response.type !== "basic") return null;
    const bytes = await response.arrayBuffer();
    if (await matches(bytes, hash)) {
      if (current()) await cache.put(url, sameBytes(bytes, response));
      return bytes;
    }
    if (attempt === 1) return null;
    response = await fetch(url, { cache: "reload" });
  }
}

// A response holding `bytes` (already decoded: no Content-Encoding or Length of the transfer).
function sameBytes(bytes, response) {
  const type = response.headers.get("content-type");
  return new Response(bytes, { headers: type ? { "content-type": type } : {} });
}

// A thumbnail asked of its pack with a Range header: the whole pack when cached (the page cuts
// it), else the network's answer as it is. A partial (206) answer is never cached (the Cache API
// refuses it); a whole pack, from a host that ignores ranges, is checked and cached.
async function rangedFile(event, hash) {
  const url = event.request.url;
  const cache = await caches.open(CACHE);
  const cached = await cache.match(url);
  if (cached) return cached;
  const response = await fetch(event.request);
  if (response.status === 200 && response.type === "basic") {
    event.waitUntil(keepChecked(cache, url, response.clone(), hash).catch(() => null));
  }
  return response;
}

async function indexFile(event, hash) {
  const request = event.request;
  const url = request.url;
  const cache = await caches.open(CACHE);
  const cached = await cache.match(url);
  if (cached) return cached;
  // Revalidated, so a file the host has replaced (a re-upload) is seen at once.
  const response = await fetch(request, { cache: "no-cache" });
  if (!response.ok || response.type !== "basic") return response;
  if (request.destination === "image") {
    // A thumbnail is small: checked before it is shown.
    const bytes = await keepChecked(cache, url, response.clone(), hash);
    return bytes ? sameBytes(bytes, response)
      : new Response("this file does not match its content hash", { status: 502 });
  }
  // Model, vectors and metadata stream on to the page at once (it shows the progress and checks
  // them itself) and are cached in the background once checked.
  const done = keepChecked(cache, url, response.clone(), hash).catch(() => null)
    .finally(() => pending.delete(url));
  pending.set(url, done);
  event.waitUntil(done);
  return response;
}

self.addEventListener("fetch", (event) => {
  if (!CONFIG) return;
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== SCOPE.origin ||
      !url.pathname.startsWith(SCOPE.pathname)) return;
  const path = url.origin + url.pathname;
  if (request.mode === "navigate") {
    // Any ?q=… of the page is the same document; other pages (a thumbnail opened in a tab, a
    // product page on the same site) are none of our business.
    if (path === SCOPE.href || path === new URL("index.html", SCOPE).href) {
      event.respondWith(networkFirst(request, SCOPE.href));
    }
  } else if (path === MANIFEST) {
    // Cached by adopt() once every file it lists is, so offline never meets a manifest whose
    // files are missing (a redeploy cut short keeps the previous, complete build).
    event.respondWith(networkFirst(request, path, false).then((response) => {
      if (response.ok) remember(response.clone());
      return response;
    }));
  } else if (UNHASHED.includes(path)) {
    event.respondWith(networkFirst(request, path));
  } else if (namedHash(request.url) && request.headers.has("range")) {
    event.respondWith(rangedFile(event, namedHash(request.url)));
  } else if (namedHash(request.url)) {
    event.respondWith(indexFile(event, namedHash(request.url)));
  } else {
    event.respondWith(cacheFirst(request));
  }
});

// Manifests the page fetched, by build id, for adopt() to cache without fetching them again.
const manifests = new Map();

async function remember(response) {
  try {
    const text = await response.text();
    manifests.set(JSON.parse(text).build_id, text);
  } catch (_) {}
}

// The text of `build`'s manifest: as the page fetched it, else from the host if it still serves
// that build; null if not.
async function manifestOf(build) {
  if (!manifests.has(build)) {
    const response = await fetch(MANIFEST, { cache: "no-cache" }).catch(() => null);
    if (response && response.ok) await remember(response);
  }
  return manifests.get(build) ?? null;
}

// Fetches what `urls` lists and the cache lacks, `width` at a time, while `current()` holds.
async function fetchMissing(cache, urls, width, current) {
  let next = 0;
  const fetcher = async () => {
    while (next < urls.length && current()) {
      const u = urls[next++];
      if (pending.has(u)) await pending.get(u);
      if (await cache.match(u)) continue;
      const hash = namedHash(u);
      await fetch(u)
        .then((r) => (hash ? keepChecked(cache, u, r, hash, current) : put(cache, u, r)))
        .catch(() => {});
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, urls.length) }, fetcher));
}

// The newest build the page told us about; an older adopt() stops fetching thumbnails.
let generation = 0;

// The page tells us which index files are current: the files needed to search are cached, then
// the manifest of that build, files no manifest lists are dropped, then the thumbnails the page
// sends (all of them when they fit its budget) are fetched in the background so results show
// pictures offline too.
async function adopt({ build, index, manifest: manifestUrl, core, thumbnails, all_thumbnails, on_demand = [] }) {
  const mine = ++generation;
  const current = () => mine === generation;
  const cache = await caches.open(CACHE);
  const wanted = new Set([manifestUrl, ...core, ...all_thumbnails, ...on_demand]);
  const files = core;
  await fetchMissing(cache, files, files.length, current);
  const complete = (await Promise.all(files.map((u) => cache.match(u)))).every(Boolean);
  if (!current() || !complete) return;
  // The manifest of this very build (the host may hold a newer one by now) joins its files.
  const manifest = await manifestOf(build);
  if (manifest === null || !current()) return;
  await cache.put(MANIFEST, new Response(manifest, {
    headers: { "content-type": "application/json" },
  }));
  const page = await cache.match(SCOPE.href);
  const shell = page ? referenced(await page.text()) : new Set();
  if (!current()) return; // a newer build's adopt() does the cleaning
  for (const request of await cache.keys()) {
    const u = request.url;
    const isIndex = u.startsWith(index);
    const stale = isIndex ? !wanted.has(u) : !shell.has(u) && !UNHASHED.includes(u);
    if (stale) await cache.delete(request);
  }
  await fetchMissing(cache, thumbnails, 4, current);
}

self.addEventListener("message", (event) => {
  let message = null;
  try {
    message = JSON.parse(event.data);
  } catch (_) {}
  if (CONFIG && message && message.type === "keep_build") event.waitUntil(adopt(message));
});
