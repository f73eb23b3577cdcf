//! The search box and the address bar: typing searches and puts `?q=` in the URL, Enter adds a
//! history entry, and back/forward bring earlier searches back.

use std::time::Duration;

use anyhow::{Result, ensure};
use vitrine_testkit::encode;
use vitrine_testkit::page::{SEARCH_TIMEOUT, wait_ready, wait_top};
use vitrine_testkit::web::{Catalogue, WebSite};
use vitrine_testkit::webdriver::{Browser, ENTER};

fn history_length(b: &Browser) -> Result<u64> {
    Ok(b.execute("return history.length;", vec![])?
        .as_u64()
        .unwrap_or(0))
}

fn wait_url(b: &Browser, query: &str) -> Result<String> {
    b.wait_until(
        &format!("the URL to hold ?q={query}"),
        SEARCH_TIMEOUT,
        || {
            let q = b.execute(
                "return new URL(location.href).searchParams.get('q');",
                vec![],
            )?;
            if q.as_str() == Some(query) {
                Ok(Some(b.url()?))
            } else {
                Err(anyhow::anyhow!("the URL's q is {q}"))
            }
        },
    )
}

fn top10(site: &WebSite, query: &str) -> Result<Vec<String>> {
    site.cli_search(&["--text", query, "-k", "10"])
}

#[test]
fn typing_searches_and_enter_and_back_forward_walk_history() -> Result<()> {
    let site = WebSite::build(&Catalogue::standard()?, &[])?;
    let server = site.serve()?;
    let browser = Browser::start()?;
    let (first, typed, entered) = ("red apple", "teapot", "bicycle");
    let (first_ids, typed_ids, entered_ids) = (
        top10(&site, first)?,
        top10(&site, typed)?,
        top10(&site, entered)?,
    );
    ensure!(
        first_ids != typed_ids && typed_ids != entered_ids,
        "the queries rank alike"
    );

    browser.goto(&site.page_url(&server, &format!("?q={}", encode(first))))?;
    wait_ready(&browser)?;
    wait_top(&browser, first, &first_ids)?;
    let input = browser.find("[data-testid=search-input]")?;
    ensure!(
        input.prop("value")?.as_deref() == Some(first),
        "the box does not show the URL's query"
    );
    let start = history_length(&browser)?;

    // Typing (no Enter) searches once the typing pauses, and writes ?q= to the address bar.
    input.clear()?;
    input.send_keys(typed)?;
    wait_url(&browser, typed)?;
    wait_top(&browser, typed, &typed_ids)?;

    // Enter makes the search a history entry of its own.
    input.send_keys(ENTER)?;
    std::thread::sleep(Duration::from_millis(500));
    let after_typed = history_length(&browser)?;
    ensure!(
        after_typed == start + 1,
        "typing {typed:?} and Enter: history.length {start} → {after_typed}, expected one more"
    );

    // Typing and Enter at once (before the typing pause ends) also adds one entry.
    input.clear()?;
    input.send_keys(&format!("{entered}{ENTER}"))?;
    wait_url(&browser, entered)?;
    wait_top(&browser, entered, &entered_ids)?;
    std::thread::sleep(Duration::from_millis(500));
    let after_entered = history_length(&browser)?;
    ensure!(
        after_entered == after_typed + 1,
        "{entered:?} + Enter: history.length {after_typed} → {after_entered}, expected one more"
    );

    // Back and forward restore each search, its results and the text in the box.
    for (query, ids) in [(typed, &typed_ids), (first, &first_ids)] {
        browser.back()?;
        wait_url(&browser, query)?;
        wait_top(&browser, &format!("back to {query:?}"), ids)?;
        let value = browser.find("[data-testid=search-input]")?.prop("value")?;
        ensure!(
            value.as_deref() == Some(query),
            "back to {query:?}: the box shows {value:?}"
        );
    }
    for (query, ids) in [(typed, &typed_ids), (entered, &entered_ids)] {
        browser.forward()?;
        wait_url(&browser, query)?;
        wait_top(&browser, &format!("forward to {query:?}"), ids)?;
    }
    Ok(())
}
