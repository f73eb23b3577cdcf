//! A minimal synchronous [W3C WebDriver](https://www.w3.org/TR/webdriver2/) client for
//! ChromeDriver and headless Chromium, just big enough for vitrine's browser tests.
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
//! Only one process per test talks to ChromeDriver, so everything is blocking. At most
//! `$VITRINE_E2E_BROWSERS` (default 2) browsers run at once per test process, since the tests
//! share a small machine with compilers.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

/// The key W3C WebDriver uses for element references in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

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
    agent: ureq::Agent,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
    driver: Child,
    /// Keeps the profile directory alive as long as the browser.
    _profile: tempfile::TempDir,
    _slot: Slot,
}

/// A reference to an element of the current page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
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
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("cannot start {chromedriver} (install chromium-driver or set CHROMEDRIVER)")
            })?;
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(180))
            .build();
        let mut browser = Self {
            agent,
            session: String::new(),
            driver,
            _profile: profile,
            _slot: slot,
        };
        let base = format!("http://127.0.0.1:{port}");
        // ChromeDriver takes a moment to listen.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = browser
                .agent
                .get(&format!("{base}/status"))
                .call()
                .ok()
                .and_then(|r| r.into_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            if let Ok(Some(status)) = browser.driver.try_wait() {
                bail!("{chromedriver} exited at start: {status}");
            }
            if Instant::now() > deadline {
                bail!("{chromedriver} did not become ready on port {port} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile_arg = format!("--user-data-dir={}", browser._profile.path().display());
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
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
                },
            },
        });
        let created = browser
            .request("POST", &format!("{base}/session"), Some(caps))
            .with_context(|| format!("cannot open a session on {chrome}"))?;
        let id = created["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("new session answered without a sessionId: {created}"))?;
        browser.session = format!("{base}/session/{id}");
        browser.cmd(
            "POST",
            "/timeouts",
            json!({"script": 60_000, "pageLoad": 60_000, "implicit": 0}),
        )?;
        Ok(browser)
    }

    /// Sends one WebDriver request; returns the answer's `value` or the driver's error.
    fn request(&self, method: &str, url: &str, body: Option<Value>) -> Result<Value> {
        let req = self.agent.request(method, url);
        let result = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match result {
            Ok(resp) => {
                let v: Value = resp
                    .into_json()
                    .with_context(|| format!("{method} {url}: the answer is not JSON"))?;
                Ok(v.get("value").cloned().unwrap_or(Value::Null))
            }
            Err(ureq::Error::Status(code, resp)) => {
                let v: Value = resp.into_json().unwrap_or(Value::Null);
                let e = &v["value"];
                let message = e["message"].as_str().unwrap_or("");
                // ChromeDriver's messages end with a long native stack trace; the first line says it.
                let message = message.lines().next().unwrap_or("");
                bail!(
                    "{method} {url}: HTTP {code} {}: {message}",
                    e["error"].as_str().unwrap_or("?")
                )
            }
            Err(e) => Err(anyhow!("{method} {url}: {e}")),
        }
    }

    /// A command on this session: `path` is relative to `/session/{id}`.
    fn cmd(&self, method: &str, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}{path}", self.session);
        let body = (method == "POST").then_some(body);
        self.request(method, &url, body)
    }

    /// Opens `url` and waits for the page's load event.
    pub fn goto(&self, url: &str) -> Result<()> {
        self.cmd("POST", "/url", json!({"url": url}))
            .with_context(|| format!("cannot open {url}"))?;
        Ok(())
    }

    /// The current page's URL.
    pub fn url(&self) -> Result<String> {
        let v = self.cmd("GET", "/url", Value::Null)?;
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("the current URL is not a string: {v}"))
    }

    /// Reloads the page.
    pub fn reload(&self) -> Result<()> {
        self.cmd("POST", "/refresh", json!({}))?;
        Ok(())
    }

    /// Goes one entry back in the session history.
    pub fn back(&self) -> Result<()> {
        self.cmd("POST", "/back", json!({}))?;
        Ok(())
    }

    /// Goes one entry forward in the session history.
    pub fn forward(&self) -> Result<()> {
        self.cmd("POST", "/forward", json!({}))?;
        Ok(())
    }

    fn element(&self, v: &Value) -> Result<Element<'_>> {
        let id = v[ELEMENT_KEY]
            .as_str()
            .ok_or_else(|| anyhow!("not an element reference: {v}"))?;
        Ok(Element {
            browser: self,
            id: id.to_string(),
        })
    }

    /// The first element matching a CSS selector (an error if there is none).
    pub fn find(&self, css: &str) -> Result<Element<'_>> {
        let v = self
            .cmd(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .with_context(|| format!("no element matches {css:?}"))?;
        self.element(&v)
    }

    /// Every element matching a CSS selector, in document order.
    pub fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>> {
        let v = self.cmd(
            "POST",
            "/elements",
            json!({"using": "css selector", "value": css}),
        )?;
        v.as_array()
            .ok_or_else(|| anyhow!("find elements answered {v}"))?
            .iter()
            .map(|e| self.element(e))
            .collect()
    }

    /// Runs `script` as the body of a function with `args` as `arguments`; returns its result.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
    }

    /// Runs `script` as the body of a function whose last argument is a callback; returns the
    /// value passed to the callback (the script timeout is 60 s).
    pub fn execute_async(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.cmd(
            "POST",
            "/execute/async",
            json!({"script": script, "args": args}),
        )
    }

    /// Runs a Chrome DevTools Protocol command (ChromeDriver's `goog/cdp/execute`).
    pub fn cdp(&self, cmd: &str, params: Value) -> Result<Value> {
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            json!({"cmd": cmd, "params": params}),
        )
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
        let Ok(v) = self.cmd("POST", "/se/log", json!({"type": "browser"})) else {
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
        let v = self.cmd("GET", "/screenshot", Value::Null)?;
        let b64 = v
            .as_str()
            .ok_or_else(|| anyhow!("screenshot answered {v}"))?;
        let png = base64_decode(b64).context("the screenshot is not base64")?;
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
        if !self.session.is_empty() {
            let _ = self.request("DELETE", &self.session.clone(), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl<'a> Element<'a> {
    /// The first descendant matching a CSS selector.
    pub fn find(&self, css: &str) -> Result<Element<'a>> {
        let v = self
            .browser
            .cmd(
                "POST",
                &format!("/element/{}/element", self.id),
                json!({"using": "css selector", "value": css}),
            )
            .with_context(|| format!("no element matches {css:?} inside"))?;
        self.browser.element(&v)
    }

    /// An attribute's value (`None` when absent).
    pub fn attr(&self, name: &str) -> Result<Option<String>> {
        let v = self.browser.cmd(
            "GET",
            &format!("/element/{}/attribute/{name}", self.id),
            Value::Null,
        )?;
        Ok(v.as_str().map(str::to_string))
    }

    /// A DOM property, e.g. `textContent` or `value`.
    pub fn prop(&self, name: &str) -> Result<Value> {
        self.browser.cmd(
            "GET",
            &format!("/element/{}/property/{name}", self.id),
            Value::Null,
        )
    }

    /// The rendered text, as a user sees it.
    pub fn text(&self) -> Result<String> {
        let v = self
            .browser
            .cmd("GET", &format!("/element/{}/text", self.id), Value::Null)?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Clicks the element's centre (scrolled into view).
    pub fn click(&self) -> Result<()> {
        self.browser
            .cmd("POST", &format!("/element/{}/click", self.id), json!({}))?;
        Ok(())
    }

    /// Empties an input.
    pub fn clear(&self) -> Result<()> {
        self.browser
            .cmd("POST", &format!("/element/{}/clear", self.id), json!({}))?;
        Ok(())
    }

    /// Types `text` into the element ([`ENTER`] presses Enter).
    pub fn send_keys(&self, text: &str) -> Result<()> {
        self.browser.cmd(
            "POST",
            &format!("/element/{}/value", self.id),
            json!({"text": text}),
        )?;
        Ok(())
    }

    /// The element as a script argument for [`Browser::execute`].
    pub fn as_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
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

/// Standard base64 (what WebDriver screenshots use).
fn base64_decode(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => bail!("invalid base64 byte {c:#x}"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn decodes_base64() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("a*b").is_err());
    }
}
