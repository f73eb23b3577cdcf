//! A partitioned index in the browser: the page fetches only the groups and lists a query needs
//! (every other list and group file is deleted from the served site, and it still answers as
//! `build-index search` does), and thumbnails come out of their packs whether the host answers Range requests or
//! sends whole packs.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Result, anyhow, ensure};
use vitrine_index::EncoderFiles;
use vitrine_index::lists::Root;
use vitrine_protocol::INDEX_DIR;
use vitrine_search::{Engine, Error, Query, Selection};
use vitrine_testkit::encode;
use vitrine_testkit::page::{SEARCH_TIMEOUT, wait_ready, wait_top};
use vitrine_testkit::server::{Hit, Reply, TestServer, file_reply, whole_file_reply};
use vitrine_testkit::site_dir::SiteDir;
use vitrine_testkit::web::{Catalogue, WebSite};
use vitrine_testkit::webdriver::Browser;

/// Lists of the demo: 36 items in 6 lists.
const LISTS: &str = "6";

fn build() -> Result<WebSite> {
    let site = WebSite::build(
        &Catalogue::standard()?,
        &["--partitions", LISTS, "--max-probes", LISTS],
    )?;
    let m = site.manifest()?;
    ensure!(m.partition.lists == 6, "{:?}", m.partition);
    ensure!(
        m.files.lists.is_empty(),
        "a partitioned manifest names no list"
    );
    Ok(site)
}

/// The files beside the vectors' root (groups and lists) the page's own engine asks for to
/// answer `query` (run natively on the site's files).
fn files_needed(site: &WebSite, query: &Query) -> Result<BTreeSet<usize>> {
    let dir = SiteDir::open(&site.index_dir());
    let files = dir.manifest.files.clone();
    let mut engine = Engine::open(dir.manifest.clone(), &dir.read(&files.items.path))?;
    engine.add_vectors(&dir.read(&files.vectors.path))?;
    engine.add_encoder(EncoderFiles {
        config: dir.read(&files.encoder.config.path),
        weights: dir.read(&files.encoder.weights.path),
        tokenizer: dir.read(&files.encoder.tokenizer.path),
    })?;
    for (n, shard) in files.keywords.iter().enumerate() {
        engine
            .keywords_mut()
            .insert(n, &dir.read(&shard.file.path))?;
    }
    let mut needed = BTreeSet::new();
    loop {
        match engine.search(
            query,
            vitrine_index::SearchMode::Hybrid,
            &Selection::default(),
            48,
        ) {
            Err(Error::NeedFiles(files)) => {
                for j in files {
                    let file = engine
                        .vector_file(j)
                        .ok_or_else(|| anyhow!("no file {j}"))?;
                    engine.add_vector_file(j, &dir.read(&file.path))?;
                    needed.insert(j);
                }
            }
            r => {
                r?;
                return Ok(needed);
            }
        }
    }
}

/// Deletes every list and group file of the site but those of `keep`.
fn cut_files(site: &WebSite, keep: &BTreeSet<usize>) -> Result<usize> {
    let dir = SiteDir::open(&site.index_dir());
    let root = Root::from_bytes(&dir.read(&dir.manifest.files.vectors.path))?;
    let kept: BTreeSet<String> = keep.iter().map(|&j| root.file(j).path).collect();
    let mut cut = 0;
    for f in root.files() {
        if !kept.contains(&f.path) {
            std::fs::remove_file(site.index_dir().join(&f.path))?;
            cut += 1;
        }
    }
    Ok(cut)
}

/// A server of the site answering with `reply`, which refuses (503) the service worker's
/// background fetches of whole packs (no Range header): a quick service worker would otherwise
/// cache a pack before the page asks for it, so the page's own requests for that pack would never
/// reach the host. (Holding those fetches instead makes Chromium queue the page's request for the
/// same pack behind them, in its HTTP cache.)
fn serve_page_first(site: &WebSite, reply: fn(&Path, &Hit) -> Reply) -> Result<TestServer> {
    let root = site.root().to_path_buf();
    TestServer::start(move |hit, _| {
        if hit.file_path().contains("/thumbs/pack.") && hit.header("Range").is_none() {
            Reply::status(503)
        } else {
            reply(&root, hit)
        }
    })
}

