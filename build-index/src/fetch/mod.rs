//! A polite, cached, guarded HTTP image fetcher for catalogue rows that point at `http(s)` URLs.
//! Politeness (identifying User-Agent, per-host delay and concurrency limit, backoff honouring
//! `Retry-After`) keeps a shop from blocking its maintainer; the revalidating disk cache makes
//! rebuilds cheap for the shop's server. Guards keep one hostile or broken server to one skipped
//! row: redirects are followed here, hop by hop, only to public http(s) addresses; a URL has one
//! deadline for all its attempts; a host that keeps stalling is not tried again.

mod cache;
mod error;
mod guard;
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
pub(crate) use error::FetchError;
use error::Transient;
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
    /// Time allowed for one URL over all its attempts and waits.
    pub(crate) url_deadline: Duration,
    /// Downloads from one host that may run out of time before the host is given up on for the
    /// rest of the build.
    pub(crate) host_stalls: u32,
    /// Whether loopback, private and link-local addresses may be downloaded from.
    pub(crate) allow_private_network: bool,
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
            url_deadline: Duration::from_secs(300),
            host_stalls: 2,
            allow_private_network: false,
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
    /// Downloads per host (`host:port`) that ran out of time in this run.
    stalls: Mutex<HashMap<String, u32>>,
}

/// How an earlier fetch of a URL in this run ended: `Ok` (the body is in the cache) or the error.
type Earlier = Option<Result<(), FetchError>>;

/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 5;

