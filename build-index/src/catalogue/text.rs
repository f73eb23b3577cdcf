//! Cell text helpers: whitespace, HTML bodies turned into plain text, and image references.

use std::path::Path;

use super::ImageRef;

/// Longest image path accepted; anything longer is certainly not a file name.
const MAX_PATH_LEN: usize = 4096;

/// Collapses runs of whitespace (including newlines) into single spaces and trims the ends.
pub(super) fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A title made from a file name: the stem with `_` and `-` turned into spaces, whitespace
/// collapsed. May be empty.
pub(super) fn title_from_stem(stem: &str) -> String {
    collapse_whitespace(&stem.replace(['_', '-'], " "))
}

/// Tags whose end or start separates words (the others, like `<b>`, sit inside words).
const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
];

/// Plain text of an HTML fragment such as Shopify's `Body (HTML)`: tags, comments, scripts and
/// styles removed, the common entities decoded, whitespace collapsed.
pub(super) fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        if let Some(comment) = after.strip_prefix("!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let starts_tag = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'));
        if !starts_tag {
            // A lone `<`, as in "5 < 6", is text.
            out.push('<');
            rest = after;
            continue;
        }
        let Some(close) = tag_end(after) else {
            // An unterminated tag at the end: drop it.
            rest = "";
            break;
        };
        let tag = &after[..close];
        rest = &after[close + 1..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if !tag.starts_with('/') && (name == "script" || name == "style") {
            let closing = format!("</{name}");
            rest = match find_ignore_ascii_case(rest, &closing) {
                Some(at) => rest[at..].find('>').map_or("", |end| &rest[at + end + 1..]),
                None => "",
            };
            out.push(' ');
        } else if BLOCK_TAGS.contains(&name.as_str()) {
            out.push(' ');
        }
    }
    out.push_str(rest);
    collapse_whitespace(&decode_entities(&out))
}

/// The byte offset of the first `needle` (ASCII) in `haystack`, ignoring ASCII case, without
/// copying: `html_to_text` stays linear however many scripts a description holds.
fn find_ignore_ascii_case(haystack: &str, needle: &str) -> Option<usize> {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return Some(0);
    }
    h.windows(n.len()).position(|w| w.eq_ignore_ascii_case(n))
}

/// `text` cut to `limit` characters (the last one an ellipsis) when it is longer; `None` when it
/// fits.
pub(super) fn shorten(text: &str, limit: usize) -> Option<String> {
    let mut chars = text.char_indices();
    let (end, _) = chars.nth(limit.saturating_sub(1))?;
    chars.next()?;
    Some(format!("{}…", text[..end].trim_end()))
}

/// The byte offset of the `>` ending a tag whose text starts at `tag`, skipping quoted
/// attribute values.
fn tag_end(tag: &str) -> Option<usize> {
    let mut quote = None;
    let mut previous = ' ';
    for (i, c) in tag.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '>' => return Some(i),
            None if (c == '"' || c == '\'') && previous == '=' => quote = Some(c),
            None => {}
        }
        if !c.is_whitespace() {
            previous = c;
        }
    }
    None
}

/// Decodes `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&#39;`, `&apos;`, `&nbsp;`, a few typographic
/// entities, and numeric `&#NNN;` / `&#xHH;`. Anything else is left as written.
pub(super) fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after
            .char_indices()
            .take(12)
            .find(|&(_, c)| c == ';')
            .and_then(|(semi, _)| entity(&after[..semi]).map(|c| (c, semi)));
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character an entity name (between `&` and `;`) stands for.
fn entity(name: &str) -> Option<char> {
    let named = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '\u{2013}',
        "mdash" => '\u{2014}',
        "hellip" => '\u{2026}',
        "lsquo" => '\u{2018}',
        "rsquo" => '\u{2019}',
        "ldquo" => '\u{201C}',
        "rdquo" => '\u{201D}',
        "copy" => '\u{A9}',
        "reg" => '\u{AE}',
        "trade" => '\u{2122}',
        "euro" => '\u{20AC}',
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            return char::from_u32(code).filter(|&c| c != '\0');
        }
    };
    Some(named)
}

/// Turns an image cell into an [`ImageRef`]: `http(s)://` URLs as they are (spaces encoded as
/// `%20`; protocol-relative `//host.tld/…` ones made https), `file://` URLs and paths as paths,
/// relative ones joined to `base`. Anything else
/// (`ftp:`, `data:`, control characters) is an error sentence for [`super::Skipped`].
pub(super) fn image_ref(value: &str, base: &Path) -> Result<ImageRef, String> {
    let value = value.trim();
    if value.chars().any(char::is_control) {
        return Err(format!(
            "image {value:?} contains control characters (a line break or tab?), so it is not a \
             path or URL"
        ));
    }
    for scheme in ["http://", "https://"] {
        if let Some(rest) = strip_prefix_ignore_case(value, scheme) {
            if rest.split(['/', '?', '#']).next().is_none_or(str::is_empty) {
                return Err(format!("image URL {value:?} has no host name"));
            }
            return Ok(ImageRef::Url(format!(
                "{scheme}{}",
                rest.replace(' ', "%20")
            )));
        }
    }
    if let Some(rest) = value.strip_prefix("//")
        && rest
            .split('/')
            .next()
            .is_some_and(|host| host.contains('.'))
    {
        // Protocol-relative (`//cdn.shopify.com/…`), as older exports write: the shop is https.
        return image_ref(&format!("https:{value}"), base);
    }
    if let Some(rest) = strip_prefix_ignore_case(value, "file:") {
        return file_url_path(rest)
            .map(|path| ImageRef::Path(base.join(path)))
            .ok_or_else(|| {
                format!(
                    "image {value:?} is not a usable file: URL; write it as a path (relative to \
                     the catalogue) or as file:///absolute/path"
                )
            });
    }
    if let Some(scheme) = url_scheme(value) {
        let fix = "use an http:// or https:// URL or a file path";
        return Err(if scheme.eq_ignore_ascii_case("data") {
            format!("image is a data: URI, which is not supported; save it to a file or {fix}")
        } else {
            format!("image {value:?} uses the unsupported {scheme}: scheme; {fix}")
        });
    }
    if value.len() > MAX_PATH_LEN {
        return Err(format!(
            "image path is {} bytes long, too long to be a file path",
            value.len()
        ));
    }
    Ok(ImageRef::Path(base.join(value)))
}

/// `s` without `prefix`, compared ignoring ASCII case.
fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The scheme of a URL-looking value (`ftp` in `ftp://…`). Single letters are Windows drive
/// letters (`C:\…`), not schemes.
fn url_scheme(value: &str) -> Option<&str> {
    let (scheme, _) = value.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (valid && scheme.len() > 1).then_some(scheme)
}

/// The path of a `file:` URL (given without `file:`): `///abs`, `//localhost/abs` or `/abs`,
/// percent-decoded. `None` for other hosts, empty paths or invalid encodings.
fn file_url_path(rest: &str) -> Option<String> {
    let path = match rest.strip_prefix("//") {
        Some(authority) => {
            let slash = authority.find('/')?;
            let host = &authority[..slash];
            if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
                return None;
            }
            &authority[slash..]
        }
        None => rest,
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let decoded = percent_decode(path)?;
    (!decoded.is_empty() && decoded != "/").then_some(decoded)
}

/// Decodes `%XX` escapes; `None` when an escape is malformed or the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
