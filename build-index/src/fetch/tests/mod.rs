//! Tests of the fetcher against the test kit's local server (never the internet), and the
//! politeness tests (User-Agent, per-host delay and concurrency).

mod caching;
mod retries;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub(super) use vitrine_testkit::server::{Hit, Reply, TestServer};

use super::*;

/// A test server answering through `handler`.
fn serve(handler: impl Fn(&Hit, usize) -> Reply + Send + Sync + 'static) -> TestServer {
    TestServer::start(handler).expect("test server")
}

/// Counts requests a server is working on at once, remembering the maximum.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlight {
    /// Marks a request in flight for `hold`.
    fn hold(&self, hold: Duration) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        thread::sleep(hold);
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

/// Fast options for tests: no delay, 10 ms backoff base, 2 retries, short timeouts.
fn quick() -> FetchOptions {
    FetchOptions {
        delay: Duration::ZERO,
        backoff_base: Duration::from_millis(10),
        max_retries: 2,
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(2),
        // The test servers listen on 127.0.0.1.
        allow_private_network: true,
        ..FetchOptions::default()
    }
}

/// A fetcher over a fresh cache directory (kept alive by the returned guard).
fn fetcher(options: FetchOptions) -> (tempfile::TempDir, Fetcher) {
    let dir = tempfile::tempdir().expect("temp dir");
    let fetcher = Fetcher::new(dir.path(), options).expect("fetcher");
    (dir, fetcher)
}

/// Times between consecutive hits.
fn gaps(hits: &[Hit]) -> Vec<Duration> {
    hits.windows(2).map(|w| w[1].at - w[0].at).collect()
}

#[test]
fn fetcher_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Fetcher>();
}

#[test]
fn user_agent_is_sent_as_configured() {
    let server = serve(|_, _| Reply::ok("img"));
    let ua = "vitrine-build-index/test (+mailto:shop@example.com)";
    let (_dir, f) = fetcher(FetchOptions {
        user_agent: ua.to_owned(),
        ..quick()
    });
    let fetched = f.fetch(&server.url_for("/a.jpg")).expect("fetch");
    assert_eq!(fetched.bytes, b"img");
    assert_eq!(fetched.source, FetchSource::Downloaded);
    assert_eq!(server.hits()[0].header("User-Agent"), Some(ua));

    let default = FetchOptions::default().user_agent;
    assert!(default.starts_with("vitrine-build-index/") && default.contains("(+https://"));
}

#[test]
fn unsupported_urls_fail_without_a_request() {
    let (_dir, f) = fetcher(quick());
    let err = f
        .fetch("ftp://example.com/a.jpg")
        .expect_err("ftp")
        .to_string();
    assert!(
        err.contains("ftp://example.com/a.jpg") && err.contains("unsupported"),
        "{err}"
    );
    assert_eq!(f.stats().failed, 1);
}

#[test]
fn delay_spaces_requests_to_one_host_but_not_the_first() {
    let server = serve(|_, _| Reply::ok("img"));
    let delay = Duration::from_millis(200);
    let (_dir, f) = fetcher(FetchOptions { delay, ..quick() });
    let start = Instant::now();
    for path in ["/a.jpg", "/b.jpg", "/c.jpg"] {
        f.fetch(&server.url_for(path)).expect("fetch");
    }
    let hits = server.hits();
    assert_eq!(hits.len(), 3);
    assert!(
        hits[0].at - start < delay / 2,
        "first request waited {:?}",
        hits[0].at - start
    );
    for gap in gaps(&hits) {
        assert!(gap >= delay / 2, "requests only {gap:?} apart");
    }
}

#[test]
fn per_host_limit_serialises_requests_across_threads() {
    let in_flight = Arc::new(InFlight::default());
    let server = {
        let in_flight = Arc::clone(&in_flight);
        serve(move |_, _| {
            in_flight.hold(Duration::from_millis(25));
            Reply::ok("img")
        })
    };
    let (_dir, f) = fetcher(quick());
    thread::scope(|s| {
        for t in 0..4 {
            let (f, server) = (&f, &server);
            s.spawn(move || {
                for i in 0..2 {
                    f.fetch(&server.url_for(&format!("/{t}-{i}.jpg")))
                        .expect("fetch");
                }
            });
        }
    });
    assert_eq!(server.hits().len(), 8);
    assert_eq!(in_flight.max(), 1, "two requests to one host overlapped");
    assert_eq!(f.stats().downloaded, 8);
}

#[test]
fn several_slots_per_host_allow_overlap() {
    let in_flight = Arc::new(InFlight::default());
    let server = {
        let in_flight = Arc::clone(&in_flight);
        serve(move |_, _| {
            in_flight.hold(Duration::from_millis(200));
            Reply::ok("img")
        })
    };
    let (_dir, f) = fetcher(FetchOptions {
        per_host: 2,
        ..quick()
    });
    thread::scope(|s| {
        for t in 0..4 {
            let (f, server) = (&f, &server);
            s.spawn(move || {
                f.fetch(&server.url_for(&format!("/{t}.jpg")))
                    .expect("fetch")
            });
        }
    });
    assert_eq!(in_flight.max(), 2);
}

#[test]
fn different_hosts_are_fetched_concurrently() {
    let in_flight = Arc::new(InFlight::default());
    let start_server = || {
        let in_flight = Arc::clone(&in_flight);
        serve(move |_, _| {
            in_flight.hold(Duration::from_millis(300));
            Reply::ok("img")
        })
    };
    let servers = [start_server(), start_server()];
    let (_dir, f) = fetcher(FetchOptions {
        delay: Duration::from_secs(5),
        ..quick()
    });
    thread::scope(|s| {
        for server in &servers {
            let f = &f;
            s.spawn(move || f.fetch(&server.url_for("/a.jpg")).expect("fetch"));
        }
    });
    assert_eq!(
        in_flight.max(),
        2,
        "requests to two hosts (ports) did not overlap"
    );
}
