//! A static file server for the built site: the MIME types browsers insist on (`application/wasm`
//! for streaming compilation), immutable caching for content-hashed names, `no-cache` for the
//! rest. Used by `./dev demo` and by the browser tests, which stop it to cut the network.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use tiny_http::{Header, Response, Server};

/// A running server; stops when dropped.
pub struct Serving {
    server: Arc<Server>,
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
        self.server.unblock();
        if let Some(t) = self.thread.take() {
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
    let server =
        Arc::new(Server::http(addr).map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?);
    let addr = server.server_addr().to_ip().context("not an IP address")?;
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicUsize::new(0));
    let root = root.to_path_buf();
    let thread = {
        let (server, stop, requests) = (server.clone(), stop.clone(), requests.clone());
        std::thread::spawn(move || {
            for req in server.incoming_requests() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                requests.fetch_add(1, Ordering::Relaxed);
                let _ = match resolve(&root, req.url())
                    .and_then(|p| std::fs::read(&p).ok().map(|b| (p, b)))
                {
                    Some((path, body)) => {
                        let cache = if hashed(&path) {
                            "public, max-age=31536000, immutable"
                        } else {
                            "no-cache"
                        };
                        let resp = Response::from_data(body)
                            .with_header(header("Content-Type", mime(&path)))
                            .with_header(header("Cache-Control", cache));
                        req.respond(resp)
                    }
                    None => req.respond(Response::from_string("not found").with_status_code(404)),
                };
            }
        })
    };
    Ok(Serving {
        server,
        addr,
        stop,
        requests,
        thread: Some(thread),
    })
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

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
