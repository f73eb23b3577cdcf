//! Deployment and offline behaviour: after one visit the service worker serves the page and the
//! index (thumbnails included) with the network gone; a redeployed index is picked up on the next load and never mixed
//! with the old one; the site works under a sub-path.

use std::time::Duration;

use anyhow::{Result, anyhow, ensure};
use vitrine_index::{MANIFEST, OfflineFiles};
use vitrine_protocol::INDEX_DIR;
use vitrine_testkit::encode;
use vitrine_testkit::page::{SEARCH_TIMEOUT, cached_urls, sw_controls, wait_ready, wait_top};
use vitrine_testkit::site_dir::SiteDir;
use vitrine_testkit::web::{Catalogue, WebSite};
use vitrine_testkit::webdriver::Browser;

/// What the page keeps offline of the site's current build.
fn offline_files(site: &WebSite) -> OfflineFiles {
    let dir = SiteDir::open(&site.index_dir());
    dir.manifest.files.offline(&dir.chunk_table(), None)
}

/// Every thumbnail pack of the index (the page has them all cached when they fit its budget).
fn thumbnails(site: &WebSite) -> Vec<String> {
    offline_files(site)
        .thumbnails
        .iter()
        .map(|p| format!("{INDEX_DIR}{p}"))
        .collect()
}

/// Every file of the index the page needs to search and show results, and the manifest.
fn core_files(site: &WebSite) -> Vec<String> {
    let mut paths = offline_files(site).core;
    paths.push(MANIFEST.into());
    paths
}

/// Waits until the service worker controls the page and its cache holds the page and `files`
/// (URLs relative to the page).
fn wait_cached(browser: &Browser, page: &str, files: &[String]) -> Result<()> {
    browser.wait_until(
        "the service worker to control the page",
        Duration::from_secs(30),
        || Ok(sw_controls(browser)?.then_some(())),
    )?;
    let mut wanted = vec![page.to_string()];
    wanted.extend(files.iter().map(|f| format!("{page}{f}")));
    browser.wait_until(
        "the offline cache to hold the page and the index",
        Duration::from_secs(60),
        || {
            let cached = cached_urls(browser)?;
            let missing: Vec<&String> = wanted.iter().filter(|u| !cached.contains(u)).collect();
            if missing.is_empty() {
                Ok(Some(()))
            } else {
                Err(anyhow!("not cached yet: {missing:?}"))
            }
        },
    )
}

