//! How a deployed site is laid out, defined once for the page, the service worker (which gets
//! [`ServiceWorkerConfig`] from the page when it registers it), the test server and
//! `build-index`: the app shell's fixed-name files beside `index.html`, and the index in
//! [`INDEX_DIR`] with every file but its manifest named by content.

use serde::{Deserialize, Serialize};
use vitrine_index::{HASHED_NAME_PATTERN, MANIFEST, name_hash};

/// The index's folder beside the page (`build-index build --out dist/search`).
pub const INDEX_DIR: &str = "search/";

/// The worker's boot script: loads a [`WorkerBuild`]'s glue, then its WebAssembly.
pub const WORKER_BOOT: &str = "worker-boot.js";

/// The search worker's two builds (Trunk names worker files without a hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerBuild {
    /// WebAssembly SIMD (`simd128`): every browser with wasm SIMD, Safari included.
    Simd128,
    /// `simd128` plus relaxed SIMD: faster integer products (Chrome/Edge ≥ 114, Firefox ≥ 146).
    Relaxed,
}

impl WorkerBuild {
    /// Both builds.
    pub const ALL: [Self; 2] = [Self::Simd128, Self::Relaxed];

    /// The wasm-bindgen glue.
    pub fn glue(self) -> &'static str {
        match self {
            Self::Simd128 => "vitrine-worker.js",
            Self::Relaxed => "vitrine-worker-relaxed.js",
        }
    }

    /// The WebAssembly.
    pub fn wasm(self) -> &'static str {
        match self {
            Self::Simd128 => "vitrine-worker_bg.wasm",
            Self::Relaxed => "vitrine-worker-relaxed_bg.wasm",
        }
    }

    /// Its name, as `?engine=` and the status line give it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Simd128 => "simd128",
            Self::Relaxed => "relaxed",
        }
    }

    /// The build named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// A minimal module whose one function uses `i32x4.relaxed_dot_i8x16_i7x16_add_s`: where
/// `WebAssembly.validate` accepts it, the relaxed build runs.
pub const RELAXED_SIMD_PROBE: [u8; 82] = {
    let mut m = [0u8; 82];
    let head: [u8; 25] = [
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
        0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // types: () -> v128
        0x03, 0x02, 0x01, 0x00, // functions: one of type 0
        0x0a, 0x3d, 0x01, 0x3b, 0x00, // code: one body of 59 bytes, no locals
        0xfd, // v128.const …
    ];
    let mut i = 0;
    while i < head.len() {
        m[i] = head[i];
        i += 1;
    }
    // Three `v128.const 0` (0xfd 0x0c + 16 zero bytes): the first prefix is in `head`.
    m[25] = 0x0c;
    m[42] = 0xfd;
    m[43] = 0x0c;
    m[60] = 0xfd;
    m[61] = 0x0c;
    // i32x4.relaxed_dot_i8x16_i7x16_add_s (0xfd 0x113), end.
    m[78] = 0xfd;
    m[79] = 0x93;
    m[80] = 0x02;
    m[81] = 0x0b;
    m
};

/// The app shell's files whose names never change: hosts must serve them (and the index's
/// manifest) with `Cache-Control: no-cache`, so a redeploy is seen at once. Every other file is
/// named by its content and may be cached for ever.
pub const SHELL_FILES: [&str; 8] = [
    "index.html",
    "boot.js",
    "sw.js",
    WORKER_BOOT,
    "vitrine-worker.js",
    "vitrine-worker_bg.wasm",
    "vitrine-worker-relaxed.js",
    "vitrine-worker-relaxed_bg.wasm",
];

