//! What an adversarial pass found on the network side, each proved fixed against the test kit's
//! local servers: a redirect to `file:`, `data:` or `mailto:` costs one row (it used to panic the
//! whole build); non-public addresses are refused unless allowed; a truncated download is fetched
//! once more, then skipped; a server dripping bytes costs one deadline, and a host that keeps
//! stalling is not tried again.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{folder_catalogue, new_build, tempdir};
use vitrine_testkit::server::{Reply, TestServer};

/// A committed image's bytes.
fn image(name: &str) -> Vec<u8> {
    std::fs::read(folder_catalogue().join(name)).expect("image")
}

/// Writes a JSON Lines catalogue of `(id, url)` rows into `dir`.
fn catalogue(dir: &std::path::Path, rows: &[(&str, String)]) -> std::path::PathBuf {
    let text: String = rows
        .iter()
        .map(|(id, url)| format!("{}\n", serde_json::json!({"id": id, "image": url})))
        .collect();
    let path = dir.join("urls.jsonl");
    std::fs::write(&path, text).expect("catalogue");
    path
}

#[test]
fn redirects_to_other_schemes_cost_one_row_each() {
    let cat = image("emoji/cat-face.png");
    let server = TestServer::start(move |hit, _| match hit.file_path().as_str() {
        "/file" => Reply::status(302).header("Location", "file:///etc/hostname"),
        "/data" => Reply::status(301).header("Location", "data:,x"),
        "/mail" => Reply::status(307).header("Location", "mailto:shop@example.com"),
        "/loop" => Reply::status(302).header("Location", "/loop"),
        "/hop" => Reply::status(302).header("Location", "/cat.png"),
        "/cat.png" => Reply::ok(cat.clone()).header("Content-Type", "image/png"),
        _ => Reply::status(404),
    })
    .expect("server");
    let tmp = tempdir();
    let rows: Vec<(&str, String)> = ["file", "data", "mail", "loop", "hop"]
        .into_iter()
        .map(|p| (p, server.url_for(&format!("/{p}"))))
        .collect();
    let feed = catalogue(tmp.path(), &rows);
    let built = new_build(&feed, &tmp.path().join("site"), &tmp.path().join("cache"))
        .args(["--allow-private-network", "--delay", "0"])
        .run();
    let report = built.expect(3);
    assert_eq!(report.indexed, 1, "the redirect to an image is followed");
    let reasons: Vec<(&str, &str)> = report
        .skipped
        .iter()
        .map(|s| (s.id.as_deref().unwrap_or(""), s.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    for (id, target) in [
        ("file", "file:///etc/hostname"),
        ("data", "data:,x"),
        ("mail", "mailto:shop@example.com"),
    ] {
        let reason = reasons.iter().find(|r| r.0 == id).expect("skipped").1;
        assert!(
            reason.contains(target) && reason.contains("not an http(s) URL"),
            "{id}: {reason}"
        );
    }
    let looping = reasons.iter().find(|r| r.0 == "loop").expect("skipped").1;
    assert!(looping.contains("redirect too many"), "{looping}");
}

#[test]
fn non_public_addresses_are_refused_unless_allowed() {
    let cat = image("emoji/cat-face.png");
    let server = TestServer::start(move |_, _| Reply::ok(cat.clone())).expect("server");
    let tmp = tempdir();
    let rows = [
        ("ip", server.url_for("/a.png")),
        ("name", format!("http://localhost:{}/b.png", server.port())),
    ];
    let feed = catalogue(tmp.path(), &rows);
    let report = new_build(&feed, &tmp.path().join("site"), &tmp.path().join("cache"))
        .run()
        .expect(1);
    assert_eq!(report.skipped.len(), 2);
    for s in &report.skipped {
        assert!(
            s.reason.contains("loopback") && s.reason.contains("--allow-private-network"),
            "{}",
            s.reason
        );
    }
    assert_eq!(server.requests(), 0, "nothing was requested");
    new_build(&feed, &tmp.path().join("site"), &tmp.path().join("cache"))
        .args(["--allow-private-network"])
        .run()
        .expect(0);
}

#[test]
fn a_truncated_download_is_fetched_once_more_then_skipped() {
    let jpeg = image("photos/house-cat.jpg");
    let cut = jpeg[..jpeg.len() / 2].to_vec();
    let requests = Arc::new(AtomicUsize::new(0));
    let server = {
        let requests = requests.clone();
        TestServer::start(move |hit, _| match hit.file_path().as_str() {
            "/cut.jpg" => {
                requests.fetch_add(1, Ordering::SeqCst);
                Reply::ok(cut.clone())
            }
            // Cut short once (a dropped connection at a careless proxy), whole the next time.
            "/flaky.jpg" if requests.fetch_add(1, Ordering::SeqCst) == 0 => {
                Reply::ok(jpeg[..jpeg.len() / 3].to_vec())
            }
            _ => Reply::ok(jpeg.clone()),
        })
        .expect("server")
    };
    let tmp = tempdir();
    let feed = catalogue(tmp.path(), &[("cut", server.url_for("/cut.jpg"))]);
    let report = new_build(&feed, &tmp.path().join("site"), &tmp.path().join("cache"))
        .args(["--allow-private-network", "--delay", "0"])
        .run()
        .expect(1);
    assert!(
        report.skipped[0].reason.contains("truncated")
            && report.skipped[0].reason.contains("downloaded twice"),
        "{:?}",
        report.skipped
    );
    assert_eq!(
        requests.load(Ordering::SeqCst),
        2,
        "fetched exactly once more"
    );

    requests.store(0, Ordering::SeqCst);
    let feed = catalogue(tmp.path(), &[("flaky", server.url_for("/flaky.jpg"))]);
    let report = new_build(&feed, &tmp.path().join("site2"), &tmp.path().join("cache2"))
        .args(["--allow-private-network", "--delay", "0"])
        .run()
        .expect(0);
    assert_eq!(report.indexed, 1);
}

#[test]
fn a_dripping_server_costs_one_deadline_per_url_and_then_is_not_tried() {
    let cat = image("emoji/cat-face.png");
    let drip =
        TestServer::start(|_, _| Reply::ok(vec![0u8; 10_000]).drip(Duration::from_millis(20)))
            .expect("drip server");
    let good = TestServer::start(move |_, _| Reply::ok(cat.clone())).expect("server");
    let tmp = tempdir();
    let feed = catalogue(
        tmp.path(),
        &[
            ("slow-1", drip.url_for("/1.png")),
            ("slow-2", drip.url_for("/2.png")),
            ("slow-3", drip.url_for("/3.png")),
            ("fine", good.url_for("/cat.png")),
        ],
    );
    let report = new_build(&feed, &tmp.path().join("site"), &tmp.path().join("cache"))
        .args([
            "--allow-private-network",
            "--delay",
            "0",
            "--download-timeout",
            "1",
        ])
        .run()
        .expect(3);
    assert_eq!(report.indexed, 1);
    // Whichever two rows reach the host first run out of time; the third is not tried.
    let count = |words: &str| {
        report
            .skipped
            .iter()
            .filter(|s| s.reason.contains(words))
            .count()
    };
    assert_eq!(count("took more than 1 s"), 2, "{:?}", report.skipped);
    assert_eq!(
        count("stopped answering earlier in this build"),
        1,
        "{:?}",
        report.skipped
    );
    assert_eq!(drip.requests(), 2, "the stalled host was not asked again");
}