fn shell_files(site: &WebSite) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(site.page_dir())? {
        let e = e?;
        if e.file_type()?.is_file() {
            files.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(files)
}

#[test]
fn search_works_offline_after_one_visit() -> Result<()> {
    let catalogue = Catalogue::standard()?;
    let site = WebSite::build(&catalogue, &[])?;
    let mut server = site.serve()?;
    let browser = Browser::start()?;
    let page = site.page_url(&server, "");
    let (q1, q2) = ("a cat", "red apple");
    let (ids1, ids2) = (
        site.cli_search(&["--text", q1, "-k", "10"])?,
        site.cli_search(&["--text", q2, "-k", "10"])?,
    );
    browser.goto(&format!("{page}?q={}", encode(q1)))?;
    wait_ready(&browser)?;
    wait_top(&browser, q1, &ids1)?;
    let mut files: Vec<String> = shell_files(&site)?
        .into_iter()
        .filter(|f| f != "index.html" && f != "sw.js")
        .collect();
    files.extend(core_files(&site).iter().map(|f| format!("{INDEX_DIR}{f}")));
    // Thumbnails too, also those of results never shown online.
    files.extend(thumbnails(&site));
    wait_cached(&browser, &page, &files)?;
    // Opening another file of the site in the tab (the maintainer checking the manifest) must
    // not replace the page kept for offline use.
    browser.goto(&format!("{page}search/manifest.json"))?;

    server.stop();
    ensure!(
        ureq::get(&page).call().is_err(),
        "the server still answers after stop()"
    );
    browser.goto(&format!("{page}?q={}", encode(q1)))?;
    let status = wait_ready(&browser)?;
    let items = format!("{} items", catalogue.rows.len());
    ensure!(
        status.contains(&items),
        "offline status: {status:?}, expected {items}"
    );
    wait_top(&browser, &format!("{q1} offline"), &ids1)?;
    // A search never made online works too: the whole index is on the device.
    browser.goto(&format!("{page}?q={}", encode(q2)))?;
    wait_ready(&browser)?;
    wait_top(&browser, &format!("{q2} offline"), &ids2)?;
    let widths = browser.wait_until(
        "the first results' thumbnails to finish loading offline",
        SEARCH_TIMEOUT,
        || {
            let v = browser.execute(
                "const imgs = Array.from(document.querySelectorAll('[data-testid=result] img'))\
                 .slice(0, 3);\
                 return imgs.every(i => i.complete) ? imgs.map(i => i.naturalWidth) : null;",
                vec![],
            )?;
            Ok(v.as_array().cloned())
        },
    )?;
    ensure!(
        widths.len() == 3 && widths.iter().all(|w| w.as_u64() > Some(0)),
        "offline results show their pictures: widths {widths:?}"
    );
    Ok(())
}

#[test]
fn redeploy_is_used_on_reload_and_old_files_leave_the_cache() -> Result<()> {
    let old = Catalogue::standard()?;
    let mut site = WebSite::build(&old, &[])?;
    let server = site.serve()?;
    let browser = Browser::start()?;
    let page = site.page_url(&server, "");
    let query = "a cat";
    let old_manifest = site.manifest()?;
    browser.goto(&format!("{page}?q={}", encode(query)))?;
    let status = wait_ready(&browser)?;
    ensure!(
        status.contains(&format!("{} items", old.rows.len())),
        "status {status:?}"
    );
    wait_top(
        &browser,
        query,
        &site.cli_search(&["--text", query, "-k", "10"])?,
    )?;
    let old_files: Vec<String> = core_files(&site)
        .iter()
        .map(|f| format!("{INDEX_DIR}{f}"))
        .collect();
    wait_cached(&browser, &page, &old_files)?;

    // Redeploy: drop ten items, add one under a new id (an image of a dropped item).
    let mut new = old.clone();
    let dropped: Vec<serde_json::Value> = new.rows.drain(..10).collect();
    let mut added = dropped[0].clone();
    added["id"] = "new-item".into();
    added["title"] = "Brand new".into();
    new.rows.push(added);
    site.rebuild(&new, &[])?;
    let new_manifest = site.manifest()?;
    ensure!(
        new_manifest.build_id != old_manifest.build_id,
        "the rebuild kept the build id"
    );
    let expected = site.cli_search(&["--text", query, "-k", "48"])?;
    ensure!(expected.len() == new.rows.len(), "CLI: {expected:?}");

    browser.reload()?;
    let want = format!("{} items", new.rows.len());
    let status = browser.wait_until(
        &format!("the status to say {want:?}"),
        Duration::from_secs(60),
        || {
            let status = wait_ready(&browser)?;
            Ok(status.contains(&want).then_some(status))
        },
    )?;
    // The whole list is the new build's: no dropped item, the new one present, same order.
    let ids = wait_top(&browser, "after the redeploy", &expected)?;
    ensure!(
        ids == expected,
        "the page shows {ids:?}, the new build ranks {expected:?} ({status})"
    );
    ensure!(
        ids.iter().any(|i| i == "new-item"),
        "no new item in {ids:?}"
    );
    let gone: Vec<String> = dropped
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    ensure!(
        !ids.iter().any(|i| gone.contains(i)),
        "a dropped item is shown: {ids:?}"
    );

    // The service worker caches the new build and lets the old index files go.
    let new_files: Vec<String> = core_files(&site)
        .iter()
        .map(|f| format!("{INDEX_DIR}{f}"))
        .collect();
    wait_cached(&browser, &page, &new_files)?;
    let stale: Vec<String> = old_files
        .iter()
        .filter(|f| !new_files.contains(f))
        .map(|f| format!("{page}{f}"))
        .collect();
    ensure!(!stale.is_empty(), "the builds share every file");
    browser.wait_until(
        "the old build's files to leave the cache",
        Duration::from_secs(30),
        || {
            let cached = cached_urls(&browser)?;
            let left: Vec<&String> = stale.iter().filter(|u| cached.contains(u)).collect();
            if left.is_empty() {
                Ok(Some(()))
            } else {
                Err(anyhow!("still cached: {left:?}"))
            }
        },
    )?;
    Ok(())
}

#[test]
fn site_under_a_sub_path_works() -> Result<()> {
    let site = WebSite::build_at("shop/search/", &Catalogue::standard()?, &[])?;
    let server = site.serve()?;
    let browser = Browser::start()?;
    let query = "hat";
    let page = site.page_url(&server, &format!("?q={query}"));
    ensure!(page.contains("/shop/search/?q="), "{page}");
    browser.goto(&page)?;
    wait_ready(&browser)?;
    wait_top(
        &browser,
        "under /shop/search/",
        &site.cli_search(&["--text", query, "-k", "10"])?,
    )?;
    // The first thumbnail loads from the sub-path too.
    let src = browser.wait_until(
        "the first thumbnail to load",
        Duration::from_secs(20),
        || {
            let v = browser.execute(
                "const i = document.querySelector('[data-testid=result] img');\
             return i && i.complete && i.naturalWidth > 0 ? i.src : null;",
                vec![],
            )?;
            Ok(v.as_str().map(str::to_string))
        },
    )?;
    // Cut from its pack, which came from under the sub-path.
    ensure!(src.starts_with("blob:"), "thumbnail from {src}");
    ensure!(
        server.hits().iter().any(|h| h
            .file_path()
            .starts_with("/shop/search/search/thumbs/pack.")),
        "no thumbnail pack was fetched under the sub-path"
    );
    Ok(())
}
