//! Catalogues of `http://` image URLs, through a whole build against a local `tiny_http` server
//! (never the internet): the maintainer's User-Agent arrives, requests to one host are spaced by
//! `--delay`, a 503 with `Retry-After` is retried and a 404 skipped with its status, and a
//! rebuild only revalidates (`If-None-Match` → 304) so that just a changed image is downloaded
//! and embedded again.

mod common;

use std::collections::HashMap;
use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Build, Site, folder_catalogue, png, tempdir};

/// One request the server answered.
#[derive(Clone, Debug)]
struct Hit {
    path: String,
    user_agent: Option<String>,
    if_none_match: Option<String>,
    at: Instant,
    status: u16,
}

/// Files by URL path, each with its ETag.
type Files = Arc<Mutex<HashMap<String, (Vec<u8>, String)>>>;

/// A local image server: serves `files` with ETags and answers `If-None-Match` with 304;
/// `/flaky.png` answers 503 (`Retry-After: 1`) the first time, `/gone.png` always 404.
struct Server {
    port: u16,
    files: Files,
    hits: Arc<Mutex<Vec<Hit>>>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
}

impl Server {
    fn start() -> Self {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind test server");
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let files: Files = Arc::default();
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (files, hits, stop) = (files.clone(), hits.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(10)) else {
                        continue;
                    };
                    let at = Instant::now();
                    let header = |name: &'static str| {
                        request
                            .headers()
                            .iter()
                            .find(|h| h.field.equiv(name))
                            .map(|h| h.value.to_string())
                    };
                    let path = request.url().to_owned();
                    let if_none_match = header("If-None-Match");
                    let user_agent = header("User-Agent");
                    let earlier = hits
                        .lock()
                        .expect("hits")
                        .iter()
                        .filter(|h| h.path == path)
                        .count();
                    let mut headers = Vec::new();
                    let (status, body) = match path.as_str() {
                        "/gone.png" => (404, b"not here".to_vec()),
                        "/flaky.png" if earlier == 0 => {
                            headers.push(("Retry-After", "1".to_owned()));
                            (503, b"busy".to_vec())
                        }
                        _ => match files.lock().expect("files").get(&path).cloned() {
                            None => (404, Vec::new()),
                            Some((bytes, etag)) => {
                                headers.push(("ETag", etag.clone()));
                                if if_none_match.as_deref() == Some(etag.as_str()) {
                                    (304, Vec::new())
                                } else {
                                    headers.push(("Content-Type", "image/png".into()));
                                    (200, bytes)
                                }
                            }
                        },
                    };
                    hits.lock().expect("hits").push(Hit {
                        path,
                        user_agent,
                        if_none_match,
                        at,
                        status,
                    });
                    let headers = headers
                        .iter()
                        .map(|(n, v)| {
                            tiny_http::Header::from_bytes(n.as_bytes(), v.as_bytes())
                                .expect("header")
                        })
                        .collect();
                    let len = body.len();
                    let response = tiny_http::Response::new(
                        tiny_http::StatusCode(status),
                        headers,
                        Cursor::new(body),
                        Some(len),
                        None,
                    );
                    let _ = request.respond(response);
                }
            })
        };
        Self {
            port,
            files,
            hits,
            stop,
            worker: Some(worker),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Serves `bytes` at `path` under a new ETag.
    fn put(&self, path: &str, bytes: Vec<u8>, etag: &str) {
        self.files
            .lock()
            .expect("files")
            .insert(path.to_owned(), (bytes, format!("\"{etag}\"")));
    }

    /// Every request so far, in arrival order.
    fn hits(&self) -> Vec<Hit> {
        let mut hits = self.hits.lock().expect("hits").clone();
        hits.sort_by_key(|h| h.at);
        hits
    }

    /// Forgets the requests so far.
    fn clear(&self) {
        self.hits.lock().expect("hits").clear();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

const EMOJI: [&str; 6] = [
    "cat-face",
    "teapot",
    "bicycle",
    "hammer",
    "headphone",
    "red-apple",
];

/// Serves the committed emoji as `/<name>.png` and writes a JSON Lines catalogue of their
/// URLs (plus `extra` paths) to `dir/urls.jsonl`.
fn serve_emoji(server: &Server, dir: &Path, extra: &[&str]) -> std::path::PathBuf {
    let mut lines = String::new();
    for (i, name) in EMOJI.iter().enumerate() {
        let bytes =
            std::fs::read(folder_catalogue().join(format!("emoji/{name}.png"))).expect("emoji");
        server.put(&format!("/{name}.png"), bytes, &format!("v1-{i}"));
        lines.push_str(&format!(
            "{}\n",
            serde_json::json!({"id": name, "image": server.url(&format!("/{name}.png"))})
        ));
    }
    for name in extra {
        lines.push_str(&format!(
            "{}\n",
            serde_json::json!({"id": name, "image": server.url(&format!("/{name}.png"))})
        ));
    }
    let catalogue = dir.join("urls.jsonl");
    std::fs::write(&catalogue, lines).expect("write catalogue");
    catalogue
}

#[test]
fn a_build_downloads_politely_retries_a_503_and_skips_a_404() {
    let tmp = tempdir();
    let server = Server::start();
    let catalogue = serve_emoji(&server, tmp.path(), &["flaky", "gone"]);
    let teacup = std::fs::read(folder_catalogue().join("emoji/teacup.png")).expect("teacup");
    server.put("/flaky.png", teacup, "flaky-1");
    let agent = "vitrine-tests/1.0 (+mailto:maintainer@shop.example)";
    let out = tmp.path().join("site");
    let report = Build::new(&catalogue, &out, &tmp.path().join("cache"))
        .args(["--user-agent", agent, "--delay", "0.2"])
        .run()
        .expect(3);

    assert_eq!(report.rows, EMOJI.len() + 2);
    assert_eq!(report.indexed, EMOJI.len() + 1, "the 503 was retried");
    assert_eq!(report.skipped.len(), 1);
    let gone = &report.skipped[0];
    assert_eq!(
        (gone.row, gone.id.as_deref()),
        (EMOJI.len() + 2, Some("gone"))
    );
    assert!(
        gone.reason.contains("404") && gone.reason.contains("/gone.png"),
        "{}",
        gone.reason
    );
    let site = common::assert_complete_site(&out);
    assert!(site.items_by_id().contains_key("flaky"));

    let hits = server.hits();
    // Every image once, the flaky one twice; a 404 is not retried.
    assert_eq!(hits.len(), EMOJI.len() + 3, "{hits:#?}");
    for name in EMOJI.iter().chain(&["gone"]) {
        let path = format!("/{name}.png");
        assert_eq!(hits.iter().filter(|h| h.path == path).count(), 1, "{path}");
    }
    let flaky: Vec<&Hit> = hits.iter().filter(|h| h.path == "/flaky.png").collect();
    assert_eq!(
        flaky.iter().map(|h| h.status).collect::<Vec<_>>(),
        [503, 200]
    );
    assert!(
        flaky[1].at - flaky[0].at >= Duration::from_millis(900),
        "Retry-After: 1 is honoured"
    );
    for h in &hits {
        assert_eq!(h.user_agent.as_deref(), Some(agent), "{h:?}");
        assert_eq!(h.if_none_match, None, "nothing is cached yet: {h:?}");
    }
    // One host: requests are spaced by the delay (0.2 s, jittered to 0.1–0.3 s; measured here
    // on arrival, so with some slack), and after the 503 the whole host waits for Retry-After.
    // Without a delay they arrive microseconds apart.
    for pair in hits.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(80),
            "{} then {} only {gap:?} apart",
            pair[0].path,
            pair[1].path
        );
        if pair[0].status == 503 {
            assert!(gap >= Duration::from_millis(900), "{gap:?} after the 503");
        }
    }
}

