//! Headless Chromium for vitrine's browser tests, driven over [W3C
//! WebDriver](https://www.w3.org/TR/webdriver2/) by [`fantoccini`] behind a blocking API.
//!
//! [`Browser::start`] launches `chromedriver` (`$CHROMEDRIVER`, default `/usr/bin/chromedriver`) on
//! a free port and opens a session on Chromium (`$CHROME`, default `/usr/bin/chromium`) with a
//! fresh profile in a temporary directory, so service workers and caches never leak from one test
//! into another. Dropping the [`Browser`] ends the session, kills ChromeDriver and deletes the
//! profile.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use std::time::Duration;
//! let browser = vitrine_testkit::webdriver::Browser::start()?;
//! browser.goto("http://127.0.0.1:8080/?q=cat")?;
//! browser.wait_until("the index to load", Duration::from_secs(60), || {
//!     let status = browser.find("[data-testid=status]")?;
//!     Ok(status.attr("data-state")?.filter(|s| s == "ready"))
//! })?;
//! # Ok(()) }
//! ```
//!
//! A test drives one page step by step, so each call runs fantoccini's future to completion on
//! the browser's own single-threaded Tokio runtime. At most
//! `$VITRINE_E2E_BROWSERS` (default 2) browsers run at once per test process, since the tests
//! share a small machine with compilers.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use fantoccini::error::{CmdError, NewSessionError};
use fantoccini::wd::{TimeoutConfiguration, WebDriverCompatibleCommand};
use fantoccini::{ClientBuilder, Locator};
use serde_json::{Value, json};

/// The WebDriver key code of Enter, for [`Element::send_keys`].
pub const ENTER: &str = "\u{E007}";

/// Browsers allowed at once in this process, and how many are running.
static SLOTS: Mutex<usize> = Mutex::new(0);
static SLOT_FREED: Condvar = Condvar::new();

/// A place among the browsers allowed to run at once; given back when dropped.
struct Slot;

