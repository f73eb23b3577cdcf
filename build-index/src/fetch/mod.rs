//! A polite, cached HTTP image fetcher for catalogue rows that point at `http(s)` URLs.
//! Politeness (identifying User-Agent, per-host delay and concurrency limit, backoff honouring
//! `Retry-After`) keeps a shop from blocking its maintainer; the revalidating disk cache makes
//! rebuilds cheap for the shop's server.

mod cache;
mod hosts;
mod retry;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use anyhow::Context;

use cache::{Cache, CacheHeaders, Entry};
use hosts::{HostLimiter, Permit};

/// How [`Fetcher`] talks to servers. `Default` gives the CLI's defaults.
#[derive(Clone, Debug)]
pub(crate) struct FetchOptions {
    /// Sent as `User-Agent`; maintainers should add contact information.
    pub(crate) user_agent: String,
    /// Pause between consecutive requests to one host (`host:port`), jittered to
    /// 0.5–1.5× this value. The first request to a host does not wait.
    pub(crate) delay: Duration,
    /// How many requests may be in flight to one host at once (0 counts as 1).
    pub(crate) per_host: usize,
    /// Retries after a 408, 429, 5xx or transient transport error (so `max_retries + 1` attempts).
    pub(crate) max_retries: u32,
    /// First backoff wait; it doubles per retry (capped at 60 s) and is jittered.
    pub(crate) backoff_base: Duration,
    /// Longest `Retry-After` we are willing to sleep; a longer one fails the URL.
    pub(crate) max_retry_after: Duration,
    /// Largest accepted response body in bytes.
    pub(crate) max_bytes: u64,
    /// Time allowed to establish a connection.
    pub(crate) connect_timeout: Duration,
    /// Time allowed for each read from (and write to) the socket.
    pub(crate) read_timeout: Duration,
    /// Time allowed for a whole body to arrive (each read still has `read_timeout`): a server
    /// sending a byte now and then cannot hold a worker, and the build, for ever. Running out is
    /// retried like a dropped connection.
    pub(crate) total_timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            user_agent: format!(
                "vitrine-build-index/{} (+https://github.com/vitrine-search/vitrine)",
                env!("CARGO_PKG_VERSION")
            ),
            delay: Duration::from_secs(1),
            per_host: 1,
            max_retries: 4,
            backoff_base: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(300),
            max_bytes: 50 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(180),
        }
    }
}

/// Where the bytes of a [`Fetched`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FetchSource {
    /// The server sent the body (HTTP 2xx).
    Downloaded,
    /// The server confirmed the cached copy (HTTP 304); the body was not transferred.
    Revalidated,
    /// The cached copy was still fresh (`Cache-Control: max-age`); no request was made.
    Fresh,
    /// The server kept failing (5xx, 429, no connection) after every retry, so the cached copy
    /// from an earlier build was used: a short outage does not drop products.
    Stale,
}

/// A successfully fetched body.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// The response body.
    pub(crate) bytes: Vec<u8>,
    /// Whether it came over the network or from the cache (the build counts them via
    /// [`Fetcher::stats`]; tests check each fetch).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) source: FetchSource,
}

/// Counters over all fetches of one [`Fetcher`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FetchStats {
    /// Bodies downloaded (HTTP 2xx).
    pub(crate) downloaded: u64,
    /// Cached copies confirmed by HTTP 304.
    pub(crate) revalidated: u64,
    /// Cached copies served without a request.
    pub(crate) fresh: u64,
    /// Retried attempts (all URLs together).
    pub(crate) retries: u64,
    /// URLs that failed.
    pub(crate) failed: u64,
    /// Cached copies used because the server kept failing.
    pub(crate) stale: u64,
    /// Bodies that were fetched fine but could not be written to the cache (not fatal).
    pub(crate) cache_errors: u64,
}

