//! The page ranks exactly as `build-index search` does on the same files: text queries (with
//! query arithmetic) with the quantized encoder in both worker builds (relaxed SIMD, which this
//! Chromium validates, and the `simd128` one a browser without it runs) and with the f16 one,
//! "more like this" and facet filters.

use anyhow::{Result, ensure};
use vitrine_testkit::encode;
use vitrine_testkit::page::{wait_ready, wait_top};
use vitrine_testkit::web::{Catalogue, WebSite};
use vitrine_testkit::webdriver::Browser;

#[test]
fn text_query_top10_equals_cli_search() -> Result<()> {
    let site = WebSite::build(&Catalogue::standard()?, &[])?;
    let server = site.serve()?;
    let browser = Browser::start()?;
    for query in ["a cat", "red apple", "hat + summer - winter"] {
        site.open_text_search(&browser, &server, query)?;
    }
    Ok(())
}

#[test]
fn both_worker_builds_and_the_f16_encoder_rank_as_the_cli() -> Result<()> {
    // The relaxed kernel runs 7-bit activations; the tiny model's a7 layouts sit just under the
    // default gate, so a lower bar ships one.
    let mut site = WebSite::build(&Catalogue::standard()?, &["--min-encoder-recall", "0.5"])?;
    let server = site.serve()?;
    let browser = Browser::start()?;
    let query = "a cat + red apple";
    let expected = site.cli_search(&["--text", query, "-k", "10"])?;
    let engine = |b: &Browser| -> Result<String> {
        Ok(b.find("[data-testid=status]")?
            .attr("data-engine")?
            .unwrap_or_default())
    };
    for (forced, want) in [("", "relaxed"), ("&engine=simd128", "simd128")] {
        let url = site.page_url(&server, &format!("?q={}{forced}", encode(query)));
        browser.goto(&url)?;
        wait_ready(&browser)?;
        wait_top(&browser, &format!("{query} ({want})"), &expected)?;
        let shown = engine(&browser)?;
        ensure!(
            shown.starts_with("q8") && shown.ends_with(want),
            "the page runs {shown:?}, expected a quantized encoder on {want}"
        );
    }
    site.rebuild(&Catalogue::standard()?, &["--text-encoder", "f16"])?;
    site.open_text_search(&browser, &server, query)?;
    ensure!(
        engine(&browser)? == "f16",
        "the page runs {:?}",
        engine(&browser)?
    );
    Ok(())
}

#[test]
fn like_puts_the_item_first_and_equals_cli_search() -> Result<()> {
    let catalogue = Catalogue::standard()?;
    let site = WebSite::build(&catalogue, &[])?;
    let server = site.serve()?;
    let browser = Browser::start()?;
    let ids = catalogue.ids();
    for id in [&ids[3], &ids[ids.len() - 1]] {
        let expected = site.cli_search(&["--like", id, "-k", "10"])?;
        ensure!(
            expected.first() == Some(id),
            "the CLI ranks {expected:?} for --like {id}"
        );
        browser.goto(&site.page_url(&server, &format!("?like={}", encode(id))))?;
        wait_ready(&browser)?;
        let shown = wait_top(&browser, &format!("?like={id}"), &expected)?;
        ensure!(shown[0] == *id, "{id} is not first: {shown:?}");
        let banner = browser.find("[data-testid=like-banner]")?.text()?;
        ensure!(banner.contains(id.as_str()), "the banner says {banner:?}");
    }
    Ok(())
}

#[test]
fn facet_chip_filters_results_like_cli_search() -> Result<()> {
    let site = WebSite::build(
        &Catalogue::standard()?,
        &["--facet", "kind=animal,food,tool,vehicle,clothing"],
    )?;
    let server = site.serve()?;
    let browser = Browser::start()?;
    let query = "something to buy";
    browser.goto(&site.page_url(&server, &format!("?q={}", encode(query))))?;
    wait_ready(&browser)?;
    let all = site.cli_search(&["--text", query, "-k", "10"])?;
    wait_top(&browser, "the unfiltered query", &all)?;

    // Chips for every label with items, as the manifest counts them.
    let manifest = site.manifest()?;
    let facet = &manifest.facets[0];
    let mut expected_chips: Vec<(String, u64)> = facet
        .labels
        .iter()
        .zip(&facet.counts)
        .map(|(l, n)| (l.clone(), u64::from(*n)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let chips = browser.find_all("[data-testid=facet-chip]")?;
    let mut shown = Vec::new();
    for c in &chips {
        ensure!(
            c.attr("data-facet")?.as_deref() == Some("kind"),
            "a chip of another facet"
        );
        shown.push(c.attr("data-label")?.unwrap_or_default());
    }
    ensure!(
        shown
            == expected_chips
                .iter()
                .map(|(l, _)| l.clone())
                .collect::<Vec<_>>(),
        "chips {shown:?}, the manifest has {expected_chips:?}"
    );

    // The label with the fewest items filters the most.
    expected_chips.sort_by_key(|(_, n)| *n);
    let (label, count) = expected_chips[0].clone();
    let total = u64::from(manifest.count);
    ensure!(
        count < total,
        "no label splits the catalogue: {expected_chips:?}"
    );
    let chip = chips
        .iter()
        .find(|c| c.attr("data-label").ok().flatten().as_deref() == Some(label.as_str()))
        .expect("the chip is shown");
    ensure!(
        chip.attr("aria-pressed")?.as_deref() == Some("false"),
        "chip pressed before click"
    );
    chip.click()?;
    let filtered = site.cli_search(&[
        "--text",
        query,
        "-k",
        "48",
        "--facet",
        &format!("kind={label}"),
    ])?;
    ensure!(
        filtered.len() as u64 == count,
        "CLI: {filtered:?}, the manifest counts {count}"
    );
    let ids = wait_top(&browser, &format!("kind={label}"), &filtered)?;
    ensure!(
        ids == filtered,
        "the page shows more than the {count} items labelled {label}: {ids:?}"
    );
    let chip = browser.find(&format!("[data-testid=facet-chip][data-label=\"{label}\"]"))?;
    ensure!(
        chip.attr("aria-pressed")?.as_deref() == Some("true"),
        "the chip is not pressed"
    );
    let url = browser.url()?;
    ensure!(
        url.contains(&format!("f=kind%3A{label}")),
        "the URL lacks the facet: {url}"
    );
    Ok(())
}