/// `Cache-Control` for files named by their content ([`is_content_addressed`]).
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` for every other file (the shell's fixed names, the manifest): revalidated on
/// every use, so a redeploy is seen at once.
pub const CACHE_REVALIDATE: &str = "no-cache";

/// Whether a file of the deployed site (a path relative to the page's folder, `/`-separated)
/// is named by its content: index files other than the manifest, and the files Trunk hashes
/// (`vitrine-web-<16 hex>.js`, `…_bg.wasm`, `style-<16 hex>.css`).
pub fn is_content_addressed(path: &str) -> bool {
    if let Some(index_file) = path.strip_prefix(INDEX_DIR) {
        return name_hash(index_file).is_some();
    }
    if path.contains('/') || SHELL_FILES.contains(&path) {
        return false;
    }
    let stem = path.rsplit_once('.').map_or(path, |(stem, _)| stem);
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-')
        .is_some_and(|(_, hash)| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What the service worker needs to know about the site, handed to it by the page in the
/// registration URL (`sw.js?config=…`), so `sw.js` repeats none of these conventions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceWorkerConfig {
    /// [`INDEX_DIR`].
    pub index_dir: String,
    /// The manifest's name in it.
    pub manifest: String,
    /// [`SHELL_FILES`] but `sw.js` itself: cached at install, fetched network-first.
    pub shell: Vec<String>,
    /// [`HASHED_NAME_PATTERN`]: index files it matches are checked against their hash.
    pub hashed_name: String,
}

impl ServiceWorkerConfig {
    /// The configuration of this build of the page.
    pub fn current() -> Self {
        Self {
            index_dir: INDEX_DIR.into(),
            manifest: MANIFEST.into(),
            shell: SHELL_FILES
                .iter()
                .filter(|f| **f != "sw.js")
                .map(|f| f.to_string())
                .collect(),
            hashed_name: HASHED_NAME_PATTERN.into(),
        }
    }
}

/// The files of the build a page has loaded, as absolute URLs, for the offline cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepBuild {
    /// The manifest's build id.
    pub build: String,
    /// The index folder.
    pub index: String,
    /// The manifest, cached once every core file is.
    pub manifest: String,
    /// The files needed to search and show results.
    pub core: Vec<String>,
    /// Thumbnails to fetch in the background (empty when the page chose not to).
    pub thumbnails: Vec<String>,
    /// Every thumbnail pack of the build, kept if cached (the page may have sent none to fetch).
    pub all_thumbnails: Vec<String>,
    /// Files kept if cached, never fetched ahead (the lists and groups of a partitioned index).
    #[serde(default)]
    pub on_demand: Vec<String>,
}

/// Page → service worker (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServiceWorkerMessage {
    /// Cache this build's files and drop index files no build lists.
    KeepBuild(KeepBuild),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_addressed_files_are_told_from_fixed_names() {
        for hashed in [
            "search/vectors.0123456789abcdef.bin",
            "search/thumbs/thumb.0123456789abcdef.jpg",
            "vitrine-web-8e5262697f9d8c73_bg.wasm",
            "vitrine-web-8e5262697f9d8c73.js",
            "style-0123456789abcdef.css",
        ] {
            assert!(is_content_addressed(hashed), "{hashed}");
        }
        for fixed in [
            "search/manifest.json",
            "index.html",
            "sw.js",
            "vitrine-worker_bg.wasm",
            "search/vectors.bin",
            "other/x-0123456789abcdef.js",
        ] {
            assert!(!is_content_addressed(fixed), "{fixed}");
        }
    }

    #[test]
    fn every_worker_build_is_a_shell_file() {
        for b in WorkerBuild::ALL {
            assert!(SHELL_FILES.contains(&b.glue()) && SHELL_FILES.contains(&b.wasm()));
            assert_eq!(WorkerBuild::from_name(b.name()), Some(b));
        }
        // The probe is a whole module: 8 header bytes, then sections whose sizes add up.
        assert_eq!(RELAXED_SIMD_PROBE[..4], *b"\0asm");
        assert_eq!(RELAXED_SIMD_PROBE.len(), 8 + 7 + 4 + 2 + 0x3d);
    }

    #[test]
    fn the_service_worker_config_leaves_out_the_service_worker() {
        let c = ServiceWorkerConfig::current();
        assert_eq!(c.shell.len(), SHELL_FILES.len() - 1);
        assert!(!c.shell.iter().any(|f| f == "sw.js"));
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("search/") && json.contains("manifest.json"));
    }
}