/// Atomic counterparts of [`FetchStats`].
#[derive(Default)]
struct Counters {
    downloaded: AtomicU64,
    revalidated: AtomicU64,
    fresh: AtomicU64,
    retries: AtomicU64,
    failed: AtomicU64,
    stale: AtomicU64,
    cache_errors: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Fetches URLs politely through a disk cache. `Sync`: share one between threads, and the
/// per-host limit and delay hold across all of them.
pub(crate) struct Fetcher {
    agent: ureq::Agent,
    options: FetchOptions,
    cache: Cache,
    hosts: HostLimiter,
    counters: Counters,
    /// What became of each URL in this run (`None` while the first fetch of it runs): rows that
    /// share an image (a feed's variants) make one request, not one each.
    this_run: Mutex<HashMap<String, Arc<Mutex<Earlier>>>>,
}

/// How an earlier fetch of a URL in this run ended: `Ok` (the body is in the cache) or the error.
type Earlier = Option<Result<(), String>>;

/// What one HTTP attempt came to.
enum Attempt {
    /// A 2xx body, with the headers to cache it under.
    Downloaded(Vec<u8>, CacheHeaders),
    /// A 304: the cached copy is current.
    NotModified(CacheHeaders),
    /// A permanent failure.
    Fail(String),
    /// A transient failure: try again after `wait`.
    Retry { reason: String, wait: Duration },
}

impl Fetcher {
    /// A fetcher keeping its cache in `cache_dir` (created if missing).
    pub(crate) fn new(cache_dir: &Path, options: FetchOptions) -> anyhow::Result<Self> {
        let cache = Cache::open(cache_dir)
            .with_context(|| format!("cannot create download cache {}", cache_dir.display()))?;
        let agent = ureq::AgentBuilder::new()
            .user_agent(&options.user_agent)
            .timeout_connect(options.connect_timeout)
            .timeout_read(options.read_timeout)
            .timeout_write(options.read_timeout)
            .redirects(5)
            .build();
        let hosts = HostLimiter::new(options.per_host, options.delay);
        Ok(Self {
            agent,
            options,
            cache,
            hosts,
            counters: Counters::default(),
            this_run: Mutex::default(),
        })
    }

    /// The body at `url`, from the cache when it is fresh or the server confirms it, otherwise
    /// downloaded. Blocks for the per-host delay and retries; an error is a human sentence.
    /// A URL asked for again in the same run is not requested again: its body comes from the
    /// cache, or its error is repeated (a second caller waits for the first to finish).
    pub(crate) fn fetch(&self, url: &str) -> Result<Fetched, String> {
        let slot = Arc::clone(
            self.this_run
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(url.to_owned())
                .or_default(),
        );
        let mut earlier = slot.lock().unwrap_or_else(PoisonError::into_inner);
        match earlier.as_ref() {
            Some(Err(reason)) => {
                bump(&self.counters.failed);
                return Err(reason.clone());
            }
            Some(Ok(())) => {
                if let Some(entry) = self.cache.load(url) {
                    bump(&self.counters.fresh);
                    return Ok(Fetched {
                        bytes: entry.body,
                        source: FetchSource::Fresh,
                    });
                }
            }
            None => {}
        }
        let result = self.fetch_uncounted(url);
        if result.is_err() {
            bump(&self.counters.failed);
        }
        *earlier = Some(result.as_ref().map(|_| ()).map_err(Clone::clone));
        result
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self) -> FetchStats {
        let c = &self.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        FetchStats {
            downloaded: get(&c.downloaded),
            revalidated: get(&c.revalidated),
            fresh: get(&c.fresh),
            retries: get(&c.retries),
            failed: get(&c.failed),
            stale: get(&c.stale),
            cache_errors: get(&c.cache_errors),
        }
    }

