//! One HTTP server for every test that needs one (and `./dev serve`), on 127.0.0.1, answering each
//! request through a handler that sees the request and may pick any [`Reply`]: files of a built
//! site (the MIME types browsers insist on, immutable caching for content-hashed names,
//! `no-cache` for the rest), an error status, a delayed or dripping body, a hang. Every request
//! is recorded.
//!
//! [`hyper`] serves HTTP/1.1 on its own thread's Tokio runtime, one task per connection and
//! `Connection: close` on every answer. [`TestServer::stop`] closes the port *and* drops every
//! open connection, so a browser really goes offline: its next request fails at once, even on a
//! socket it pre-connected. (`tiny_http` was tried: after its listener closes it keeps reading
//! those sockets, and the browser waits for ever on requests nobody answers.)

use std::convert::Infallible;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_LENGTH, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Hit {
    /// The request target (path and query).
    pub path: String,
    /// Header names and values, as sent.
    pub headers: Vec<(String, String)>,
    /// When it arrived.
    pub at: Instant,
}

impl Hit {
    /// The value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        let found = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }

    /// The path without the query, percent-decoded.
    pub fn file_path(&self) -> String {
        percent_decode(self.path.split(['?', '#']).next().unwrap_or("/"))
    }
}

/// What the server answers.
#[derive(Debug)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunked: bool,
    drip: Option<Duration>,
    delay: Option<Duration>,
}

impl Reply {
    /// `200 OK` with this body.
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
            chunked: false,
            drip: None,
            delay: None,
        }
    }

    /// An empty answer with this status.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::ok("")
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sends the body chunked, without `Content-Length`.
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    /// Sends the body one byte per `pause`.
    pub fn drip(mut self, pause: Duration) -> Self {
        self.drip = Some(pause);
        self
    }

    /// Waits this long before answering (a very long delay is a server that hangs).
    pub fn delay(mut self, wait: Duration) -> Self {
        self.delay = Some(wait);
        self
    }

    /// The status code.
    pub fn code(&self) -> u16 {
        self.status
    }
}

type Handler = dyn Fn(&Hit, usize) -> Reply + Send + Sync;

/// What the connections share.
struct Shared {
    handler: Box<Handler>,
    hits: Mutex<Vec<Hit>>,
}

