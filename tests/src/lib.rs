//! vitrine's end-to-end kit: a static file server ([`server`]), a minimal WebDriver client
//! ([`webdriver`]) for headless Chromium, helpers that build a real site ([`site`]: the release app
//! shell plus an index of the committed test catalogue) and read the page ([`page`]), for the
//! browser tests in `tests/browser/`:
//!
//! ```sh
//! cargo test -p vitrine-e2e                          # builds the app shell once (Trunk), then tests
//! VITRINE_DIST=dist cargo test -p vitrine-e2e        # with an app shell built beforehand
//! ```

pub mod page;
pub mod server;
pub mod site;
pub mod webdriver;
