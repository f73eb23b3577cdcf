//! Hostile or broken input: catalogue text is shown as text, never run as HTML; only web links
//! become links; a damaged index file stops the page with a clear error instead of wrong results,
//! is never kept by the offline cache, and a thumbnail that does not match its hash is not shown;
//! pictures left on the shop's own image host (`--thumbnails remote`) load within the page's
//! Content-Security-Policy, one the host has lost is left out, and that host is not told the
//! visitor's query.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, anyhow, ensure};
use serde_json::{Value, json};
use vitrine_index::chunks::METADATA_STEM;
use vitrine_testkit::page::{
    SEARCH_TIMEOUT, result_ids, result_mode, sw_controls, wait_degraded, wait_ready, wait_top,
};
use vitrine_testkit::server::{Reply, TestServer, file_reply};
use vitrine_testkit::site_dir::SiteDir;
use vitrine_testkit::web::{Catalogue, WebSite, XSS_TITLE};
use vitrine_testkit::webdriver::Browser;
use vitrine_testkit::{encode, repo_root};

/// Installed before the page's own scripts: records alerts and Content-Security-Policy
/// violations (an injected `onerror=` handler would be one).
const SPY: &str = "window.__alerted = undefined; window.__csp = [];\
    window.alert = (m) => { window.__alerted = String(m); };\
    document.addEventListener('securitypolicyviolation',\
        (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));";

#[test]
fn html_in_titles_is_shown_as_text() -> Result<()> {
    let catalogue = Catalogue::standard()?;
    let xss = catalogue
        .id_titled(XSS_TITLE)
        .ok_or_else(|| anyhow::anyhow!("the test catalogue has no row titled {XSS_TITLE:?}"))?;
    let site = WebSite::build(&catalogue, &[])?;
    let server = site.serve()?;
    let browser = Browser::start()?;
    browser.on_new_document(SPY)?;
    // "More like this" of the row puts it first; every title of the catalogue is on the page.
    browser.goto(&site.page_url(&server, &format!("?like={}", encode(&xss))))?;
    wait_ready(&browser)?;
    let expected = site.cli_search(&["--like", &xss, "-k", "10"])?;
    wait_top(&browser, "the XSS row's neighbours", &expected)?;

    let card = browser.find(&format!("[data-testid=result][data-id=\"{xss}\"]"))?;
    let title = card.find(".title")?.prop("textContent")?;
    ensure!(
        title.as_deref() == Some(XSS_TITLE),
        "the title reads {title:?}, not the raw {XSS_TITLE:?}"
    );
    let injected = browser.execute(
        "return document.querySelectorAll('main img[src=\"x\"], main img:not([src^=\"blob:\"]),\
         [data-testid=result] .title *').length;",
        vec![],
    )?;
    ensure!(
        injected == 0,
        "{injected} injected element(s) in the results"
    );
    let spy = browser.execute("return [window.__alerted ?? null, window.__csp];", vec![])?;
    ensure!(spy[0].is_null(), "alert() ran with {}", spy[0]);
    ensure!(
        spy[1].as_array().is_some_and(Vec::is_empty),
        "Content-Security-Policy violations: {}",
        spy[1]
    );

    // Non-Latin titles come through intact too.
    let titles = browser.execute(
        "return Array.from(document.querySelectorAll('[data-testid=result] .title'), t => t.textContent);",
        vec![],
    )?;
    let shown: Vec<&str> = titles
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
        .collect();
    for row in &catalogue.rows {
        let t = row["title"].as_str().unwrap_or_default();
        if !t.is_ascii()
            && result_ids(&browser)?
                .iter()
                .any(|i| row["id"] == i.as_str())
        {
            ensure!(
                shown.contains(&t),
                "{t:?} is not shown as is among {shown:?}"
            );
        }
    }
    Ok(())
}

