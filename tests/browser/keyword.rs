//! Useful from the first byte: with the text encoder held back by the server, the page searches
//! titles (any script), browses, filters with counts, offers facets and "More like this"; once the
//! encoder arrives, results become hybrid. And in every mode the page ranks as `build-index search`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use vitrine_testkit::encode;
use vitrine_testkit::page::{
    SEARCH_TIMEOUT, result_ids, result_mode, status, wait_opened, wait_ready, wait_top,
};
use vitrine_testkit::server::{TestServer, file_reply};
use vitrine_testkit::web::{Catalogue, WebSite};
use vitrine_testkit::webdriver::Browser;

/// The shop, with a zero-shot facet.
fn shop_site() -> Result<(Catalogue, WebSite)> {
    let catalogue = Catalogue::shop()?;
    let site = WebSite::build(&catalogue, &["--facet", "kind=animal,food,tool"])?;
    Ok((catalogue, site))
}

/// Waits until the results are ranked in `mode` and returns their ids.
fn wait_mode(b: &Browser, mode: &str) -> Result<Vec<String>> {
    b.wait_until(&format!("{mode} results"), SEARCH_TIMEOUT, || {
        (result_mode(b)?.as_deref() == Some(mode))
            .then(|| result_ids(b))
            .transpose()
    })
}

/// Puts `text` in the search box as typing would (any script).
fn type_query(b: &Browser, text: &str) -> Result<()> {
    let input = b.find("[data-testid=search-input]")?;
    b.execute(
        "arguments[0].value = arguments[1];\
         arguments[0].dispatchEvent(new Event('input', { bubbles: true }));",
        vec![input.as_arg(), text.into()],
    )?;
    Ok(())
}

/// A catalogue row's price in EUR.
fn price(row: &serde_json::Value) -> Option<f64> {
    row["price"].as_str()?.split(' ').next()?.parse().ok()
}

fn search(b: &Browser) -> Result<String> {
    Ok(b.execute("return location.search;", vec![])?
        .as_str()
        .unwrap_or_default()
        .to_string())
}

