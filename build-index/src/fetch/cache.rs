//! The on-disk download cache: per URL, `<sha256(url)>.body` and `<sha256(url)>.json`
//! (URL, validators, freshness, body digest). Files are replaced atomically and the body's
//! digest is checked on every read, so an interrupted build never leaves a trusted bad copy.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use vitrine_index::sha256_hex;

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The freshness lifetime a `Cache-Control` value grants, in seconds: `max-age`, unless
/// `no-cache` or `no-store` demand revalidation every time. (`s-maxage` is for shared caches.)
pub(super) fn max_age(cache_control: &str) -> Option<u64> {
    let mut max_age = None;
    for directive in cache_control.split(',') {
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "no-cache" | "no-store" => return None,
            "max-age" => max_age = value.trim().trim_matches('"').parse().ok(),
            _ => {}
        }
    }
    max_age
}

/// The response headers the cache keeps.
#[derive(Debug, Default)]
pub(super) struct CacheHeaders {
    etag: Option<String>,
    last_modified: Option<String>,
    cache_control: Option<String>,
    /// `Age`: how long the response already sat in an intermediate cache.
    age: u64,
}

impl CacheHeaders {
    /// The caching headers of `response`.
    pub(super) fn from_response(response: &ureq::Response) -> Self {
        let get = |name| response.header(name).map(str::to_owned);
        Self {
            etag: get("ETag"),
            last_modified: get("Last-Modified"),
            cache_control: get("Cache-Control"),
            age: response
                .header("Age")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
        }
    }
}

/// The `.json` file next to a cached body.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    url: String,
    etag: Option<String>,
    last_modified: Option<String>,
    /// Freshness lifetime from `Cache-Control: max-age`, if any.
    max_age: Option<u64>,
    /// When the response was generated (Unix seconds; our clock minus `Age`).
    fetched_at: u64,
    /// Hex SHA-256 of the body.
    sha256: String,
    /// Body length in bytes.
    len: u64,
}

/// A cached response whose body matched its recorded digest.
#[derive(Debug)]
pub(super) struct Entry {
    meta: Meta,
    /// The verified body.
    pub(super) body: Vec<u8>,
}

impl Entry {
    /// Whether `Cache-Control: max-age` still covers the copy at `now` (Unix seconds).
    pub(super) fn is_fresh(&self, now: u64) -> bool {
        let Some(max_age) = self.meta.max_age else {
            return false;
        };
        now.checked_sub(self.meta.fetched_at)
            .is_some_and(|age| age < max_age)
    }

    /// The `ETag` to revalidate with.
    pub(super) fn etag(&self) -> Option<&str> {
        self.meta.etag.as_deref()
    }

    /// The `Last-Modified` to revalidate with.
    pub(super) fn last_modified(&self) -> Option<&str> {
        self.meta.last_modified.as_deref()
    }
}