#[test]
fn a_rebuild_only_revalidates_and_a_changed_image_is_downloaded_again() {
    let tmp = tempdir();
    let server = Server::start();
    let catalogue = serve_emoji(&server, tmp.path(), &[]);
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("site");
    let build = || Build::new(&catalogue, &out, &cache).args(["--delay", "0.05"]);

    let first = build().run().expect(0);
    assert_eq!((first.embedded, first.reused), (EMOJI.len(), 0));
    assert!(server.hits().iter().all(|h| h.status == 200));
    assert_eq!(server.hits().len(), EMOJI.len());
    let cat_thumb = Site::open(&out).items_by_id()["cat-face"].thumbnail.clone();

    // Unchanged: one conditional request per image, all answered 304, nothing downloaded.
    server.clear();
    let second = build().verbose().run();
    second.run.expect_code(0);
    let report = second.report.expect("report");
    assert_eq!((report.embedded, report.reused), (0, EMOJI.len()));
    let hits = server.hits();
    assert_eq!(hits.len(), EMOJI.len(), "{hits:#?}");
    for (i, name) in EMOJI.iter().enumerate() {
        let hit = hits
            .iter()
            .find(|h| h.path == format!("/{name}.png"))
            .expect("requested");
        assert_eq!(
            hit.if_none_match.as_deref(),
            Some(format!("\"v1-{i}\"").as_str())
        );
        assert_eq!(hit.status, 304);
    }
    assert!(
        second.run.stderr.contains(
            "downloads: 0 downloaded, 6 unchanged (304), 0 fresh in cache, 0 retries, 0 failed"
        ),
        "{}",
        second.run.stderr
    );

    // The cat changes (new bytes, new ETag): only it is downloaded and embedded again.
    let cat = image::open(folder_catalogue().join("emoji/cat-face.png")).expect("decode");
    server.put("/cat-face.png", png(&cat.fliph()), "v2-0");
    server.clear();
    let third = build().run().expect(0);
    assert_eq!((third.embedded, third.reused), (1, EMOJI.len() - 1));
    let hits = server.hits();
    assert_eq!(hits.len(), EMOJI.len());
    for h in &hits {
        assert!(h.if_none_match.is_some(), "{h:?}");
        let expected = if h.path == "/cat-face.png" { 200 } else { 304 };
        assert_eq!(h.status, expected, "{h:?}");
    }
    let site = common::assert_complete_site(&out);
    assert_ne!(site.items_by_id()["cat-face"].thumbnail, cat_thumb);
}
