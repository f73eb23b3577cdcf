//! `--host-headers`: the file a static host reads to send each file's `Cache-Control`, written
//! into the site's root (the folder holding `index.html` and the index folder): `_headers` for
//! Netlify and Cloudflare Pages, an upload script setting S3 object metadata for S3 (+ CloudFront).
//! Fixed names (the shell, the manifest) are revalidated; files named by content are cached for
//! ever, by the rule the page, the service worker and the test server share.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use vitrine_protocol::{
    CACHE_IMMUTABLE, CACHE_REVALIDATE, INDEX_DIR, SHELL_FILES, is_content_addressed,
};

/// The hosts `--host-headers` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Host {
    /// Netlify: `_headers` in the publish folder.
    Netlify,
    /// Cloudflare Pages: `_headers` in the build output folder.
    Cloudflare,
    /// Amazon S3 (+ CloudFront): `s3-upload.sh`, uploading with `--cache-control`.
    S3,
}

/// The first line of every file we write: one without it is the maintainer's, never replaced.
const MARK: &str = "# Written by build-index --host-headers";

/// Largest file each host serves, in bytes, and its name for messages.
fn max_file(host: Host) -> Option<(u64, &'static str)> {
    match host {
        Host::Cloudflare => Some((
            25 * 1024 * 1024,
            "Cloudflare Pages serves files up to 25 MiB",
        )),
        Host::Netlify | Host::S3 => None,
    }
}

/// Why the header file cannot be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostingError {
    /// `--out` is not the index folder beside the page, so the site's root is unknown.
    #[error(
        "--host-headers writes into the site's root, the folder holding {INDEX_DIR}; --out {0} \
         is not named {INDEX_DIR} (build with --out <site>/{INDEX_DIR})"
    )]
    NotInSite(String),
    /// A file of that name exists and is not ours.
    #[error(
        "{0} exists and was not written by build-index; merge the rules from the README's \
         deploy recipes into it by hand, or remove it and build again"
    )]
    Foreign(String),
}

/// One group of files and its `Cache-Control`: `pattern` is a path from the site's root,
/// ending in `/*` for a whole folder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rule {
    pub(crate) pattern: String,
    pub(crate) immutable: bool,
}

/// The rules for the files under `root`: a folder of the index whose files are all named by
/// content is one rule; other files get a rule each; `/` is the page.
pub(crate) fn rules(root: &Path) -> Result<Vec<Rule>> {
    let mut rules = vec![Rule {
        pattern: "/".into(),
        immutable: false,
    }];
    let mut files = Vec::new();
    walk(root, root, &mut files)?;
    files.retain(|f| !f.ends_with("_headers") && !f.ends_with("s3-upload.sh"));
    let mut folders: Vec<(String, bool)> = Vec::new();
    for f in &files {
        let content = is_content_addressed(f);
        match f.strip_prefix(INDEX_DIR).and_then(|r| r.split_once('/')) {
            Some((folder, _)) => {
                let folder = format!("{INDEX_DIR}{folder}");
                match folders.iter_mut().find(|(n, _)| *n == folder) {
                    Some((_, all)) => *all &= content,
                    None => folders.push((folder, content)),
                }
            }
            None => rules.push(Rule {
                pattern: format!("/{f}"),
                immutable: content,
            }),
        }
    }
    for (folder, all) in folders {
        if all {
            rules.push(Rule {
                pattern: format!("/{folder}/*"),
                immutable: true,
            });
        } else {
            rules.extend(
                files
                    .iter()
                    .filter(|f| f.starts_with(&format!("{folder}/")))
                    .map(|f| Rule {
                        pattern: format!("/{f}"),
                        immutable: is_content_addressed(f),
                    }),
            );
        }
    }
    // The shell's fixed names, even when the page is built after the index.
    for name in SHELL_FILES {
        if !rules.iter().any(|r| r.pattern == format!("/{name}")) {
            rules.push(Rule {
                pattern: format!("/{name}"),
                immutable: false,
            });
        }
    }
    Ok(rules)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        if e.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

fn cache(rule: &Rule) -> &'static str {
    if rule.immutable {
        CACHE_IMMUTABLE
    } else {
        CACHE_REVALIDATE
    }
}

/// `_headers` (Netlify and Cloudflare Pages read the same syntax).
fn headers_file(host: Host, rules: &[Rule]) -> String {
    let name = if host == Host::Netlify {
        "netlify"
    } else {
        "cloudflare"
    };
    let mut s = format!(
        "{MARK} {name}; rewritten on every build.\n\
         # Fixed names are revalidated on every visit; files named by their content are cached\n\
         # for ever. A request matching two rules would get both headers: the rules never overlap.\n"
    );
    for r in rules {
        s.push_str(&format!("{}\n  Cache-Control: {}\n", r.pattern, cache(r)));
    }
    s
}