#[test]
fn before_the_encoder_keywords_filters_facets_and_more_like_this_work_then_results_become_hybrid()
-> Result<()> {
    let (catalogue, site) = shop_site()?;
    let weights = site.manifest()?.files.encoder.weights.path;
    // The server holds every request for the encoder until the test lets it go.
    let held = Arc::new(AtomicBool::new(true));
    let server = {
        let (held, root, weights) = (held.clone(), site.root().to_path_buf(), weights.clone());
        TestServer::start(move |hit, _| {
            let until = Instant::now() + Duration::from_secs(300);
            while hit.file_path().ends_with(&weights)
                && held.load(Ordering::SeqCst)
                && Instant::now() < until
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            file_reply(&root, hit)
        })?
    };
    // One visit: every request for the encoder stays open until released, and a browser opens
    // only six connections to a host.
    let browser = Browser::start()?;
    let id = |title: &str| catalogue.id_titled(title).expect(title);

    // A title word, and titles in Cyrillic and Japanese (folded case, CJK bigrams).
    browser.goto(&site.page_url(&server, "?q=couch"))?;
    ensure!(
        wait_opened(&browser)? == "keyword",
        "{:?}",
        status(&browser)?
    );
    for (query, title) in [
        ("couch", "Soft Blue Couch"),
        ("КРУЖКА", "Кружка"),
        ("マグカップ", "猫のマグカップ"),
    ] {
        type_query(&browser, query)?;
        wait_top(&browser, query, &[id(title)])?;
        ensure!(result_mode(&browser)?.as_deref() == Some("keyword"));
    }
    let (state, text) = status(&browser)?;
    ensure!(
        state == "keyword"
            && text.contains("keyword search ready")
            && text.contains("visual search loading"),
        "{state}: {text:?}"
    );

    // Browsing one brand; a second brand's chip widens it; Back narrows again.
    let toolbox = catalogue.ids_where("brand", "Toolbox");
    let hatter = catalogue.ids_where("brand", "Hatter");
    type_query(&browser, "")?;
    browser.wait_until("the whole catalogue", SEARCH_TIMEOUT, || {
        Ok((result_ids(&browser)? == catalogue.ids()).then_some(()))
    })?;
    let chip =
        |value: &str| format!("[data-testid=filter-chip][data-filter=brand][data-value='{value}']");
    browser.find(&chip("Toolbox"))?.click()?;
    browser.wait_until("one brand", SEARCH_TIMEOUT, || {
        Ok((result_ids(&browser)? == toolbox).then_some(()))
    })?;
    ensure!(
        search(&browser)? == "?brand=Toolbox",
        "{}",
        search(&browser)?
    );
    let pressed = browser.find(&chip("Toolbox"))?.attr("aria-pressed")?;
    ensure!(pressed.as_deref() == Some("true"), "{pressed:?}");
    // Counts of the other brands stay (choosing one widens the results).
    let count = browser.find(&chip("Hatter"))?.attr("data-count")?;
    ensure!(
        count == Some(hatter.len().to_string()),
        "Hatter's count {count:?}"
    );
    browser.find(&chip("Hatter"))?.click()?;
    let both: Vec<String> = catalogue
        .ids()
        .into_iter()
        .filter(|i| toolbox.contains(i) || hatter.contains(i))
        .collect();
    browser.wait_until("Toolbox or Hatter", SEARCH_TIMEOUT, || {
        Ok((result_ids(&browser)? == both).then_some(()))
    })?;
    ensure!(
        search(&browser)? == "?brand=Toolbox&brand=Hatter",
        "{}",
        search(&browser)?
    );
    browser.back()?;
    browser.wait_until("Back to one brand", SEARCH_TIMEOUT, || {
        Ok((result_ids(&browser)? == toolbox).then_some(()))
    })?;

    // A price range typed into its box goes to the URL and narrows.
    let max = browser.find("[data-testid=range-max][data-filter=price]")?;
    max.clear()?;
    max.send_keys("14\t")?;
    browser.wait_until("the price range in the URL", SEARCH_TIMEOUT, || {
        Ok((search(&browser)? == "?brand=Toolbox&price=-14").then_some(()))
    })?;
    let cheap: Vec<String> = catalogue
        .rows
        .iter()
        .filter(|r| r["brand"] == "Toolbox")
        .filter(|r| price(r) <= Some(14.0))
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    ensure!(
        !cheap.is_empty() && cheap.len() < toolbox.len(),
        "{cheap:?}"
    );
    browser.wait_until("tools up to 14 EUR", SEARCH_TIMEOUT, || {
        Ok((result_ids(&browser)? == cheap).then_some(()))
    })?;

    // Both filters off, then a facet chip (zero-shot, computed at build time).
    browser.find(&chip("Toolbox"))?.click()?;
    let max = browser.find("[data-testid=range-max][data-filter=price]")?;
    max.clear()?;
    max.send_keys("\t")?;
    browser.wait_until("no filter in the URL", SEARCH_TIMEOUT, || {
        Ok((search(&browser)?.is_empty()).then_some(()))
    })?;
    // (The tiny random model puts items under some labels only: take the first one shown.)
    let facet = browser.find("[data-testid=facet-chip][data-facet=kind]")?;
    let label = facet.attr("data-label")?.unwrap_or_default();
    let members: usize = facet.attr("data-count")?.unwrap_or_default().parse()?;
    ensure!(
        members > 0 && members < catalogue.ids().len(),
        "{label}: {members}"
    );
    facet.click()?;
    browser.wait_until("the facet's items", SEARCH_TIMEOUT, || {
        Ok((result_ids(&browser)?.len() == members).then_some(()))
    })?;
    let url = format!("?f=kind%3A{}", encode(&label));
    ensure!(
        search(&browser)? == url,
        "{} is not {url}",
        search(&browser)?
    );
    browser
        .find("[data-testid=facet-chip][data-facet=kind][aria-pressed=true]")?
        .click()?;

    // More like this needs only the vectors.
    type_query(&browser, "couch")?;
    wait_top(&browser, "couch", &[id("Soft Blue Couch")])?;
    browser.find("[data-testid=more-like-this]")?.click()?;
    browser.find("[data-testid=like-banner]")?;
    browser.wait_until("more like the couch", SEARCH_TIMEOUT, || {
        let ids = result_ids(&browser)?;
        Ok((ids.len() == catalogue.ids().len() && ids[0] == id("Soft Blue Couch")).then_some(()))
    })?;

    // The encoder arrives: the keyword results of a hybrid search become hybrid (quietly, or
    // through the "improve" button when the pointer rests on the list).
    let query = "cat";
    type_query(&browser, query)?;
    wait_mode(&browser, "keyword")?;
    ensure!(status(&browser)?.0 == "keyword", "{:?}", status(&browser)?);
    // Only the worker asks for the encoder: the service worker caches it once it has arrived.
    let asked = server
        .hits()
        .iter()
        .filter(|h| h.file_path().ends_with(&weights))
        .count();
    ensure!(asked == 1, "the encoder was requested {asked} times");
    held.store(false, Ordering::SeqCst);
    wait_ready(&browser)?;
    browser.wait_until("hybrid results", SEARCH_TIMEOUT, || {
        if let Ok(button) = browser.find("[data-testid=improve]") {
            button.click()?;
        }
        Ok((result_mode(&browser)?.as_deref() == Some("hybrid")).then_some(()))
    })?;
    let expected = site.cli_search(&["--text", query, "-k", "10"])?;
    wait_top(&browser, "cat, hybrid", &expected)?;
    Ok(())
}

#[test]
fn the_page_ranks_as_the_cli_in_every_mode_with_filters() -> Result<()> {
    let (_, site) = shop_site()?;
    let server = site.serve()?;
    let browser = Browser::start()?;
    for (query, extra) in [
        ("cat", ""),
        ("oc-06474", ""),
        ("purple hat", ""),
        ("a red apple", "&brand=Orchard"),
        ("tools", "&price=10-30"),
    ] {
        for mode in ["hybrid", "semantic", "keyword"] {
            let mut args = vec!["--text", query, "--mode", mode, "-k", "10"];
            let filters: Vec<String> = extra
                .split('&')
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect();
            for f in &filters {
                args.extend(["--filter", f.as_str()]);
            }
            let expected = site.cli_search(&args)?;
            let url = format!("?q={}&mode={mode}{extra}", encode(query));
            browser.goto(&site.page_url(&server, &url))?;
            wait_ready(&browser)?;
            let got = wait_mode(&browser, mode)?;
            ensure!(
                got.len() >= expected.len(),
                "{url}: the page shows {got:?}, the CLI {expected:?}"
            );
            wait_top(&browser, &url, &expected)?;
        }
    }
    Ok(())
}