    /// [`Fetcher::fetch`] without counting failures.
    fn fetch_uncounted(&self, url: &str) -> Result<Fetched, String> {
        let host = hosts::host_key(url).map_err(|e| format!("GET {url} failed: {e}"))?;
        let mut cached = self.cache.load(url);
        if let Some(entry) = cached.take_if(|entry| entry.is_fresh(cache::unix_now())) {
            bump(&self.counters.fresh);
            return Ok(Fetched {
                bytes: entry.body,
                source: FetchSource::Fresh,
            });
        }
        let mut not_before = None;
        let mut retries = 0;
        loop {
            let outcome = {
                let mut permit = self.hosts.acquire(&host, not_before);
                self.attempt(url, cached.as_ref(), retries, &mut permit)
            };
            match outcome {
                Attempt::Downloaded(bytes, headers) => {
                    if self
                        .cache
                        .store(url, &bytes, &headers, cache::unix_now())
                        .is_err()
                    {
                        bump(&self.counters.cache_errors);
                    }
                    bump(&self.counters.downloaded);
                    return Ok(Fetched {
                        bytes,
                        source: FetchSource::Downloaded,
                    });
                }
                Attempt::NotModified(headers) => {
                    let Some(entry) = cached else {
                        return Err(format!(
                            "GET {url} failed: HTTP 304 Not Modified, but no cached copy was offered"
                        ));
                    };
                    if self
                        .cache
                        .refresh(&entry, &headers, cache::unix_now())
                        .is_err()
                    {
                        bump(&self.counters.cache_errors);
                    }
                    bump(&self.counters.revalidated);
                    return Ok(Fetched {
                        bytes: entry.body,
                        source: FetchSource::Revalidated,
                    });
                }
                Attempt::Fail(reason) => return Err(format!("GET {url} failed: {reason}")),
                Attempt::Retry { reason, wait } => {
                    if retries >= self.options.max_retries {
                        if let Some(entry) = cached {
                            bump(&self.counters.stale);
                            return Ok(Fetched {
                                bytes: entry.body,
                                source: FetchSource::Stale,
                            });
                        }
                        let attempts = u64::from(retries) + 1;
                        let plural = if attempts == 1 { "" } else { "s" };
                        return Err(format!(
                            "GET {url} gave up after {attempts} attempt{plural}: {reason}"
                        ));
                    }
                    retries += 1;
                    bump(&self.counters.retries);
                    not_before = Some(hosts::after(wait));
                }
            }
        }
    }

    /// One GET of `url` (conditional when `cached` has validators), holding the host's permit.
    /// `retry` is how many attempts went before (for the backoff).
    fn attempt(
        &self,
        url: &str,
        cached: Option<&Entry>,
        retry: u32,
        permit: &mut Permit<'_>,
    ) -> Attempt {
        let mut request = self.agent.get(url);
        if let Some(entry) = cached {
            if let Some(etag) = entry.etag() {
                request = request.set("If-None-Match", etag);
            }
            if let Some(last_modified) = entry.last_modified() {
                request = request.set("If-Modified-Since", last_modified);
            }
        }
        let backoff = || retry::backoff(self.options.backoff_base, retry);
        let deadline = std::time::Instant::now() + self.options.total_timeout;
        let response = match request.call() {
            Ok(response) => response,
            Err(ureq::Error::Status(code, response)) => {
                return self.failed_status(code, &response, backoff(), permit);
            }
            Err(ureq::Error::Transport(transport)) => {
                let reason = retry::describe_transport(&transport);
                return if retry::is_transient(transport.kind()) {
                    Attempt::Retry {
                        reason,
                        wait: backoff(),
                    }
                } else {
                    Attempt::Fail(reason)
                };
            }
        };
        let code = response.status();
        let headers = CacheHeaders::from_response(&response);
        match code {
            304 => Attempt::NotModified(headers),
            200..=299 => match retry::read_body(response, self.options.max_bytes, deadline) {
                Ok(bytes) => Attempt::Downloaded(bytes, headers),
                Err(retry::BodyError::TooLarge(reason)) => Attempt::Fail(reason),
                Err(retry::BodyError::Io(reason)) => Attempt::Retry {
                    reason,
                    wait: backoff(),
                },
            },
            _ => Attempt::Fail(format!(
                "unexpected {}",
                retry::status_line(code, response.status_text())
            )),
        }
    }

    /// The outcome of an HTTP error status: retry 408, 429 and 5xx (honouring `Retry-After`,
    /// and holding the whole host off on 429/503), fail on the rest.
    fn failed_status(
        &self,
        code: u16,
        response: &ureq::Response,
        backoff: Duration,
        permit: &mut Permit<'_>,
    ) -> Attempt {
        let status = retry::status_line(code, response.status_text());
        if !(code == 408 || code == 429 || (500..=599).contains(&code)) {
            return Attempt::Fail(status);
        }
        let retry_after = response
            .header("Retry-After")
            .and_then(|value| retry::parse_retry_after(value, SystemTime::now()));
        let wait = match retry_after {
            Some(wait) if wait > self.options.max_retry_after => {
                return Attempt::Fail(format!(
                    "{status}; the server asked to retry after {} s, longer than the limit of {} s",
                    wait.as_secs(),
                    self.options.max_retry_after.as_secs()
                ));
            }
            Some(wait) => {
                permit.hold_off(wait);
                wait
            }
            None => {
                if code == 429 || code == 503 {
                    permit.hold_off(backoff);
                }
                backoff
            }
        };
        Attempt::Retry {
            reason: status,
            wait,
        }
    }
}