/// `s3-upload.sh`: content-named files first, then the fixed names (so no visitor is sent a
/// manifest naming files not uploaded yet), then an optional CloudFront invalidation.
fn s3_script(rules: &[Rule]) -> String {
    let mut immutable = String::new();
    let mut fixed = String::new();
    for r in rules.iter().filter(|r| r.pattern != "/") {
        let path = r.pattern.trim_start_matches('/');
        if let Some(folder) = path.strip_suffix("/*") {
            immutable.push_str(&format!("sync_folder '{folder}'\n"));
        } else if r.immutable {
            immutable.push_str(&format!("put '{path}' '{CACHE_IMMUTABLE}'\n"));
        } else {
            fixed.push_str(&format!("put '{path}' '{CACHE_REVALIDATE}'\n"));
        }
    }
    let paths: Vec<&str> = rules
        .iter()
        .filter(|r| !r.immutable)
        .map(|r| r.pattern.as_str())
        .collect();
    format!(
        r#"#!/bin/sh
{MARK} s3; rewritten on every build.
# Uploads this site to S3 with the Cache-Control each file needs (S3 object metadata), and
# optionally has CloudFront drop its copies of the fixed names. Needs the AWS CLI (aws).
#   sh s3-upload.sh s3://BUCKET[/PREFIX] [CLOUDFRONT_DISTRIBUTION_ID]
# Older content-named files are kept: pages opened before the upload still find them.
set -eu
cd "$(dirname "$0")"
dest="${{1:?usage: sh s3-upload.sh s3://BUCKET[/PREFIX] [CLOUDFRONT_DISTRIBUTION_ID]}}"
put() {{
    [ -f "$1" ] || return 0
    case "$1" in
        *.wasm) aws s3 cp "$1" "$dest/$1" --cache-control "$2" --content-type application/wasm ;;
        *) aws s3 cp "$1" "$dest/$1" --cache-control "$2" ;;
    esac
}}
sync_folder() {{
    aws s3 sync "$1" "$dest/$1" --cache-control '{CACHE_IMMUTABLE}'
}}
# 1. Named by their content: cached for ever.
{immutable}# 2. Fixed names: revalidated on every visit.
{fixed}# 3. CloudFront: forget the fixed names.
if [ -n "${{2:-}}" ]; then
    aws cloudfront create-invalidation --distribution-id "$2" --paths {paths}
fi
"#,
        paths = paths.join(" ")
    )
}

fn file_name(host: Host) -> &'static str {
    match host {
        Host::S3 => "s3-upload.sh",
        Host::Netlify | Host::Cloudflare => "_headers",
    }
}

/// The file `host` reads, in the root of the site whose index is `out`: `out` must be the index
/// folder beside the page, and an existing file of that name must be one we wrote. Checked
/// before the build starts.
pub(crate) fn check(host: Host, out: &Path) -> Result<PathBuf, HostingError> {
    let dir_name = INDEX_DIR.trim_end_matches('/');
    let root = match (out.file_name(), out.parent()) {
        (Some(n), Some(p)) if n == dir_name && p.as_os_str().is_empty() => PathBuf::from("."),
        (Some(n), Some(p)) if n == dir_name => p.to_path_buf(),
        _ => return Err(HostingError::NotInSite(out.display().to_string())),
    };
    let path = root.join(file_name(host));
    let ours = |text: String| text.lines().take(2).any(|l| l.starts_with(MARK));
    if path.exists() && !std::fs::read_to_string(&path).is_ok_and(ours) {
        return Err(HostingError::Foreign(path.display().to_string()));
    }
    Ok(path)
}

/// Writes the host's file into the root of the site whose index is `out`; returns its path and
/// notes (files the host will not serve).
pub(crate) fn write(host: Host, out: &Path) -> Result<(PathBuf, Vec<String>)> {
    let path = check(host, out)?;
    let root = path.parent().unwrap_or(Path::new("."));
    let rules = rules(root)?;
    let text = match host {
        Host::S3 => s3_script(&rules),
        Host::Netlify | Host::Cloudflare => headers_file(host, &rules),
    };
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    let mut notes = Vec::new();
    if let Some((max, why)) = max_file(host) {
        let mut files = Vec::new();
        walk(root, root, &mut files)?;
        for f in files {
            let size = std::fs::metadata(root.join(&f))
                .map(|m| m.len())
                .unwrap_or(0);
            if size > max {
                notes.push(format!(
                    "{f} is {:.1} MB: {why}; host it elsewhere (e.g. R2 or S3) or choose a \
                     host without this limit",
                    size as f64 / 1e6
                ));
            }
        }
    }
    Ok((path, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_of_content_named_files_are_one_rule_and_fixed_names_are_revalidated() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let hashed = "0123456789abcdef";
        for f in [
            "index.html".to_string(),
            "sw.js".to_string(),
            "vitrine-web-0123456789abcdef.js".to_string(),
            "search/manifest.json".to_string(),
            format!("search/items.{hashed}.json"),
            format!("search/thumbs/t.{hashed}.webp"),
        ] {
            let p = root.join(&f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let rules = rules(root).unwrap();
        let get = |p: &str| rules.iter().find(|r| r.pattern == p).map(|r| r.immutable);
        assert_eq!(get("/"), Some(false));
        assert_eq!(get("/index.html"), Some(false));
        assert_eq!(get("/search/manifest.json"), Some(false));
        assert_eq!(get("/vitrine-web-0123456789abcdef.js"), Some(true));
        assert_eq!(get("/search/thumbs/*"), Some(true));
        assert_eq!(get(&format!("/search/items.{hashed}.json")), Some(true));
        assert_eq!(
            get("/worker-boot.js"),
            Some(false),
            "shell names are listed even if absent"
        );
    }
}
