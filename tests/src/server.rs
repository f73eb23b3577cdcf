//! A static file server for the built site: the MIME types browsers insist on (`application/wasm`
//! for streaming compilation), immutable caching for content-hashed names, `no-cache` for the
//! rest. Used by `./dev demo` and by the browser tests, which stop it to cut the network.
//!
//! Plain HTTP/1.1 over `std::net`, one thread per connection and `Connection: close` on every
//! answer: with no idle kept-alive connections, [`Serving::stop`] really cuts the network (a
//! browser's next request is refused instead of waiting forever on an open connection).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

/// A running server; stops when dropped.
pub struct Serving {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Serving {
    /// The base URL, e.g. `http://127.0.0.1:8080/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// Stops serving; the port refuses connections afterwards.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // Wakes the accept loop, which then closes the listening socket.
            let _ = TcpStream::connect(self.addr);
            let _ = t.join();
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.stop();
    }
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

/// Whether a file name carries a content hash (`name.0123456789abcdef.ext` or `name-<hash>.ext`).
fn hashed(path: &Path) -> bool {
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let tail = name.rsplit(['.', '-']).next().unwrap_or("");
    let tail = tail.strip_suffix("_bg").unwrap_or(tail);
    tail.len() == 16 && tail.bytes().all(|b| b.is_ascii_hexdigit())
        || path.components().any(|c| c.as_os_str() == "thumbs")
}

/// Maps a URL path to a file under `root`, refusing `..`.
fn resolve(root: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("/");
    let decoded = percent_decode(path);
    let mut out = root.to_path_buf();
    for c in Path::new(decoded.trim_start_matches('/')).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.is_dir() {
        out.push("index.html");
    }
    Some(out)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if b[i] == b'%'
            && let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Serves `root` on `addr` (port 0 picks a free port) in a background thread.
pub fn serve(root: &Path, addr: &str) -> Result<Serving> {
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicUsize::new(0));
    let root = Arc::new(root.to_path_buf());
    let thread = {
        let (stop, requests) = (stop.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (root, requests) = (root.clone(), requests.clone());
                std::thread::spawn(move || {
                    if answer(&root, conn).is_ok() {
                        requests.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        })
    };
    Ok(Serving {
        addr,
        stop,
        requests,
        thread: Some(thread),
    })
}

/// Reads one request from `conn` and answers it.
fn answer(root: &Path, conn: TcpStream) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    // The headers do not matter: no bodies, no ranges, no conditional requests.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let (status, content_type, cache, body) = if method != "GET" && method != "HEAD" {
        (
            "405 Method Not Allowed",
            "text/plain",
            "no-store",
            b"GET only".to_vec(),
        )
    } else {
        match resolve(root, target).and_then(|p| std::fs::read(&p).ok().map(|b| (p, b))) {
            Some((path, body)) => {
                let cache = if hashed(&path) {
                    "public, max-age=31536000, immutable"
                } else {
                    "no-cache"
                };
                ("200 OK", mime(&path), cache, body)
            }
            None => (
                "404 Not Found",
                "text/plain",
                "no-store",
                b"not found".to_vec(),
            ),
        }
    };
    let mut out = std::io::BufWriter::new(conn);
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: {cache}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        out.write_all(&body)?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_files_and_a_stopped_server_refuses_connections() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "hi").unwrap();
        let mut serving = serve(dir.path(), "127.0.0.1:0").unwrap();
        let url = serving.url();
        let body = ureq::get(&url).call().unwrap().into_string().unwrap();
        assert_eq!(body, "hi");
        let missing = ureq::get(&format!("{url}nope.js")).call();
        assert!(matches!(missing, Err(ureq::Error::Status(404, _))));
        serving.stop();
        let addr = url.trim_start_matches("http://").trim_end_matches('/');
        assert!(TcpStream::connect(addr).is_err(), "still listening");
        assert_eq!(serving.requests(), 2);
    }

    #[test]
    fn hashed_names_and_paths_resolve_safely() {
        assert!(hashed(Path::new("vectors.0123456789abcdef.bin")));
        assert!(hashed(Path::new("vitrine-web-8e5262697f9d8c73_bg.wasm")));
        assert!(!hashed(Path::new("vitrine-worker_bg.wasm")));
        assert!(!hashed(Path::new("manifest.json")));
        let root = Path::new("/srv");
        assert_eq!(
            resolve(root, "/a/b.js?x=1"),
            Some(PathBuf::from("/srv/a/b.js"))
        );
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(percent_decode("/a%20b"), "/a b");
    }
}