#[test]
fn corrupted_vectors_file_degrades_to_keyword_search_naming_the_file() -> Result<()> {
    let site = WebSite::build(&Catalogue::standard()?, &[])?;
    let vectors = site.manifest()?.files.vectors.path;
    let path = site.index_dir().join(&vectors);
    let mut bytes = std::fs::read(&path)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, &bytes)?;

    let server = site.serve()?;
    let browser = Browser::start()?;
    browser.goto(&site.page_url(&server, "?q=cat"))?;
    let message = wait_degraded(&browser)?;
    ensure!(
        message.contains(&vectors) && message.contains("SHA-256"),
        "the status does not name {vectors} and its SHA-256: {message:?}"
    );
    // Keyword search still answers; nothing is ranked with the damaged vectors.
    if !result_ids(&browser)?.is_empty() {
        let mode = result_mode(&browser)?;
        ensure!(
            mode.as_deref() == Some("keyword"),
            "results ranked {mode:?} from a damaged vectors file"
        );
    }
    Ok(())
}

#[test]
fn damaged_files_are_never_cached_and_a_thumbnail_under_a_wrong_name_is_not_shown() -> Result<()> {
    let site = WebSite::build(&Catalogue::standard()?, &[])?;
    let manifest = site.manifest()?;
    let path_of = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no such field: {v}"))
    };
    let vectors = manifest.files.vectors.path.clone();
    let dir = SiteDir::open(&site.index_dir());
    let entry = dir.chunk_table().chunks[0].clone();
    let chunk: Value = serde_json::from_slice(&dir.read(&entry.metadata.path))?;
    let b = &chunk["items"][1];
    let b_id = path_of(&b["id"])?;
    // A bit flipped in the second item's thumbnail inside its pack, and in the vectors.
    let pack_path = site
        .index_dir()
        .join(&entry.pack.as_ref().ok_or_else(|| anyhow!("no pack"))?.path);
    let mut pack = std::fs::read(&pack_path)?;
    let at = b["thumbnail"]["offset"]
        .as_u64()
        .ok_or_else(|| anyhow!("no offset"))? as usize;
    pack[at + 100] ^= 0x01;
    std::fs::write(&pack_path, &pack)?;
    let vectors_path = site.index_dir().join(&vectors);
    let good = std::fs::read(&vectors_path)?;
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0x01;
    std::fs::write(&vectors_path, &bad)?;

    let server = site.serve()?;
    let browser = Browser::start()?;
    browser.goto(&site.page_url(&server, &format!("?like={}", encode(&b_id))))?;
    wait_degraded(&browser)?;
    browser.wait_until(
        "the service worker to control the page",
        Duration::from_secs(30),
        || Ok(sw_controls(&browser)?.then_some(())),
    )?;
    // Now through the service worker, which must not keep the damaged bytes.
    browser.reload()?;
    let message = wait_degraded(&browser)?;
    ensure!(
        message.contains(&vectors),
        "the error names {vectors}: {message:?}"
    );

    // The maintainer uploads the file again: the next visit loads it and searches.
    std::fs::write(&vectors_path, &good)?;
    browser.reload()?;
    wait_ready(&browser)?;
    let top = wait_top(
        &browser,
        "more like the second item",
        std::slice::from_ref(&b_id),
    )?;
    // The other thumbnails are shown (the check does not reject good bytes); the damaged one
    // is not.
    let thumbnail = |id: &str, script: &'static str| {
        browser.wait_until(
            &format!("the thumbnail of {id} to load or fail"),
            SEARCH_TIMEOUT,
            || {
                let v = browser.execute(script, vec![json!(id)])?;
                Ok(v.as_bool().filter(|&b| b))
            },
        )
    };
    thumbnail(
        &top[1],
        "const img = document.querySelector(\
         `[data-testid=result][data-id=\"${arguments[0]}\"] img`);\
         return !!(img && img.complete && img.naturalWidth > 0);",
    )?;
    thumbnail(
        &b_id,
        "return !!document.querySelector(\
         `[data-testid=result][data-id=\"${arguments[0]}\"] [data-testid=thumbnail-missing]`);",
    )?;
    ensure!(
        browser
            .execute(
                "return document.querySelector(\
                 `[data-testid=result][data-id=\"${arguments[0]}\"] img`) === null;",
                vec![json!(b_id)],
            )?
            .as_bool()
            == Some(true),
        "the thumbnail that does not match its hash is shown"
    );
    Ok(())
}

