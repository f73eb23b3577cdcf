//! vitrine's one test-support kit, for `build-index`'s tests and the browser tests alike: the
//! real `build-index` binary and its outputs ([`cli`]), a built index read through the format's
//! own types ([`site_dir`]), one HTTP test server (hyper) with the knobs every test needs
//! ([`server`]), test images ([`images`]) and `.npy` embeddings ([`npy_f32`]), the release app
//! shell with an index beside it ([`web`]), and headless Chromium over WebDriver (fantoccini)
//! ([`webdriver`]) with helpers that read the page ([`page`]).
//!
//! ```sh
//! cargo test -p vitrine-testkit                        # builds the app shell once (Trunk), then tests
//! VITRINE_DIST=dist cargo test -p vitrine-testkit      # with an app shell built beforehand
//! ```

pub mod cli;
pub mod images;
pub mod page;
pub mod server;
pub mod site_dir;
pub mod web;
pub mod webdriver;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The benchmarks' full-size ViT-B/32 checkpoint with random weights (`target/random-vit-b-32`),
/// made by vitrine-clip's `random_checkpoint` example when missing.
pub fn random_vit_b_32() -> Result<PathBuf> {
    let root = repo_root();
    let dir = root.join("target/random-vit-b-32");
    if !dir.join("model.safetensors").exists() {
        run(Command::new("cargo")
            .args(["run", "--release", "-q", "-p", "vitrine-clip", "--example"])
            .args(["random_checkpoint", "--"])
            .arg(&dir)
            .current_dir(&root))?;
    }
    Ok(dir)
}

/// Runs a command, failing with its output when it does not succeed.
pub fn run(cmd: &mut Command) -> Result<std::process::Output> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Copies a folder tree.
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {to:?}"))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("cannot read {from:?}"))? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).with_context(|| format!("cannot copy {src:?}"))?;
        }
    }
    Ok(())
}

/// A query string parameter's value, percent-encoded (for `?q=` URLs).
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out += &format!("%{b:02X}"),
        }
    }
    out
}

/// A temporary directory for one test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vitrine-test-")
        .tempdir()
        .expect("temp dir")
}

/// An `.npy` file's bytes for a `rows` × `cols` matrix of little-endian float32 (NumPy format
/// 1.0, header padded to 64 bytes), as clip-retrieval writes its embeddings.
pub fn npy_f32(rows: usize, cols: usize, data: &[f32]) -> Vec<u8> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    data.iter()
        .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
    out
}