/// A running server; stops when dropped.
pub struct TestServer {
    port: u16,
    shared: Arc<Shared>,
    /// Tells the serving thread to stop, which it does before it ends.
    stop: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl TestServer {
    /// Starts a server on a free port that answers each request with `handler(request, n)`,
    /// `n` counting requests from 0.
    pub fn start(handler: impl Fn(&Hit, usize) -> Reply + Send + Sync + 'static) -> Result<Self> {
        Self::start_on("127.0.0.1:0", handler)
    }

    /// Like [`TestServer::start`] on `addr` (`host:port`).
    pub fn start_on(
        addr: &str,
        handler: impl Fn(&Hit, usize) -> Reply + Send + Sync + 'static,
    ) -> Result<Self> {
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen on {addr}"))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            hits: Mutex::default(),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start a Tokio runtime")?;
        let (stop, stopped) = oneshot::channel();
        let serving = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                runtime.block_on(serve(listener, shared, stopped));
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
        };
        Ok(Self {
            port,
            shared,
            stop: Some((stop, serving)),
        })
    }

    /// Serves the files under `root` (see [`file_reply`]).
    pub fn files(root: &Path) -> Result<Self> {
        Self::files_on(root, "127.0.0.1:0")
    }

    /// Serves the files under `root` on `addr`.
    pub fn files_on(root: &Path, addr: &str) -> Result<Self> {
        let root = root.to_path_buf();
        Self::start_on(addr, move |hit, _| file_reply(&root, hit))
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The base URL, e.g. `http://127.0.0.1:8080/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The URL of `path` (starting with `/`) on this server.
    pub fn url_for(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request so far, in arrival order.
    pub fn hits(&self) -> Vec<Hit> {
        lock(&self.shared.hits).clone()
    }

    /// How many requests arrived so far.
    pub fn requests(&self) -> usize {
        lock(&self.shared.hits).len()
    }

    /// Stops serving: the port refuses connections and every open connection is closed, so
    /// requests in flight fail.
    pub fn stop(&mut self) {
        if let Some((stop, serving)) = self.stop.take() {
            let _ = stop.send(());
            let _ = serving.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Accepts connections until `stopped`, then closes the port and drops every connection.
async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                connections.spawn(async move {
                    let answer = hyper::service::service_fn(|req| answer(shared.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(stream), answer)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// Records `req` and answers it through the handler (GET and HEAD only).
async fn answer(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
    let hit = Hit {
        path: req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        at: Instant::now(),
    };
    let n = {
        let mut hits = lock(&shared.hits);
        hits.push(hit.clone());
        hits.len() - 1
    };
    let reply = if matches!(*req.method(), Method::GET | Method::HEAD) {
        tokio::task::spawn_blocking(move || (shared.handler)(&hit, n))
            .await
            .unwrap_or_else(|_| Reply::ok("the handler panicked").with_status(500))
    } else {
        Reply::ok("GET only").with_status(405)
    };
    if let Some(wait) = reply.delay {
        tokio::time::sleep(wait).await;
    }
    Ok(response(reply))
}

/// `reply` as hyper sends it: a whole body with its length, or a stream (chunked unless the
/// reply drips a body of known length).
fn response(reply: Reply) -> Response<BoxBody<Bytes, Infallible>> {
    let len = reply.body.len();
    let body = Bytes::from(reply.body);
    let streamed = reply.chunked || reply.drip.is_some();
    let body = match reply.drip {
        Some(pause) => {
            let bytes = futures::StreamExt::then(futures::stream::iter(0..len), move |i| {
                let byte = body.slice(i..i + 1);
                async move {
                    tokio::time::sleep(pause).await;
                    Ok(Frame::data(byte))
                }
            });
            StreamBody::new(bytes).boxed()
        }
        None if reply.chunked => {
            StreamBody::new(futures::stream::iter([Ok(Frame::data(body))])).boxed()
        }
        None => Full::new(body).boxed(),
    };
    let mut out = Response::new(body);
    *out.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (name, value) in &reply.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            out.headers_mut().append(n, v);
        }
    }
    if streamed && !reply.chunked {
        out.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    out
}

/// The MIME type of a file name.
pub fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "wasm" => "application/wasm",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// Whether a file under the served root is named by its content, by the site's own rule
/// ([`vitrine_protocol::is_content_addressed`]), wherever the page sits under the root.
fn immutable(rel: &str) -> bool {
    let index = vitrine_protocol::INDEX_DIR;
    let from_index = rel
        .match_indices(index)
        .find(|(i, _)| *i == 0 || rel[..*i].ends_with('/'))
        .map(|(i, _)| &rel[i..]);
    match from_index {
        Some(path) => vitrine_protocol::is_content_addressed(path),
        None => vitrine_protocol::is_content_addressed(rel.rsplit('/').next().unwrap_or(rel)),
    }
}

/// Maps a URL path to a file under `root`, refusing `..`.
fn resolve(root: &Path, path: &str) -> Option<(PathBuf, String)> {
    let mut out = root.to_path_buf();
    let mut rel = Vec::new();
    for c in Path::new(path.trim_start_matches('/')).components() {
        match c {
            Component::Normal(p) => {
                out.push(p);
                rel.push(p.to_string_lossy().into_owned());
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.is_dir() {
        out.push("index.html");
        rel.push("index.html".into());
    }
    Some((out, rel.join("/")))
}

/// A built site's file for `hit` under `root`: `200` with its MIME type and cache policy (`206`
/// with the part a `Range: bytes=a-b` header asks, as static hosts answer), or `404`.
pub fn file_reply(root: &Path, hit: &Hit) -> Reply {
    whole_file_reply(root, hit).ranged_for(hit)
}

/// [`file_reply`] from a host that ignores `Range` headers: always the whole file.
pub fn whole_file_reply(root: &Path, hit: &Hit) -> Reply {
    match resolve(root, &hit.file_path())
        .and_then(|(p, rel)| Some((std::fs::read(&p).ok()?, p, rel)))
    {
        Some((body, path, rel)) => {
            let cache = if immutable(&rel) {
                vitrine_protocol::CACHE_IMMUTABLE
            } else {
                vitrine_protocol::CACHE_REVALIDATE
            };
            Reply::ok(body)
                .header("Content-Type", mime(&path))
                .header("Cache-Control", cache)
        }
        None => Reply::ok("not found")
            .header("Content-Type", "text/plain")
            .header("Cache-Control", "no-store")
            .with_status(404),
    }
}

impl Reply {
    /// The same reply compressed with gzip when the request accepts it (as static hosts serve
    /// JavaScript, WebAssembly and JSON).
    pub fn gzip_for(mut self, hit: &Hit) -> Self {
        use std::io::Write;
        let accepted = hit
            .header("Accept-Encoding")
            .is_some_and(|a| a.split(',').any(|e| e.trim().starts_with("gzip")));
        if !accepted || self.status != 200 {
            return self;
        }
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        if z.write_all(&self.body).is_err() {
            return self;
        }
        match z.finish() {
            Ok(body) => {
                self.body = body;
                self.header("Content-Encoding", "gzip")
            }
            Err(_) => self,
        }
    }

    /// The part of a `200` reply a `Range: bytes=a-b` (or `bytes=a-`) header asks, as `206`
    /// with its `Content-Range`; other replies and requests unchanged.
    pub fn ranged_for(mut self, hit: &Hit) -> Self {
        let Some(spec) = hit.header("Range").and_then(|r| r.strip_prefix("bytes=")) else {
            return self;
        };
        let Some((a, b)) = spec.split_once('-') else {
            return self;
        };
        let len = self.body.len();
        let start: usize = match a.trim().parse() {
            Ok(s) if s < len && self.status == 200 => s,
            _ => return self,
        };
        let end = b
            .trim()
            .parse::<usize>()
            .map_or(len - 1, |e| e.min(len - 1));
        if end < start {
            return self;
        }
        self.body = self.body[start..=end].to_vec();
        self.status = 206;
        self.header("Content-Range", &format!("bytes {start}-{end}/{len}"))
    }

    /// The same reply with another status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_files_and_a_stopped_server_refuses_connections() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "hi").unwrap();
        let mut serving = TestServer::files(dir.path()).unwrap();
        let url = serving.url();
        let body = ureq::get(&url).call().unwrap().into_string().unwrap();
        assert_eq!(body, "hi");
        let missing = ureq::get(&format!("{url}nope.js")).call();
        assert!(matches!(missing, Err(ureq::Error::Status(404, _))));
        serving.stop();
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", serving.port())).is_err(),
            "still listening"
        );
        assert_eq!(serving.requests(), 2);
    }

    #[test]
    fn content_addressed_names_are_immutable_wherever_the_page_sits() {
        assert!(immutable("search/vectors.0123456789abcdef.bin"));
        assert!(immutable("shop/search/thumbs/thumb.0123456789abcdef.jpg"));
        assert!(immutable("vitrine-web-8e5262697f9d8c73_bg.wasm"));
        assert!(!immutable("vitrine-worker_bg.wasm"));
        assert!(!immutable("shop/search/manifest.json"));
        let root = Path::new("/srv");
        assert_eq!(
            resolve(root, "/a/b.js").map(|(p, _)| p),
            Some(PathBuf::from("/srv/a/b.js"))
        );
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(percent_decode("/a%20b"), "/a b");
    }

    #[test]
    fn replies_can_drip_and_fail() {
        let server = TestServer::start(|hit, _| match hit.file_path().as_str() {
            "/slow" => Reply::ok("abc").drip(Duration::from_millis(30)),
            _ => Reply::status(503).header("Retry-After", "1"),
        })
        .unwrap();
        let start = Instant::now();
        let body = ureq::get(&format!("{}slow", server.url()))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        assert_eq!(body, "abc");
        assert!(start.elapsed() >= Duration::from_millis(80));
        let failed = ureq::get(&format!("{}x", server.url())).call();
        assert!(matches!(failed, Err(ureq::Error::Status(503, _))));
        assert_eq!(server.hits()[1].path, "/x");
    }
}