#[test]
fn only_web_links_become_product_links_and_prices_show() -> Result<()> {
    let mut catalogue = Catalogue::standard()?;
    // Every third row has a price and an https link (see `Catalogue::standard`); one more row
    // gets a `javascript:` link, which must not become a link.
    let evil = catalogue
        .rows
        .iter()
        .position(|r| r.get("link").is_none())
        .ok_or_else(|| anyhow::anyhow!("every row has a link"))?;
    catalogue.rows[evil]["link"] = "javascript:alert(1)".into();
    let site = WebSite::build(&catalogue, &[])?;
    let server = site.serve()?;
    let browser = Browser::start()?;
    browser.on_new_document(SPY)?;
    browser.goto(&site.page_url(&server, "?q=thing"))?;
    wait_ready(&browser)?;
    // K = 48 exceeds the catalogue: every item is on the page.
    browser.wait_until("every item to show", SEARCH_TIMEOUT, || {
        Ok((result_ids(&browser)?.len() == catalogue.rows.len()).then_some(()))
    })?;
    let cards = browser.execute(
        "return Array.from(document.querySelectorAll('[data-testid=result]'), c => {\
           const a = c.querySelector('a.product'); const p = c.querySelector('.price');\
           return [c.dataset.id, a ? a.getAttribute('href') : null, p ? p.textContent : null];\
         });",
        vec![],
    )?;
    for card in cards.as_array().into_iter().flatten() {
        let id = card[0].as_str().unwrap_or_default();
        let row = catalogue
            .rows
            .iter()
            .find(|r| r["id"] == id)
            .ok_or_else(|| anyhow::anyhow!("the page shows an unknown id {id}"))?;
        let link = row["link"].as_str().filter(|l| l.starts_with("https://"));
        ensure!(
            card[1].as_str() == link,
            "{id}: link {}, the catalogue has {}",
            card[1],
            row["link"]
        );
        ensure!(
            card[2] == row["price"],
            "{id}: price {}, the catalogue has {}",
            card[2],
            row["price"]
        );
    }
    let spy = browser.execute("return window.__alerted ?? null;", vec![])?;
    ensure!(spy.is_null(), "alert() ran with {spy}");
    Ok(())
}

#[test]
fn an_overflowing_weight_still_ranks_and_a_chunk_missing_items_ends_in_an_error() -> Result<()> {
    let catalogue = Catalogue::standard()?;
    let site = WebSite::build(&catalogue, &[])?;
    let server = site.serve()?;
    let browser = Browser::start()?;

    // A weight too large for a float used to give NaN scores, which the page dropped: the
    // search never ended. Now it ranks like the largest weight.
    let huge = format!("{}:cat", "9".repeat(60));
    browser.goto(&site.page_url(&server, &format!("?q={}", encode(&huge))))?;
    wait_ready(&browser)?;
    let expected = site.cli_search(&["--text", &huge, "-k", "10"])?;
    ensure!(expected == site.cli_search(&["--text", "100:cat", "-k", "10"])?);
    wait_top(&browser, "an overflowing weight", &expected)?;

    // A build whose metadata chunk lacks the items the manifest counts (written consistently,
    // hashes and all): "More like this" of the last item needs one that is not there.
    let index = site.index_dir();
    let mut manifest = site.manifest()?;
    let mut table = SiteDir::open(&index).chunk_table();
    let entry = table.chunks[0].clone();
    let mut chunk = vitrine_index::MetadataChunk::from_json(
        &std::fs::read(index.join(&entry.metadata.path))?,
        entry.first,
    )?;
    let last = chunk.items.pop().ok_or_else(|| anyhow!("an empty chunk"))?;
    let bytes = serde_json::to_vec(&chunk)?;
    let file = vitrine_index::FileRef::named(METADATA_STEM, "json", &bytes);
    std::fs::write(index.join(&file.path), &bytes)?;
    table.chunks[0].metadata = file;
    let table_bytes = table.to_bytes();
    let table_file = vitrine_index::FileRef::for_content("chunks", "bin", &table_bytes);
    std::fs::write(index.join(&table_file.path), &table_bytes)?;
    manifest.files.chunks = table_file;
    manifest.seal();
    std::fs::write(index.join(vitrine_index::MANIFEST), manifest.to_json())?;
    browser.goto(&site.page_url(&server, &format!("?like={}", encode(&last.id))))?;
    wait_ready(&browser)?;
    let message = browser.wait_until("the search to end in an error", SEARCH_TIMEOUT, || {
        let e = browser.execute(
            "const e = document.querySelector('[data-testid=search-error]');\
                 return e ? e.textContent : null;",
            vec![],
        )?;
        Ok(e.as_str().map(str::to_string))
    })?;
    ensure!(
        message.contains("no item") && message.contains("damaged"),
        "the error does not say what is wrong: {message:?}"
    );
    Ok(())
}