/// Waits until the result `id` shows its thumbnail (decoded, non-empty) and returns its URL.
fn thumbnail_shown(browser: &Browser, id: &str) -> Result<String> {
    browser.wait_until(&format!("the thumbnail of {id}"), SEARCH_TIMEOUT, || {
        let v = browser.execute(
            "const i = document.querySelector(\
             `[data-testid=result][data-id=\"${arguments[0]}\"] img`);\
             return i && i.complete && i.naturalWidth > 0 ? i.src : null;",
            vec![serde_json::json!(id)],
        )?;
        Ok(v.as_str().map(str::to_string))
    })
}

#[test]
fn a_partitioned_site_answers_with_only_the_groups_and_lists_its_queries_need() -> Result<()> {
    let site = build()?;
    let query = "a red apple";
    let like = Catalogue::standard()?.ids()[7].clone();
    let text_files = files_needed(&site, &Query::Text(query.into()))?;
    let like_files = files_needed(&site, &Query::Like(like.clone()))?;
    let expected_text = site.cli_search(&["--text", query, "-k", "10"])?;
    let expected_like = site.cli_search(&["--like", &like, "-k", "10"])?;
    let keep: BTreeSet<usize> = text_files.union(&like_files).copied().collect();
    let cut = cut_files(&site, &keep)?;
    ensure!(
        cut > 0,
        "every list is probed ({keep:?}): nothing to cut off"
    );

    let server = serve_page_first(&site, file_reply)?;
    let browser = Browser::start()?;
    browser.goto(&site.page_url(&server, &format!("?q={}", encode(query))))?;
    wait_ready(&browser)?;
    wait_top(&browser, query, &expected_text)?;
    browser.goto(&site.page_url(&server, &format!("?like={}", encode(&like))))?;
    wait_top(&browser, "more like this", &expected_like)?;
    // Only the groups and lists needed were asked for; thumbnails came as ranges of their packs.
    let hits = server.hits();
    let lists: BTreeSet<String> = hits
        .iter()
        .map(|h| h.file_path())
        .filter(|p| p.contains("/lists/"))
        .collect();
    ensure!(
        lists.len() <= keep.len(),
        "fetched {lists:?}, the queries probe {keep:?}"
    );
    let src = thumbnail_shown(&browser, &expected_like[0])?;
    ensure!(src.starts_with("blob:"), "{src}");
    ensure!(
        hits.iter().any(
            |h| h.file_path().contains(&format!("{INDEX_DIR}thumbs/pack."))
                && h.header("Range").is_some()
        ),
        "no pack was asked for with a Range header"
    );
    Ok(())
}

#[test]
fn thumbnails_show_when_the_host_sends_whole_packs_each_fetched_once_by_the_page() -> Result<()> {
    let site = build()?;
    let server = serve_page_first(&site, whole_file_reply)?;
    let browser = Browser::start()?;
    let top = site.open_text_search(&browser, &server, "a cat")?;
    for id in &top[..4] {
        thumbnail_shown(&browser, id)?;
    }
    // The page asks each pack once (with a Range header the host ignores) and cuts the rest of
    // that pack's thumbnails from the bytes it has.
    let ranged: Vec<String> = server
        .hits()
        .iter()
        .filter(|h| h.file_path().contains("/thumbs/pack.") && h.header("Range").is_some())
        .map(|h| h.file_path())
        .collect();
    let distinct: BTreeSet<&String> = ranged.iter().collect();
    ensure!(
        !ranged.is_empty() && ranged.len() == distinct.len(),
        "packs asked for: {ranged:?}"
    );
    Ok(())
}