/// What one HTTP attempt came to.
enum Attempt {
    /// A 2xx body, with the headers to cache it under.
    Downloaded(Vec<u8>, CacheHeaders),
    /// A 304: the cached copy is current.
    NotModified(CacheHeaders),
    /// A permanent failure.
    Fail(FetchError),
    /// The host has stalled too often in this build to be asked again.
    HostStalled(u32),
    /// A transient failure: try again after `wait`.
    Retry { reason: Transient, wait: Duration },
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
            // Redirects are followed by `attempt`, which checks every target.
            .redirects(0)
            .resolver(guard::GuardedResolver {
                allow_private: options.allow_private_network,
            })
            .build();
        let hosts = HostLimiter::new(options.per_host, options.delay);
        Ok(Self {
            agent,
            options,
            cache,
            hosts,
            counters: Counters::default(),
            this_run: Mutex::default(),
            stalls: Mutex::default(),
        })
    }

    /// The body at `url`, from the cache when it is fresh or the server confirms it, otherwise
    /// downloaded. Blocks for the per-host delay and retries.
    /// A URL asked for again in the same run is not requested again: its body comes from the
    /// cache, or its error is repeated (a second caller waits for the first to finish).
    pub(crate) fn fetch(&self, url: &str) -> Result<Fetched, FetchError> {
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
        let result = self.fetch_uncounted(url, true);
        if result.is_err() {
            bump(&self.counters.failed);
        }
        *earlier = Some(result.as_ref().map(|_| ()).map_err(Clone::clone));
        result
    }

    /// Downloads `url` again, whatever the cache holds (a body that turned out truncated), and
    /// caches the new body.
    pub(crate) fn refetch(&self, url: &str) -> Result<Fetched, FetchError> {
        let result = self.fetch_uncounted(url, false);
        if result.is_err() {
            bump(&self.counters.failed);
        }
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

    /// [`Fetcher::fetch`] without counting failures; `use_cache: false` ignores the cached copy.
    fn fetch_uncounted(&self, url: &str, use_cache: bool) -> Result<Fetched, FetchError> {
        let host = hosts::host_key(url).map_err(|problem| FetchError::BadUrl {
            url: url.to_owned(),
            problem,
        })?;
        let mut cached = if use_cache {
            self.cache.load(url)
        } else {
            None
        };
        if let Some(entry) = cached.take_if(|entry| entry.is_fresh(cache::unix_now())) {
            bump(&self.counters.fresh);
            return Ok(Fetched {
                bytes: entry.body,
                source: FetchSource::Fresh,
            });
        }
        // Set when the first request starts: waiting for a turn at a busy host is not the
        // server's time.
        let mut deadline = None;
        let mut not_before = None;
        let mut retries = 0;
        let outcome = loop {
            if let Some(deadline) = deadline
                && (not_before.is_some_and(|t| t >= deadline)
                    || std::time::Instant::now() >= deadline)
            {
                break Err(FetchError::Deadline {
                    url: url.to_owned(),
                    limit: self.options.url_deadline,
                });
            }
            match self.attempt(url, cached.as_ref(), retries, not_before, &mut deadline) {
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
                        return Err(FetchError::NotModifiedWithoutCopy {
                            url: url.to_owned(),
                        });
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
                Attempt::Fail(error) => return Err(error),
                Attempt::HostStalled(stalls) => {
                    break Err(FetchError::HostStalled {
                        url: url.to_owned(),
                        host: host.clone(),
                        stalls,
                    });
                }
                Attempt::Retry { reason, wait } => {
                    if retries >= self.options.max_retries {
                        break Err(FetchError::GaveUp {
                            url: url.to_owned(),
                            attempts: retries + 1,
                            last: reason,
                        });
                    }
                    retries += 1;
                    bump(&self.counters.retries);
                    not_before = Some(hosts::after(wait));
                }
            }
        };
        // The server kept failing, stalled or ran out of time: an earlier build's copy keeps the
        // product in the index.
        match (outcome, cached) {
            (Err(_), Some(entry)) => {
                bump(&self.counters.stale);
                Ok(Fetched {
                    bytes: entry.body,
                    source: FetchSource::Stale,
                })
            }
            (outcome, _) => outcome,
        }
    }

    /// The stalls of a host that has stalled too often to be tried again.
    fn stalled(&self, host: &str) -> Option<u32> {
        let stalls = *self
            .stalls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(host)?;
        (stalls >= self.options.host_stalls.max(1)).then_some(stalls)
    }

    /// Counts a download from `host` that ran out of time.
    fn stall(&self, host: &str) {
        *self
            .stalls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(host.to_owned())
            .or_default() += 1;
    }

    /// One GET of `url` (conditional when `cached` has validators), following redirects to
    /// public http(s) URLs, each hop holding its host's permit. `retry` is how many attempts
    /// went before (for the backoff); the body must have arrived by `deadline` (set here, when
    /// the URL's first request starts).
    fn attempt(
        &self,
        url: &str,
        cached: Option<&Entry>,
        retry: u32,
        not_before: Option<std::time::Instant>,
        deadline: &mut Option<std::time::Instant>,
    ) -> Attempt {
        let backoff = || retry::backoff(self.options.backoff_base, retry);
        let mut current = url.to_owned();
        for hop in 0..=MAX_REDIRECTS {
            let host = match hosts::host_key(&current) {
                Ok(host) => host,
                Err(problem) => {
                    return Attempt::Fail(FetchError::BadUrl {
                        url: url.to_owned(),
                        problem,
                    });
                }
            };
            let mut permit = self
                .hosts
                .acquire(&host, if hop == 0 { not_before } else { None });
            // Checked with the permit held: the host may have stalled while this one waited.
            if let Some(stalls) = self.stalled(&host) {
                return Attempt::HostStalled(stalls);
            }
            let mut request = self.agent.get(&current);
            if let Some(entry) = cached {
                if let Some(etag) = entry.etag() {
                    request = request.set("If-None-Match", etag);
                }
                if let Some(last_modified) = entry.last_modified() {
                    request = request.set("If-Modified-Since", last_modified);
                }
            }
            let deadline = *deadline.get_or_insert_with(|| hosts::after(self.options.url_deadline));
            let body_deadline = deadline.min(hosts::after(self.options.total_timeout));
            let response = match request.call() {
                Ok(response) => response,
                Err(ureq::Error::Status(code, response)) => {
                    return self.failed_status(url, code, &response, backoff(), &mut permit);
                }
                Err(ureq::Error::Transport(transport)) => {
                    if let Some(refusal) = guard::take_refusal() {
                        return Attempt::Fail(FetchError::NotPublic {
                            url: url.to_owned(),
                            host: host
                                .rsplit_once(':')
                                .map_or(host.clone(), |(h, _)| h.to_owned()),
                            ip: refusal.ip,
                            kind: refusal.kind,
                        });
                    }
                    let reason = retry::describe_transport(&transport);
                    return if retry::is_transient(transport.kind()) {
                        if retry::is_timeout(&transport) {
                            // Counted while the permit is held: the next request to this host
                            // sees it.
                            self.stall(&host);
                        }
                        Attempt::Retry {
                            reason: Transient::Connection(reason),
                            wait: backoff(),
                        }
                    } else {
                        Attempt::Fail(FetchError::Failed {
                            url: url.to_owned(),
                            reason,
                        })
                    };
                }
            };
            let code = response.status();
            if (300..400).contains(&code) && code != 304 {
                match redirect_target(&current, response.header("Location")) {
                    Ok(next) => {
                        current = next;
                        continue;
                    }
                    Err((target, why)) => {
                        return Attempt::Fail(FetchError::Redirect {
                            url: url.to_owned(),
                            target,
                            why,
                        });
                    }
                }
            }
            let headers = CacheHeaders::from_response(&response);
            return match code {
                304 => Attempt::NotModified(headers),
                200..=299 => {
                    match retry::read_body(response, self.options.max_bytes, body_deadline) {
                        Ok(bytes) => Attempt::Downloaded(bytes, headers),
                        Err(retry::BodyError::TooLarge(reason)) => {
                            Attempt::Fail(FetchError::TooLarge {
                                url: url.to_owned(),
                                reason,
                            })
                        }
                        Err(retry::BodyError::Io(reason)) => Attempt::Retry {
                            reason: Transient::Connection(reason),
                            wait: backoff(),
                        },
                        Err(retry::BodyError::Stalled(reason)) => {
                            self.stall(&host);
                            Attempt::Retry {
                                reason: Transient::Connection(reason),
                                wait: backoff(),
                            }
                        }
                    }
                }
                _ => Attempt::Fail(FetchError::Failed {
                    url: url.to_owned(),
                    reason: format!(
                        "unexpected {}",
                        retry::status_line(code, response.status_text())
                    ),
                }),
            };
        }
        Attempt::Fail(FetchError::Redirect {
            url: url.to_owned(),
            target: current,
            why: "one redirect too many (at most 5 are followed)",
        })
    }

    /// The outcome of an HTTP error status: retry 408, 429 and 5xx (honouring `Retry-After`,
    /// and holding the whole host off on 429/503), fail on the rest.
    fn failed_status(
        &self,
        url: &str,
        code: u16,
        response: &ureq::Response,
        backoff: Duration,
        permit: &mut Permit<'_>,
    ) -> Attempt {
        let status = retry::status_line(code, response.status_text());
        if !(code == 408 || code == 429 || (500..=599).contains(&code)) {
            return Attempt::Fail(FetchError::Failed {
                url: url.to_owned(),
                reason: status,
            });
        }
        let retry_after = response
            .header("Retry-After")
            .and_then(|value| retry::parse_retry_after(value, SystemTime::now()));
        let wait = match retry_after {
            Some(wait) if wait > self.options.max_retry_after => {
                return Attempt::Fail(FetchError::WaitTooLong {
                    url: url.to_owned(),
                    status,
                    wait,
                    limit: self.options.max_retry_after,
                });
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
            reason: Transient::Status(status),
            wait,
        }
    }
}

/// Where a redirect from `from` leads: an absolute http(s) URL with a host, or the target as
/// written and why it is not followed.
fn redirect_target(from: &str, location: Option<&str>) -> Result<String, (String, &'static str)> {
    let Some(location) = location else {
        return Err((String::new(), "with no Location header"));
    };
    let base = url::Url::parse(from).map_err(|_| (location.to_owned(), "which is not a URL"))?;
    let target = base
        .join(location)
        .map_err(|_| (location.to_owned(), "which is not a URL"))?;
    if !matches!(target.scheme(), "http" | "https") {
        return Err((
            target.to_string(),
            "which is not an http(s) URL; only http and https are followed",
        ));
    }
    if target.host_str().is_none_or(str::is_empty) {
        return Err((target.to_string(), "which has no host"));
    }
    Ok(target.to_string())
}