#[test]
fn remote_pictures_load_from_the_shops_image_host_which_never_sees_the_query() -> Result<()> {
    // The shop's image host: another origin, serving the catalogue's images (but `gone`).
    let dir = repo_root().join("tests/catalogues");
    let gone: Arc<Mutex<String>> = Arc::default();
    let host = {
        let (dir, gone) = (dir.clone(), gone.clone());
        TestServer::start(move |hit, _| {
            if *gone.lock().expect("gone") == hit.file_path() {
                Reply::status(404)
            } else {
                file_reply(&dir, hit)
            }
        })?
    };
    let mut catalogue = Catalogue::standard()?;
    let mut paths = std::collections::HashMap::new();
    for row in &mut catalogue.rows {
        let path = std::path::PathBuf::from(row["image"].as_str().unwrap_or_default());
        let rel = path
            .strip_prefix(&dir)?
            .to_string_lossy()
            .replace('\\', "/");
        paths.insert(
            row["id"].as_str().unwrap_or_default().to_string(),
            format!("/{rel}"),
        );
        row["image"] = host.url_for(&format!("/{rel}")).into();
    }
    let site = WebSite::build(
        &catalogue,
        &[
            "--thumbnails",
            "remote",
            "--allow-private-network",
            "--delay",
            "0",
        ],
    )?;
    let downloads = host.requests();
    let query = "a cat";
    let expected = site.cli_search(&["--text", query, "-k", "10"])?;
    // The image host loses the fourth result's picture after the build.
    *gone.lock().expect("gone") = paths[&expected[3]].clone();
    let server = site.serve()?;
    let browser = Browser::start()?;
    browser.on_new_document(SPY)?;
    browser.goto(&site.page_url(&server, &format!("?q={}", encode(query))))?;
    wait_ready(&browser)?;
    let top = wait_top(&browser, query, &expected)?;
    for id in &top[..3] {
        let want = catalogue
            .rows
            .iter()
            .find(|r| r["id"] == id.as_str())
            .and_then(|r| r["image"].as_str())
            .ok_or_else(|| anyhow!("no row {id}"))?
            .to_string();
        let src = browser.wait_until(&format!("the picture of {id}"), SEARCH_TIMEOUT, || {
            let v = browser.execute(
                "const i = document.querySelector(\
                 `[data-testid=result][data-id=\"${arguments[0]}\"] img[data-testid=remote-image]`);\
                 return i && i.complete && i.naturalWidth > 0 ? i.src : null;",
                vec![json!(id)],
            )?;
            Ok(v.as_str().map(str::to_string))
        })?;
        ensure!(src == want, "{id} shows {src}, not its image {want}");
    }
    // A picture the host cannot give is left out, not shown broken.
    browser.wait_until(
        &format!("{} marked as without a picture", top[3]),
        SEARCH_TIMEOUT,
        || {
            let v = browser.execute(
                "return !!document.querySelector(\
                 `[data-testid=result][data-id=\"${arguments[0]}\"] [data-testid=thumbnail-missing]`);",
                vec![json!(top[3])],
            )?;
            Ok(v.as_bool().unwrap_or(false).then_some(()))
        },
    )?;
    let spy = browser.execute("return window.__csp;", vec![])?;
    ensure!(
        spy.as_array().is_some_and(Vec::is_empty),
        "Content-Security-Policy violations: {spy}"
    );
    // The page's requests to the image host name at most the page's origin, never the query.
    let asked: Vec<_> = host.hits().into_iter().skip(downloads).collect();
    ensure!(
        asked.len() >= 3,
        "{} pictures asked of the image host",
        asked.len()
    );
    for hit in &asked {
        let referer = hit.header("Referer").unwrap_or_default();
        ensure!(
            !referer.contains("cat") && !referer.contains("?"),
            "the image host was told {referer:?}"
        );
    }
    Ok(())
}