impl Slot {
    fn take() -> Self {
        let limit = std::env::var("VITRINE_E2E_BROWSERS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(2)
            .max(1);
        let mut running = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= limit {
            running = SLOT_FREED.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        *running -= 1;
        SLOT_FREED.notify_one();
    }
}

/// A running ChromeDriver with one Chromium session.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: fantoccini::Client,
    driver: Child,
    /// Keeps the profile directory alive as long as the browser.
    _profile: tempfile::TempDir,
    _slot: Slot,
}

/// An element of the current page.
pub struct Element<'a> {
    browser: &'a Browser,
    element: fantoccini::elements::Element,
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A driver's error without the native stack trace ChromeDriver appends to its messages.
fn short(e: CmdError) -> anyhow::Error {
    match e {
        CmdError::Standard(e) => {
            let message = e.message.lines().next().unwrap_or("");
            anyhow!("{}: {message}", e.error)
        }
        e => anyhow!(e),
    }
}

/// A ChromeDriver command fantoccini has no method for: `POST /session/{id}/{path}`.
#[derive(Debug)]
struct Extension {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for Extension {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/{}",
            session.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

impl Browser {
    /// Starts ChromeDriver and opens a session on headless Chromium with a fresh profile.
    pub fn start() -> Result<Self> {
        let slot = Slot::take();
        let chromedriver =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chrome = std::env::var("CHROME").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let profile = tempfile::Builder::new()
            .prefix("vitrine-e2e-profile-")
            .tempdir()
            .context("cannot create a browser profile directory")?;
        let port = free_port()?;
        let mut driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("cannot start {chromedriver} (install chromium-driver or set CHROMEDRIVER)")
            })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start a Tokio runtime")?;
        let profile_arg = format!("--user-data-dir={}", profile.path().display());
        let caps = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chrome,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--no-first-run",
                    "--window-size=1280,900",
                    profile_arg,
                ],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!("capabilities are an object")
        };
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(caps);
        let url = format!("http://127.0.0.1:{port}");
        // ChromeDriver takes a moment to listen.
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match rt.block_on(builder.connect(&url)) {
                Ok(client) => break client,
                Err(NewSessionError::Failed(_) | NewSessionError::FailedC(_))
                    if Instant::now() < deadline =>
                {
                    if let Ok(Some(status)) = driver.try_wait() {
                        bail!("{chromedriver} exited at start: {status}");
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    let _ = driver.kill();
                    let _ = driver.wait();
                    return Err(e).with_context(|| format!("cannot open a session on {chrome}"));
                }
            }
        };
        let browser = Self {
            rt,
            client,
            driver,
            _profile: profile,
            _slot: slot,
        };
        let minute = Some(Duration::from_secs(60));
        let timeouts = TimeoutConfiguration::new(minute, minute, Some(Duration::ZERO));
        browser.run(browser.client.update_timeouts(timeouts))?;
        Ok(browser)
    }

    /// Runs one of fantoccini's commands to completion.
    fn run<T>(&self, command: impl Future<Output = Result<T, CmdError>>) -> Result<T> {
        self.rt.block_on(command).map_err(short)
    }

    /// Opens `url` and waits for the page's load event.
    pub fn goto(&self, url: &str) -> Result<()> {
        self.run(self.client.goto(url))
            .with_context(|| format!("cannot open {url}"))
    }

    /// The current page's URL.
    pub fn url(&self) -> Result<String> {
        Ok(self.run(self.client.current_url())?.to_string())
    }

    /// Reloads the page.
    pub fn reload(&self) -> Result<()> {
        self.run(self.client.refresh())
    }

    /// Goes one entry back in the session history.
    pub fn back(&self) -> Result<()> {
        self.run(self.client.back())
    }

    /// Goes one entry forward in the session history.
    pub fn forward(&self) -> Result<()> {
        self.run(self.client.forward())
    }

    fn element(&self, element: fantoccini::elements::Element) -> Element<'_> {
        Element {
            browser: self,
            element,
        }
    }

    /// The first element matching a CSS selector (an error if there is none).
    pub fn find(&self, css: &str) -> Result<Element<'_>> {
        let found = self
            .run(self.client.find(Locator::Css(css)))
            .with_context(|| format!("no element matches {css:?}"))?;
        Ok(self.element(found))
    }

    /// Every element matching a CSS selector, in document order.
    pub fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>> {
        let found = self.run(self.client.find_all(Locator::Css(css)))?;
        Ok(found.into_iter().map(|e| self.element(e)).collect())
    }

    /// Runs `script` as the body of a function with `args` as `arguments`; returns its result.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.run(self.client.execute(script, args))
    }

    /// Runs `script` as the body of a function whose last argument is a callback; returns the
    /// value passed to the callback (the script timeout is 60 s).
    pub fn execute_async(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.run(self.client.execute_async(script, args))
    }

    /// Runs a ChromeDriver extension command on this session.
    fn extension(&self, path: &'static str, body: Value) -> Result<Value> {
        self.run(self.client.issue_cmd(Extension { path, body }))
    }

    /// Runs a Chrome DevTools Protocol command (ChromeDriver's `goog/cdp/execute`).
    pub fn cdp(&self, cmd: &str, params: Value) -> Result<Value> {
        self.extension("goog/cdp/execute", json!({"cmd": cmd, "params": params}))
    }

    /// Runs `source` in every document before its own scripts (e.g. to spy on `window.alert`).
    pub fn on_new_document(&self, source: &str) -> Result<()> {
        self.cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": source}),
        )?;
        Ok(())
    }

    /// Browser console messages since the last call (`level: message` lines); empty when the
    /// driver does not keep logs.
    pub fn console_logs(&self) -> Vec<String> {
        let Ok(v) = self.extension("se/log", json!({"type": "browser"})) else {
            return Vec::new();
        };
        v.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        format!(
                            "{}: {}",
                            e["level"].as_str().unwrap_or("?"),
                            e["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Saves a PNG screenshot of the viewport.
    pub fn screenshot(&self, path: &Path) -> Result<()> {
        let png = self.run(self.client.screenshot())?;
        std::fs::write(path, png).with_context(|| format!("cannot write {}", path.display()))
    }

    /// What a failure message should show about the page: URL, vitrine's status line, console
    /// logs and (when `$VITRINE_E2E_SHOTS` or the target dir allows) a screenshot.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if let Ok(url) = self.url() {
            out += &format!("\n  page: {url}");
        }
        let status = self
            .execute(
                "const s = document.querySelector('[data-testid=status]');\
                 return s ? `[${s.dataset.state}] ${s.textContent}` : '(no status element)';",
                vec![],
            )
            .ok()
            .and_then(|v| v.as_str().map(str::to_string));
        if let Some(status) = status {
            out += &format!("\n  status: {status}");
        }
        let logs = self.console_logs();
        if !logs.is_empty() {
            out += "\n  console:";
            for line in logs.iter().rev().take(20).rev() {
                out += &format!("\n    {line}");
            }
        }
        if let Some(path) = shot_path()
            && self.screenshot(&path).is_ok()
        {
            out += &format!("\n  screenshot: {}", path.display());
        }
        out
    }

    /// Polls `probe` every 100 ms until it returns `Ok(Some(value))` and returns that value.
    /// Errors from `probe` count as "not yet" (the page may be re-rendering). After `timeout`,
    /// fails with `what`, the last error and [`Browser::describe`].
    pub fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut() -> Result<Option<T>>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        let mut last_error = None;
        loop {
            match probe() {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(e) => last_error = Some(format!("{e:#}")),
            }
            if Instant::now() > deadline {
                let last = last_error
                    .map(|e| format!("\n  last error: {e}"))
                    .unwrap_or_default();
                bail!(
                    "timed out after {:.0?} waiting for {what}{last}{}",
                    timeout,
                    self.describe()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.rt.block_on(self.client.clone().close());
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl<'a> Element<'a> {
    /// The first descendant matching a CSS selector.
    pub fn find(&self, css: &str) -> Result<Element<'a>> {
        let found = self
            .browser
            .run(self.element.find(Locator::Css(css)))
            .with_context(|| format!("no element matches {css:?} inside"))?;
        Ok(self.browser.element(found))
    }

    /// An attribute's value (`None` when absent).
    pub fn attr(&self, name: &str) -> Result<Option<String>> {
        self.browser.run(self.element.attr(name))
    }

    /// A DOM property, e.g. `textContent` or `value` (`None` when null or undefined).
    pub fn prop(&self, name: &str) -> Result<Option<String>> {
        self.browser.run(self.element.prop(name))
    }

    /// The rendered text, as a user sees it.
    pub fn text(&self) -> Result<String> {
        self.browser.run(self.element.text())
    }

    /// Clicks the element's centre (scrolled into view).
    pub fn click(&self) -> Result<()> {
        self.browser.run(self.element.click())
    }

    /// Empties an input.
    pub fn clear(&self) -> Result<()> {
        self.browser.run(self.element.clear())
    }

    /// Types `text` into the element ([`ENTER`] presses Enter).
    pub fn send_keys(&self, text: &str) -> Result<()> {
        self.browser.run(self.element.send_keys(text))
    }

    /// The element as a script argument for [`Browser::execute`].
    pub fn as_arg(&self) -> Value {
        serde_json::to_value(&self.element).expect("an element reference serializes")
    }
}

/// Where a failing test's screenshot goes: `$VITRINE_E2E_SHOTS` or `target/e2e-shots`, named
/// after the test thread.
fn shot_path() -> Option<PathBuf> {
    let dir = std::env::var_os("VITRINE_E2E_SHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("target/e2e-shots"));
    std::fs::create_dir_all(&dir).ok()?;
    let thread = std::thread::current();
    let name: String = thread
        .name()
        .unwrap_or("test")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Some(dir.join(format!("{name}.png")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_driven_and_its_console_and_screen_reach_a_failure_message() -> Result<()> {
        let browser = Browser::start()?;
        let page = "<p id=x title=t>hi</p><input id=i>\
                    <script>console.error('boom'); document.title = 'ready'</script>";
        browser.goto(&format!("data:text/html,{page}"))?;
        let x = browser.find("#x")?;
        assert_eq!(x.text()?, "hi");
        assert_eq!(x.attr("title")?.as_deref(), Some("t"));
        assert_eq!(x.attr("lang")?, None);
        let input = browser.find("#i")?;
        input.send_keys("cat")?;
        assert_eq!(input.prop("value")?.as_deref(), Some("cat"));
        let tag = browser.execute("return arguments[0].tagName", vec![x.as_arg()])?;
        assert_eq!(tag, "P");
        let missing = browser.find("#nope").err().expect("no #nope on the page");
        assert!(
            format!("{missing:#}").contains("no such element"),
            "{missing:#}"
        );
        let title = browser.cdp("Runtime.evaluate", json!({"expression": "document.title"}))?;
        assert_eq!(title["result"]["value"], "ready");
        let described = browser.describe();
        assert!(described.contains("boom"), "{described}");
        let shot = tempfile::NamedTempFile::new()?;
        browser.screenshot(shot.path())?;
        assert!(std::fs::read(shot.path())?.starts_with(b"\x89PNG"));
        Ok(())
    }
}
