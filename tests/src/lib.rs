//! vitrine's end-to-end kit: a static file server ([`server`]), a minimal WebDriver client
//! ([`webdriver`]) for headless Chromium, and helpers that build a real site for the browser tests
//! in `tests/browser/`.

pub mod server;
