//! Tests of the fetcher against local `tiny_http` servers (never the internet): a harness,
//! and the politeness tests (User-Agent, per-host delay and concurrency).

mod caching;
mod retries;

use std::io::Cursor;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::*;

/// One request as a [`TestServer`] saw it.
#[derive(Clone, Debug)]
struct Hit {
    path: String,
    headers: Vec<(String, String)>,
    at: Instant,
}

impl Hit {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }
}

/// What a [`TestServer`] answers.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunked: bool,
    /// Send the body one byte per this long.
    drip: Option<Duration>,
}

impl Reply {
    fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
            chunked: false,
            drip: None,
        }
    }

    fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::ok("")
        }
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Send the body chunked, without `Content-Length`.
    fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    /// Send the body one byte per `pause`.
    fn drip(mut self, pause: Duration) -> Self {
        self.drip = Some(pause);
        self
    }
}

/// A body read one byte per pause.
struct Drip {
    body: Cursor<Vec<u8>>,
    pause: Duration,
}

impl std::io::Read for Drip {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        thread::sleep(self.pause);
        self.body.read(&mut buf[..1])
    }
}

/// An HTTP server on 127.0.0.1 (random port) with `workers` threads answering through a
/// handler that gets each request and its arrival index; it records every request.
struct TestServer {
    port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl TestServer {
    fn start(
        workers: usize,
        handler: impl Fn(&Hit, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind test server"));
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let handler = Arc::new(handler);
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..workers)
            .map(|_| {
                let (server, handler) = (Arc::clone(&server), Arc::clone(&handler));
                let (hits, stop) = (Arc::clone(&hits), Arc::clone(&stop));
                thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(20))
                        else {
                            continue;
                        };
                        let hit = Hit {
                            path: request.url().to_owned(),
                            headers: (request.headers().iter())
                                .map(|h| (h.field.to_string(), h.value.to_string()))
                                .collect(),
                            at: Instant::now(),
                        };
                        let index = {
                            let mut hits = hits.lock().expect("hits");
                            hits.push(hit.clone());
                            hits.len() - 1
                        };
                        let reply = handler(&hit, index);
                        let headers = (reply.headers.iter())
                            .map(|(n, v)| tiny_http::Header::from_bytes(n.as_bytes(), v.as_bytes()))
                            .collect::<Result<Vec<_>, _>>()
                            .expect("valid header");
                        let len = (!reply.chunked).then_some(reply.body.len());
                        let body: Box<dyn std::io::Read + Send> = match reply.drip {
                            Some(pause) => Box::new(Drip {
                                body: Cursor::new(reply.body),
                                pause,
                            }),
                            None => Box::new(Cursor::new(reply.body)),
                        };
                        let response = tiny_http::Response::new(
                            tiny_http::StatusCode(reply.status),
                            headers,
                            body,
                            len,
                            None,
                        );
                        let _ = request.respond(response.with_chunked_threshold(usize::MAX));
                    }
                })
            })
            .collect();
        Self {
            port,
            hits,
            stop,
            workers,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("hits").clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
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
    let server = TestServer::start(1, |_, _| Reply::ok("img"));
    let ua = "vitrine-build-index/test (+mailto:shop@example.com)";
    let (_dir, f) = fetcher(FetchOptions {
        user_agent: ua.to_owned(),
        ..quick()
    });
    let fetched = f.fetch(&server.url("/a.jpg")).expect("fetch");
    assert_eq!(fetched.bytes, b"img");
    assert_eq!(fetched.source, FetchSource::Downloaded);
    assert_eq!(server.hits()[0].header("User-Agent"), Some(ua));

    let default = FetchOptions::default().user_agent;
    assert!(default.starts_with("vitrine-build-index/") && default.contains("(+https://"));
}

#[test]
fn unsupported_urls_fail_without_a_request() {
    let (_dir, f) = fetcher(quick());
    let err = f.fetch("ftp://example.com/a.jpg").expect_err("ftp");
    assert!(
        err.contains("ftp://example.com/a.jpg") && err.contains("unsupported"),
        "{err}"
    );
    assert_eq!(f.stats().failed, 1);
}

#[test]
fn delay_spaces_requests_to_one_host_but_not_the_first() {
    let server = TestServer::start(1, |_, _| Reply::ok("img"));
    let delay = Duration::from_millis(200);
    let (_dir, f) = fetcher(FetchOptions { delay, ..quick() });
    let start = Instant::now();
    for path in ["/a.jpg", "/b.jpg", "/c.jpg"] {
        f.fetch(&server.url(path)).expect("fetch");
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
        TestServer::start(4, move |_, _| {
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
                    f.fetch(&server.url(&format!("/{t}-{i}.jpg")))
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
        TestServer::start(4, move |_, _| {
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
            s.spawn(move || f.fetch(&server.url(&format!("/{t}.jpg"))).expect("fetch"));
        }
    });
    assert_eq!(in_flight.max(), 2);
}

#[test]
fn different_hosts_are_fetched_concurrently() {
    let in_flight = Arc::new(InFlight::default());
    let start_server = || {
        let in_flight = Arc::clone(&in_flight);
        TestServer::start(1, move |_, _| {
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
            s.spawn(move || f.fetch(&server.url("/a.jpg")).expect("fetch"));
        }
    });
    assert_eq!(
        in_flight.max(),
        2,
        "requests to two hosts (ports) did not overlap"
    );
}
