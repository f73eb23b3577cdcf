// vitrine's service worker: makes search work offline after the first visit.
//
// - App shell (index.html, boot.js, the worker's files, whatever index.html references) is
//   cached at install.
// - Files whose names carry a content hash (the app's .js/.wasm/.css and every index file except
//   manifest.json) never change: served from the cache, fetched once.
// - index.html, manifest.json and the worker's unhashed files are fetched from the network first
//   (so a redeploy is seen at once) and from the cache when offline.
// - When the page has loaded an index it posts {type: "index", keep, precache}: the files of
//   that build are cached and index files no manifest lists any more are deleted. A page only
//   ever loads files named by the manifest it fetched, so two builds are never combined.

const CACHE = "vitrine-v1";
const SCOPE = new URL(self.registration.scope);
const UNHASHED = ["", "index.html", "boot.js", "vitrine-worker.js", "vitrine-worker_bg.wasm",
  "worker-boot.js", "search/manifest.json"].map((p) => new URL(p, SCOPE).href);

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
  for (const u of UNHASHED) if (!u.endsWith("manifest.json") && u !== SCOPE.href) urls.add(u);
  await Promise.all([...urls].map((u) =>
    fetch(u, { cache: "no-cache" }).then((r) => put(cache, u, r)).catch(() => {})));
}

self.addEventListener("install", (event) => {
  event.waitUntil(precacheShell().catch(() => {}).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

async function networkFirst(request, key) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request, { cache: "no-cache" });
    if (response.ok) await put(cache, key, response.clone());
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

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== SCOPE.origin ||
      !url.pathname.startsWith(SCOPE.pathname)) return;
  if (request.mode === "navigate") {
    // Any ?q=… of the page is the same document.
    event.respondWith(networkFirst(request, SCOPE.href));
  } else if (UNHASHED.includes(url.origin + url.pathname)) {
    event.respondWith(networkFirst(request, url.origin + url.pathname));
  } else {
    event.respondWith(cacheFirst(request));
  }
});

// The page tells us which index files are current.
async function adopt({ index, keep, precache }) {
  const cache = await caches.open(CACHE);
  const wanted = new Set(keep);
  await Promise.all(precache.map(async (u) => {
    if (!(await cache.match(u))) await fetch(u).then((r) => put(cache, u, r)).catch(() => {});
  }));
  const page = await cache.match(SCOPE.href);
  const shell = page ? referenced(await page.text()) : new Set();
  for (const request of await cache.keys()) {
    const u = request.url;
    const isIndex = u.startsWith(index);
    const stale = isIndex ? !wanted.has(u) : !shell.has(u) && !UNHASHED.includes(u);
    if (stale) await cache.delete(request);
  }
}

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "index") event.waitUntil(adopt(event.data));
});
