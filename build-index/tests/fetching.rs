//! Catalogues of `http://` image URLs, through a whole build against the test kit's local server
//! (never the internet): the maintainer's User-Agent arrives, requests to one host are spaced by
//! `--delay`, a 503 with `Retry-After` is retried and a 404 skipped with its status, and a
//! rebuild only revalidates (`If-None-Match` → 304) so that just a changed image is downloaded
//! and embedded again; with `--thumbnails remote` the items show their image URLs, and given
//! their embeddings the build requests no image at all.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vitrine_testkit::server::{Reply, TestServer};

use common::{SiteDir, folder_catalogue, new_build, png, tempdir};

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

/// A local image host on the test kit's server: serves `files` with ETags and answers
/// `If-None-Match` with 304; `/flaky.png` answers 503 (`Retry-After: 1`) the first time,
/// `/gone.png` always 404.
struct Server {
    server: TestServer,
    files: Files,
    /// The status of each request, by arrival.
    statuses: Arc<Mutex<HashMap<usize, u16>>>,
    /// Requests before this one are forgotten.
    cleared: Mutex<usize>,
}

impl Server {
    fn start() -> Self {
        let files: Files = Arc::default();
        let statuses: Arc<Mutex<HashMap<usize, u16>>> = Arc::default();
        let flaky_seen = Arc::new(Mutex::new(false));
        let server = {
            let (files, statuses) = (files.clone(), statuses.clone());
            TestServer::start(move |hit, n| {
                let path = hit.file_path();
                let reply = match path.as_str() {
                    "/gone.png" => Reply::ok("not here").with_status(404),
                    "/flaky.png"
                        if !std::mem::replace(&mut *flaky_seen.lock().expect("flaky"), true) =>
                    {
                        Reply::ok("busy")
                            .with_status(503)
                            .header("Retry-After", "1")
                    }
                    _ => match files.lock().expect("files").get(&path).cloned() {
                        None => Reply::status(404),
                        Some((bytes, etag)) => {
                            if hit.header("If-None-Match") == Some(etag.as_str()) {
                                Reply::status(304).header("ETag", &etag)
                            } else {
                                Reply::ok(bytes)
                                    .header("ETag", &etag)
                                    .header("Content-Type", "image/png")
                            }
                        }
                    },
                };
                statuses.lock().expect("statuses").insert(n, reply.code());
                reply
            })
            .expect("test server")
        };
        Self {
            server,
            files,
            statuses,
            cleared: Mutex::new(0),
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.url_for(path)
    }

    /// Serves `bytes` at `path` under a new ETag.
    fn put(&self, path: &str, bytes: Vec<u8>, etag: &str) {
        self.files
            .lock()
            .expect("files")
            .insert(path.to_owned(), (bytes, format!("\"{etag}\"")));
    }

    /// Every request since the last [`Server::clear`], in arrival order.
    fn hits(&self) -> Vec<Hit> {
        let statuses = self.statuses.lock().expect("statuses").clone();
        let cleared = *self.cleared.lock().expect("cleared");
        self.server
            .hits()
            .into_iter()
            .enumerate()
            .skip(cleared)
            .map(|(n, h)| Hit {
                path: h.file_path(),
                user_agent: h.header("User-Agent").map(str::to_owned),
                if_none_match: h.header("If-None-Match").map(str::to_owned),
                at: h.at,
                status: statuses.get(&n).copied().unwrap_or(0),
            })
            .collect()
    }

    /// Forgets the requests so far.
    fn clear(&self) {
        *self.cleared.lock().expect("cleared") = self.server.requests();
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
    let report = new_build(&catalogue, &out, &tmp.path().join("cache"))
        .args(["--allow-private-network"])
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
    let build =
        || new_build(&catalogue, &out, &cache).args(["--delay", "0.05", "--allow-private-network"]);

    let first = build().run().expect(0);
    assert_eq!((first.embedded, first.reused), (EMOJI.len(), 0));
    assert!(server.hits().iter().all(|h| h.status == 200));
    assert_eq!(server.hits().len(), EMOJI.len());
    let cat_thumb = SiteDir::open(&out).items_by_id()["cat-face"]
        .thumbnail
        .clone();

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

#[test]
fn remote_thumbnails_show_the_shops_image_urls_and_imported_embeddings_download_nothing() {
    let tmp = tempdir();
    let server = Server::start();
    let catalogue = serve_emoji(&server, tmp.path(), &[]);
    let build = |name: &str| {
        new_build(
            &catalogue,
            &tmp.path().join(name),
            &tmp.path().join(format!("{name}-cache")),
        )
        .args(["--delay", "0", "--allow-private-network"])
        .args(["--thumbnails", "remote"])
    };
    let shows_urls = |name: &str| {
        let site = common::assert_complete_site(&tmp.path().join(name));
        for (id, item) in site.items_by_id() {
            assert_eq!(item.thumbnail, None, "{id}: nothing packed");
            assert_eq!(item.image, Some(server.url(&format!("/{id}.png"))), "{id}");
        }
        assert_eq!(site.chunk_table().packs().count(), 0, "no thumbnail pack");
    };

    // Each image is downloaded to be embedded, but no thumbnail is made or published.
    let downloaded = build("downloaded").verbose().run();
    assert!(
        downloaded
            .run
            .stderr
            .contains("6 item(s) show their picture from its image URL (--thumbnails remote)"),
        "{}",
        downloaded.run.stderr
    );
    let report = downloaded.expect(0);
    assert_eq!(
        (report.embedded, report.remote_images),
        (EMOJI.len(), EMOJI.len())
    );
    assert_eq!(server.hits().len(), EMOJI.len());
    shows_urls("downloaded");

    // Given their embeddings (as a GPU cluster's job writes them), no image is even requested.
    let dim = 16; // the tiny test model's
    let data: Vec<f32> = (0..EMOJI.len() * dim)
        .map(|x| ((x * 7) % 11) as f32 - 5.0)
        .collect();
    let meta: String = EMOJI
        .iter()
        .map(|name| format!("{}\n", serde_json::json!({ "id": name })))
        .collect();
    let (npy, metadata) = (tmp.path().join("emb.npy"), tmp.path().join("emb.jsonl"));
    std::fs::write(&npy, vitrine_testkit::npy_f32(EMOJI.len(), dim, &data)).unwrap();
    std::fs::write(&metadata, meta).unwrap();
    server.clear();
    let report = build("imported")
        .args(["--embeddings".as_ref(), npy.as_os_str()])
        .args(["--embeddings-metadata".as_ref(), metadata.as_os_str()])
        .run()
        .expect(0);
    assert_eq!((report.embedded, report.remote_images), (0, EMOJI.len()));
    assert_eq!(server.hits().len(), 0, "{:#?}", server.hits());
    shows_urls("imported");
}
