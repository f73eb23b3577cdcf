//! Retries: `Retry-After`, backoff, permanent failures, exhausted attempts, transport errors.

use super::*;

#[test]
fn retry_after_on_503_is_honoured() {
    let server = serve(|_, index| match index {
        0 => Reply::status(503).header("Retry-After", "1"),
        _ => Reply::ok("img"),
    });
    let (_dir, f) = fetcher(quick());
    let fetched = f
        .fetch(&server.url_for("/a.jpg"))
        .expect("fetch after retry");
    assert_eq!(
        (fetched.bytes.as_slice(), fetched.source),
        (&b"img"[..], FetchSource::Downloaded)
    );
    let hits = server.hits();
    assert_eq!(hits.len(), 2);
    assert!(
        gaps(&hits)[0] >= Duration::from_millis(950),
        "waited only {:?}",
        gaps(&hits)[0]
    );
    let stats = f.stats();
    assert_eq!((stats.retries, stats.downloaded, stats.failed), (1, 1, 0));
}

#[test]
fn too_many_requests_without_retry_after_backs_off_exponentially() {
    let server = serve(|_, index| match index {
        0 | 1 => Reply::status(429),
        _ => Reply::ok("img"),
    });
    let base = Duration::from_millis(100);
    let (_dir, f) = fetcher(FetchOptions {
        backoff_base: base,
        ..quick()
    });
    f.fetch(&server.url_for("/a.jpg"))
        .expect("fetch after retries");
    let gaps = gaps(&server.hits());
    assert_eq!(gaps.len(), 2);
    assert!(gaps[0] >= base / 2, "first backoff only {:?}", gaps[0]);
    assert!(gaps[1] >= base, "second backoff only {:?}", gaps[1]);
    assert_eq!(f.stats().retries, 2);
}

#[test]
fn not_found_fails_at_once() {
    let server = serve(|_, _| Reply::status(404));
    let (_dir, f) = fetcher(quick());
    let url = server.url_for("/gone.jpg");
    let err = f.fetch(&url).expect_err("404").to_string();
    assert_eq!(err, format!("GET {url} failed: HTTP 404 Not Found"));
    assert_eq!(server.hits().len(), 1);
    let stats = f.stats();
    assert_eq!((stats.failed, stats.retries), (1, 0));
}

#[test]
fn exhausted_retries_name_the_attempts_and_the_last_status() {
    let server = serve(|_, _| Reply::status(500));
    let (_dir, f) = fetcher(FetchOptions {
        max_retries: 3,
        ..quick()
    });
    let url = server.url_for("/a.jpg");
    let err = f.fetch(&url).expect_err("always 500").to_string();
    assert_eq!(
        err,
        format!("GET {url} gave up after 4 attempts: HTTP 500 Internal Server Error")
    );
    assert_eq!(server.hits().len(), 4);
    let stats = f.stats();
    assert_eq!((stats.failed, stats.retries), (1, 3));

    let (_dir, f) = fetcher(FetchOptions {
        max_retries: 0,
        ..quick()
    });
    let err = f.fetch(&url).expect_err("always 500").to_string();
    assert!(
        err.ends_with("gave up after 1 attempt: HTTP 500 Internal Server Error"),
        "{err}"
    );
}

#[test]
fn retry_after_beyond_the_limit_fails_at_once() {
    let server = serve(|_, _| Reply::status(503).header("Retry-After", "3600"));
    let max_retry_after = Duration::from_secs(300);
    let (_dir, f) = fetcher(FetchOptions {
        max_retry_after,
        ..quick()
    });
    let err = f
        .fetch(&server.url_for("/a.jpg"))
        .expect_err("asked to wait an hour")
        .to_string();
    assert!(
        err.contains("HTTP 503") && err.contains("3600 s") && err.contains("300 s"),
        "{err}"
    );
    assert_eq!(server.hits().len(), 1);
}

#[test]
fn refused_connections_are_retried() {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let (_dir, f) = fetcher(FetchOptions {
        max_retries: 1,
        ..quick()
    });
    let err = f
        .fetch(&format!("http://127.0.0.1:{port}/a.jpg"))
        .expect_err("refused")
        .to_string();
    assert!(err.contains("gave up after 2 attempts"), "{err}");
    assert_eq!(f.stats().retries, 1);
}

#[test]
fn read_timeouts_are_retried() {
    let server = serve(|_, index| {
        if index == 0 {
            thread::sleep(Duration::from_millis(600));
        }
        Reply::ok("img")
    });
    let read_timeout = Duration::from_millis(200);
    let (_dir, f) = fetcher(FetchOptions {
        read_timeout,
        ..quick()
    });
    let fetched = f
        .fetch(&server.url_for("/slow.jpg"))
        .expect("fetch after timeout");
    assert_eq!(fetched.bytes, b"img");
    assert_eq!(f.stats().retries, 1);
}

#[test]
fn a_body_dripping_in_byte_by_byte_hits_the_whole_request_deadline_and_is_retried() {
    // Each byte comes well within the read timeout; the whole body would take 3 s.
    let server = serve(|_, index| match index {
        0 => Reply::ok(vec![b'x'; 60]).drip(Duration::from_millis(50)),
        _ => Reply::ok("img"),
    });
    let (_dir, f) = fetcher(FetchOptions {
        total_timeout: Duration::from_millis(500),
        ..quick()
    });
    let fetched = f
        .fetch(&server.url_for("/drip.jpg"))
        .expect("fetch after timeout");
    assert_eq!(fetched.bytes, b"img");
    assert_eq!(f.stats().retries, 1);
}

#[test]
fn a_server_that_keeps_failing_falls_back_to_the_copy_cached_by_an_earlier_build() {
    let server = serve(|_, index| match index {
        0 => Reply::ok("img v1").header("ETag", "\"v1\""),
        _ => Reply::status(503),
    });
    let url = server.url_for("/a.jpg");
    let dir = tempfile::tempdir().expect("temp dir");
    let options = || FetchOptions {
        max_retries: 2,
        ..quick()
    };
    let first = Fetcher::new(dir.path(), options()).expect("fetcher");
    assert_eq!(
        first.fetch(&url).expect("fetch").source,
        FetchSource::Downloaded
    );

    // The next build meets an outage: after every retry, the product keeps its cached image.
    let next = Fetcher::new(dir.path(), options()).expect("fetcher");
    let fetched = next.fetch(&url).expect("the cached copy");
    assert_eq!(
        (fetched.bytes.as_slice(), fetched.source),
        (&b"img v1"[..], FetchSource::Stale)
    );
    assert_eq!(server.hits().len(), 1 + 3, "it did try, with retries");
    let stats = next.stats();
    assert_eq!((stats.stale, stats.failed, stats.retries), (1, 0, 2));
}
