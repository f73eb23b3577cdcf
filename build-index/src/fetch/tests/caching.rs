//! The download cache seen over HTTP: revalidation, freshness, corruption, size limits.

use super::*;

/// A resource whose body and ETag are `v{version}`, answering 304 to a matching
/// `If-None-Match`; it also sends a fixed `Last-Modified`.
fn versioned(version: Arc<AtomicUsize>) -> TestServer {
    serve(move |hit, _| {
        let etag = format!("\"v{}\"", version.load(Ordering::SeqCst));
        let reply = if hit.header("If-None-Match") == Some(etag.as_str()) {
            Reply::status(304)
        } else {
            Reply::ok(format!("body v{}", version.load(Ordering::SeqCst)))
        };
        reply
            .header("ETag", &etag)
            .header("Last-Modified", "Tue, 01 Jul 2025 10:00:00 GMT")
    })
}

#[test]
fn etag_revalidation_uses_the_cached_body() {
    let server = versioned(Arc::new(AtomicUsize::new(1)));
    let url = server.url_for("/a.jpg");
    let dir = tempfile::tempdir().expect("temp dir");
    let first = Fetcher::new(dir.path(), quick()).expect("fetcher");
    assert_eq!(
        first.fetch(&url).expect("fetch").source,
        FetchSource::Downloaded
    );

    let second = Fetcher::new(dir.path(), quick()).expect("fetcher");
    let fetched = second.fetch(&url).expect("fetch");
    assert_eq!(
        (fetched.bytes.as_slice(), fetched.source),
        (&b"body v1"[..], FetchSource::Revalidated)
    );
    let hits = server.hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].header("If-None-Match"), None);
    assert_eq!(hits[1].header("If-None-Match"), Some("\"v1\""));
    assert_eq!(
        hits[1].header("If-Modified-Since"),
        Some("Tue, 01 Jul 2025 10:00:00 GMT")
    );
    let stats = second.stats();
    assert_eq!(
        (stats.downloaded, stats.revalidated, stats.fresh),
        (0, 1, 0)
    );
}

#[test]
fn last_modified_alone_revalidates() {
    let last_modified = "Wed, 02 Jul 2025 08:00:00 GMT";
    let server = serve(move |hit, _| {
        let reply = match hit.header("If-Modified-Since") {
            Some(since) if since == last_modified => Reply::status(304),
            _ => Reply::ok("img"),
        };
        reply.header("Last-Modified", last_modified)
    });
    // Each fetch is a build of its own (within one build a URL is fetched once).
    let dir = tempfile::tempdir().expect("temp dir");
    let build = || Fetcher::new(dir.path(), quick()).expect("fetcher");
    let url = server.url_for("/a.jpg");
    assert_eq!(
        build().fetch(&url).expect("fetch").source,
        FetchSource::Downloaded
    );
    let fetched = build().fetch(&url).expect("fetch");
    assert_eq!(
        (fetched.bytes.as_slice(), fetched.source),
        (&b"img"[..], FetchSource::Revalidated)
    );
}

#[test]
fn a_changed_resource_is_downloaded_again() {
    let version = Arc::new(AtomicUsize::new(1));
    let server = versioned(Arc::clone(&version));
    let url = server.url_for("/a.jpg");
    // Each fetch is a build of its own (within one build a URL is fetched once).
    let dir = tempfile::tempdir().expect("temp dir");
    let build = || Fetcher::new(dir.path(), quick()).expect("fetcher");
    assert_eq!(build().fetch(&url).expect("fetch").bytes, b"body v1");
    version.store(2, Ordering::SeqCst);
    let fetched = build().fetch(&url).expect("fetch");
    assert_eq!(
        (fetched.bytes.as_slice(), fetched.source),
        (&b"body v2"[..], FetchSource::Downloaded)
    );
    // The cache now holds v2, which the server confirms.
    let fetched = build().fetch(&url).expect("fetch");
    assert_eq!(
        (fetched.bytes.as_slice(), fetched.source),
        (&b"body v2"[..], FetchSource::Revalidated)
    );
    assert_eq!(server.hits()[2].header("If-None-Match"), Some("\"v2\""));
}

#[test]
fn a_fresh_copy_makes_no_request() {
    let server = serve(|_, _| Reply::ok("img").header("Cache-Control", "max-age=3600"));
    let url = server.url_for("/a.jpg");
    let dir = tempfile::tempdir().expect("temp dir");
    let first = Fetcher::new(dir.path(), quick()).expect("fetcher");
    assert_eq!(
        first.fetch(&url).expect("fetch").source,
        FetchSource::Downloaded
    );
    let second = Fetcher::new(dir.path(), quick()).expect("fetcher");
    let fetched = second.fetch(&url).expect("fetch");
    assert_eq!(
        (fetched.bytes.as_slice(), fetched.source),
        (&b"img"[..], FetchSource::Fresh)
    );
    assert_eq!(server.hits().len(), 1);
    assert_eq!(second.stats().fresh, 1);
}

