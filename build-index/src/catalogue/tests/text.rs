//! The text helpers: HTML to text, entities, file-name titles, image references.

use std::path::Path;

use crate::catalogue::ImageRef;
use crate::catalogue::text::{decode_entities, html_to_text, image_ref, title_from_stem};

#[test]
fn html_to_text_strips_tags_and_decodes_entities() {
    assert_eq!(html_to_text("<p>One</p><p>Two</p>"), "One Two");
    assert_eq!(html_to_text("so<b>lid</b> <i>oak</i>"), "solid oak");
    assert_eq!(html_to_text("a<br/>b<br>c"), "a b c");
    assert_eq!(
        html_to_text("<a href=\"/x?a=1&b=>2\" title='y>z'>link</a> text"),
        "link text"
    );
    assert_eq!(
        html_to_text("<STYLE>p{color:red}</style>Hi<SCRIPT>x()</SCRIPT>!"),
        "Hi !"
    );
    assert_eq!(html_to_text("x<!-- hidden <p> -->y"), "xy");
    assert_eq!(html_to_text("1 < 2 and 3 <4"), "1 < 2 and 3 <4");
    assert_eq!(html_to_text("cut <p class="), "cut");
    assert_eq!(
        html_to_text("&lt;b&gt;not a tag&lt;/b&gt;"),
        "<b>not a tag</b>"
    );
    assert_eq!(
        html_to_text("  spaced\n\t out&nbsp;&nbsp;text  "),
        "spaced out text"
    );
}

#[test]
fn entities_known_numeric_and_unknown() {
    assert_eq!(decode_entities("&amp;&lt;&gt;&quot;&#39;&apos;"), "&<>\"''");
    assert_eq!(decode_entities("&#233;&#xE9;&#XE9;&eacute;"), "ééé&eacute;");
    assert_eq!(
        decode_entities("&#0; &#x110000; &#xZZ; & &amp"),
        "&#0; &#x110000; &#xZZ; & &amp"
    );
    assert_eq!(
        decode_entities("&ndash;&hellip;&euro;"),
        "\u{2013}\u{2026}\u{20AC}"
    );
}

#[test]
fn titles_from_file_stems() {
    assert_eq!(title_from_stem("blue_mug-XL"), "blue mug XL");
    assert_eq!(title_from_stem("  a__b  --c "), "a b c");
    assert_eq!(title_from_stem("_-_"), "");
}

#[test]
fn image_refs() {
    let base = Path::new("/shop/export");
    let path = |p: &str| Ok(ImageRef::Path(p.into()));
    assert_eq!(image_ref("img/a.png", base), path("/shop/export/img/a.png"));
    assert_eq!(image_ref(" ../b.png ", base), path("/shop/export/../b.png"));
    assert_eq!(image_ref("/abs/c.png", base), path("/abs/c.png"));
    assert_eq!(
        image_ref("file:rel/d.png", base),
        path("/shop/export/rel/d.png")
    );
    assert_eq!(image_ref("File:///e%C3%A9.png", base), path("/eé.png"));
    assert_eq!(
        image_ref("C:\\pics\\f.png", base),
        path("/shop/export/C:\\pics\\f.png")
    );
    assert_eq!(
        image_ref("http://h/x y.png", base),
        Ok(ImageRef::Url("http://h/x%20y.png".into()))
    );

    let err = |v: &str| image_ref(v, base).expect_err(v);
    assert_eq!(err("https://"), "image URL \"https://\" has no host name");
    assert_eq!(
        err("http:///a.png"),
        "image URL \"http:///a.png\" has no host name"
    );
    assert!(err("data:image/png;base64,iVBORw0KGgo=").starts_with("image is a data: URI"));
    assert!(err("s3://bucket/a.png").contains("unsupported s3: scheme"));
    assert!(err("file://server/share/a.png").contains("not a usable file: URL"));
    assert!(err("file:///a%ZZ.png").contains("not a usable file: URL"));
    assert!(err("a\nb.png").contains("control characters"));
    assert!(err(&"x".repeat(5000)).contains("too long"));
}

#[test]
fn html_to_text_is_linear_in_the_number_of_scripts() {
    // 100,000 scripts in a 3 MB cell: a quadratic scan (lower-casing the rest of the cell for
    // each one) would take hours; each step here looks at what follows it once.
    let cell = "<SCRIPT>var a=1;</SCRIPT>x".repeat(100_000);
    assert_eq!(html_to_text(&cell), "x ".repeat(100_000).trim_end());
    assert_eq!(html_to_text("<p>a</p><Style>p{}</sTyLe><p>b</p>"), "a b");
}