/// A cache directory.
pub(super) struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache in `dir`, creating the directory.
    pub(super) fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn paths(&self, url: &str) -> (PathBuf, PathBuf) {
        let stem = sha256_hex(url.as_bytes());
        (
            self.dir.join(format!("{stem}.body")),
            self.dir.join(format!("{stem}.json")),
        )
    }

    /// The cached copy of `url`, if there is one whose body is intact.
    pub(super) fn load(&self, url: &str) -> Option<Entry> {
        let (body_path, meta_path) = self.paths(url);
        let meta: Meta = serde_json::from_slice(&fs::read(meta_path).ok()?).ok()?;
        if meta.url != url {
            return None;
        }
        let body = fs::read(body_path).ok()?;
        (body.len() as u64 == meta.len && sha256_hex(&body) == meta.sha256)
            .then_some(Entry { meta, body })
    }

    /// Records `body` as the current copy of `url`, received at `now`.
    pub(super) fn store(
        &self,
        url: &str,
        body: &[u8],
        headers: &CacheHeaders,
        now: u64,
    ) -> io::Result<()> {
        let (body_path, meta_path) = self.paths(url);
        let meta = Meta {
            url: url.to_owned(),
            etag: headers.etag.clone(),
            last_modified: headers.last_modified.clone(),
            max_age: headers.cache_control.as_deref().and_then(max_age),
            fetched_at: now.saturating_sub(headers.age),
            sha256: sha256_hex(body),
            len: body.len() as u64,
        };
        // Body first: a crash between the two renames leaves a digest mismatch, not a lie.
        write_atomic(&body_path, body)?;
        write_atomic(&meta_path, &serde_json::to_vec_pretty(&meta)?)
    }

    /// Updates `entry`'s metadata after the server answered 304 at `now` (RFC 9111 §4.3.4:
    /// headers sent with the 304 replace the stored ones).
    pub(super) fn refresh(
        &self,
        entry: &Entry,
        headers: &CacheHeaders,
        now: u64,
    ) -> io::Result<()> {
        let old = &entry.meta;
        let meta = Meta {
            url: old.url.clone(),
            etag: headers.etag.clone().or_else(|| old.etag.clone()),
            last_modified: headers
                .last_modified
                .clone()
                .or_else(|| old.last_modified.clone()),
            max_age: match &headers.cache_control {
                Some(cache_control) => max_age(cache_control),
                None => old.max_age,
            },
            fetched_at: now.saturating_sub(headers.age),
            sha256: old.sha256.clone(),
            len: old.len,
        };
        let (_, meta_path) = self.paths(&old.url);
        write_atomic(&meta_path, &serde_json::to_vec_pretty(&meta)?)
    }
}

/// Writes `bytes` to a uniquely named temporary file beside `path`, then renames it over
/// `path`, so readers see the old file or the complete new one, never a partial one.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
    let tmp = path.with_file_name(format!(".{name}.{:016x}.tmp", fastrand::u64(..)));
    let result = fs::File::create(&tmp)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_reads_the_directive_and_respects_no_cache() {
        assert_eq!(max_age("max-age=3600"), Some(3600));
        assert_eq!(
            max_age("public, MAX-AGE = \"60\", must-revalidate"),
            Some(60)
        );
        assert_eq!(max_age("s-maxage=600"), None);
        assert_eq!(max_age("max-age=60, no-cache"), None);
        assert_eq!(max_age("no-store"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }

    #[test]
    fn store_load_and_freshness() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let cache = Cache::open(dir.path())?;
        let url = "http://example.com/a.jpg";
        assert!(cache.load(url).is_none());
        let headers = CacheHeaders {
            etag: Some("\"v1\"".into()),
            cache_control: Some("max-age=100".into()),
            age: 10,
            ..CacheHeaders::default()
        };
        cache.store(url, b"body", &headers, 1_000)?;
        let entry = cache
            .load(url)
            .ok_or_else(|| io::Error::other("not cached"))?;
        assert_eq!(entry.body, b"body");
        assert_eq!(entry.etag(), Some("\"v1\""));
        assert!(
            entry.is_fresh(1_089) && !entry.is_fresh(1_090),
            "Age counts against max-age"
        );
        assert!(cache.load("http://example.com/b.jpg").is_none());

        // A 304 without Cache-Control keeps max-age and restarts the clock.
        cache.refresh(&entry, &CacheHeaders::default(), 2_000)?;
        let entry = cache
            .load(url)
            .ok_or_else(|| io::Error::other("not cached"))?;
        assert!(entry.is_fresh(2_050) && entry.etag() == Some("\"v1\""));

        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path())?.collect::<Result<_, _>>()?;
        assert_eq!(names.len(), 2, "{names:?}");
        Ok(())
    }

    #[test]
    fn a_truncated_body_is_not_trusted() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let cache = Cache::open(dir.path())?;
        let url = "http://example.com/a.jpg";
        cache.store(url, b"complete body", &CacheHeaders::default(), 1_000)?;
        let (body_path, meta_path) = cache.paths(url);
        fs::write(&body_path, b"complete")?;
        assert!(cache.load(url).is_none());
        fs::write(&body_path, b"complete body")?;
        assert!(cache.load(url).is_some());
        fs::write(&meta_path, b"{ garbage")?;
        assert!(cache.load(url).is_none());
        Ok(())
    }
}