#[test]
fn no_cache_forces_revalidation_despite_max_age() {
    let server = serve(|hit, _| {
        let reply = if hit.header("If-None-Match").is_some() {
            Reply::status(304)
        } else {
            Reply::ok("img")
        };
        reply
            .header("ETag", "\"x\"")
            .header("Cache-Control", "max-age=3600, no-cache")
    });
    // Each fetch is a build of its own (within one build a URL is fetched once).
    let dir = tempfile::tempdir().expect("temp dir");
    let build = || Fetcher::new(dir.path(), quick()).expect("fetcher");
    let url = server.url_for("/a.jpg");
    build().fetch(&url).expect("fetch");
    assert_eq!(
        build().fetch(&url).expect("fetch").source,
        FetchSource::Revalidated
    );
    assert_eq!(server.hits().len(), 2);
}

#[test]
fn a_corrupted_cache_body_is_refetched() {
    let server = serve(|_, _| {
        Reply::ok("img")
            .header("ETag", "\"x\"")
            .header("Cache-Control", "max-age=3600")
    });
    let url = server.url_for("/a.jpg");
    let (dir, f) = fetcher(quick());
    f.fetch(&url).expect("fetch");
    let bodies: Vec<_> = std::fs::read_dir(dir.path())
        .expect("cache dir")
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "body"))
        .collect();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let mut bytes = std::fs::read(&bodies[0]).expect("read body");
    bytes[0] ^= 0xff;
    std::fs::write(&bodies[0], bytes).expect("corrupt body");

    let fetched = f.fetch(&url).expect("fetch");
    assert_eq!(
        (fetched.bytes.as_slice(), fetched.source),
        (&b"img"[..], FetchSource::Downloaded)
    );
    let hits = server.hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(
        hits[1].header("If-None-Match"),
        None,
        "a corrupt copy must not be revalidated"
    );
    assert_eq!(
        std::fs::read(&bodies[0]).expect("read body"),
        b"img",
        "the cache was repaired"
    );
}

#[test]
fn oversized_bodies_fail() {
    let server = serve(|hit, _| {
        let reply = Reply::ok(vec![7u8; 1000]);
        if hit.path.contains("chunked") {
            reply.chunked()
        } else {
            reply
        }
    });
    let (_dir, f) = fetcher(FetchOptions {
        max_bytes: 100,
        ..quick()
    });
    for path in ["/declared.jpg", "/chunked.jpg"] {
        let err = f
            .fetch(&server.url_for(path))
            .expect_err("too large")
            .to_string();
        assert!(
            err.contains("limit of 100 bytes") && err.contains(path),
            "{err}"
        );
    }
    let ok = FetchOptions {
        max_bytes: 1000,
        ..quick()
    };
    let (_dir, f) = fetcher(ok);
    assert_eq!(
        f.fetch(&server.url_for("/chunked.jpg"))
            .expect("at the limit")
            .bytes
            .len(),
        1000
    );
    assert_eq!(server.hits().len(), 3, "oversized bodies are not retried");
}

#[test]
fn rows_sharing_an_image_url_make_one_request_per_run() {
    let server = serve(|hit, _| {
        if hit.path == "/gone.jpg" {
            Reply::status(404)
        } else {
            Reply::ok("img").header("ETag", "\"v1\"")
        }
    });
    let (_dir, f) = fetcher(quick());
    let (shared, gone) = (server.url_for("/shared.jpg"), server.url_for("/gone.jpg"));
    // Four rows (a feed's variants) on four workers at once.
    let mut sources: Vec<FetchSource> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| f.fetch(&shared))).collect();
        handles
            .into_iter()
            .map(|h| {
                let fetched = h.join().expect("thread").expect("fetch");
                assert_eq!(fetched.bytes, b"img");
                fetched.source
            })
            .collect()
    });
    sources.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(
        sources,
        [
            FetchSource::Downloaded,
            FetchSource::Fresh,
            FetchSource::Fresh,
            FetchSource::Fresh
        ]
    );
    // A missing image fails every row that names it, with one request.
    let first = f.fetch(&gone).expect_err("404").to_string();
    assert_eq!(f.fetch(&gone).expect_err("404 again").to_string(), first);
    assert_eq!(server.hits().len(), 2, "one request per URL");
    let stats = f.stats();
    assert_eq!((stats.downloaded, stats.fresh, stats.failed), (1, 3, 2));
}
