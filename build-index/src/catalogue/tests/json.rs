//! JSON Lines (and JSON array) catalogues.

use serde_json::json;

use super::{ids, read_err, read_ok, row, s, skipped, url, write};
use crate::catalogue::{ColumnOptions, ImageRef};

#[test]
fn jsonl_values_bad_lines_and_verbatim_titles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = [
        r#"{"id": 17, "title": "Teekanne 茶壶 Чайник", "image": "pics/17.jpg", "price": 12.5, "tags": ["kitchen", "tea"], "stock": 3, "dims": {"h": 20}}"#,
        "",
        r#"{"id": "x-1", "title": "<img src=x onerror=alert(1)>", "image_url": "https://cdn.example/x.png", "on_sale": true, "note": null, "blank": "  "}"#,
        "   ",
        r#"{"id": "broken", "image": "b.png""#,
        r#"["not", "an", "object"]"#,
        "{\"ID\": \"upper\", \"Image\": [\"first.png\", \"second.png\"], \"Name\": \"Ελληνικά\"}\r",
        r#"{"id": "no-title", "image": "n.png", "title": ""}"#,
    ];
    let path = write(dir.path(), "catalogue.jsonl", lines.join("\n"));
    let catalogue = read_ok(&path);
    assert_eq!(ids(&catalogue), ["17", "x-1", "upper", "no-title"]);

    let teapot = row(&catalogue, "17");
    assert_eq!(teapot.row, 1);
    assert_eq!(teapot.title, "Teekanne 茶壶 Чайник");
    assert_eq!(teapot.price.as_deref(), Some("12.5"));
    assert_eq!(teapot.image, ImageRef::Path(dir.path().join("pics/17.jpg")));
    assert_eq!(teapot.extra.get("tags"), Some(&json!(["kitchen", "tea"])));
    assert_eq!(teapot.extra.get("stock"), Some(&json!(3)));
    assert_eq!(teapot.extra.get("dims"), Some(&json!({"h": 20})));
    assert_eq!(teapot.extra.len(), 3);

    // Markup in a title is text; escaping it is the page's job.
    let x = row(&catalogue, "x-1");
    assert_eq!(x.row, 3);
    assert_eq!(x.title, "<img src=x onerror=alert(1)>");
    assert_eq!(x.image, url("https://cdn.example/x.png"));
    assert_eq!(x.extra.get("on_sale"), Some(&json!(true)));
    assert!(
        !x.extra.contains_key("note") && !x.extra.contains_key("blank"),
        "{:?}",
        x.extra
    );

    // Keys are recognised ignoring case; a list of images gives its first; CRLF is fine.
    let upper = row(&catalogue, "upper");
    assert_eq!(upper.row, 7);
    assert_eq!(upper.title, "Ελληνικά");
    assert_eq!(upper.image, ImageRef::Path(dir.path().join("first.png")));
    assert_eq!(row(&catalogue, "no-title").title, "no-title");

    let reasons = skipped(&catalogue);
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(reasons[0].0, 5);
    assert!(
        reasons[0]
            .1
            .starts_with("the line is not a JSON object (EOF while parsing"),
        "{}",
        reasons[0].1
    );
    assert!(
        reasons[0]
            .1
            .ends_with("each line must hold one whole object"),
        "{}",
        reasons[0].1
    );
    assert_eq!(reasons[1].0, 6);
    assert!(
        reasons[1]
            .1
            .starts_with("the line is a list, not a JSON object"),
        "{}",
        reasons[1].1
    );
    assert_eq!(catalogue.total, 6);
}

#[test]
fn non_scalar_fields_stay_metadata() {
    let dir = tempfile::tempdir().expect("tempdir");
    let line = r#"{"sku": "p", "photo": "p.png", "title": ["A", "B"], "price": {"amount": 5, "currency": "EUR"}, "link": 42}"#;
    let catalogue = read_ok(&write(dir.path(), "c.ndjson", line));
    let p = row(&catalogue, "p");
    assert_eq!(p.title, "p");
    assert_eq!(p.price, None);
    assert_eq!(p.link.as_deref(), Some("42"));
    assert_eq!(p.extra.get("title"), Some(&json!(["A", "B"])));
    assert_eq!(
        p.extra.get("price"),
        Some(&json!({"amount": 5, "currency": "EUR"}))
    );
    assert!(!p.extra.contains_key("link"));
}

#[test]
fn json_extension_and_unknown_extension_are_detected_by_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = "\n  {\"id\": \"a\", \"file\": \"a.png\"}\n{\"id\": \"b\", \"file\": \"b.png\"}\n";
    for name in ["products.json", "products.export", "products"] {
        let catalogue = read_ok(&write(dir.path(), name, lines));
        assert_eq!(ids(&catalogue), ["a", "b"], "{name}");
        assert_eq!(catalogue.rows[1].row, 3, "{name}");
    }
}

#[test]
fn json_array_rows_are_numbered_by_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let array = r#"[
        {"id": "a", "image": "a.png", "name": "Alpha"},
        "oops",
        {"id": "b", "image": "ftp://files.example/b.png"}
    ]"#;
    let catalogue = read_ok(&write(dir.path(), "all.json", array));
    assert_eq!(ids(&catalogue), ["a"]);
    assert_eq!(row(&catalogue, "a").title, "Alpha");
    assert_eq!(
        skipped(&catalogue),
        [
            (2, "array item is a string, not a JSON object"),
            (
                3,
                "image \"ftp://files.example/b.png\" uses the unsupported ftp: scheme; use an \
                 http:// or https:// URL or a file path"
            ),
        ]
    );
    assert_eq!(catalogue.skipped[1].id.as_deref(), Some("b"));

    let message = read_err(
        &write(dir.path(), "bad.json", "[{\"id\": 1"),
        &ColumnOptions::default(),
    );
    assert!(
        message.starts_with(&format!(
            "{}: not a valid JSON array",
            dir.path().join("bad.json").display()
        )),
        "{message}"
    );
    assert!(message.contains("fix the JSON"), "{message}");
}

#[test]
fn jsonl_with_no_object_at_all_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "pretty.json",
        "{\n  \"id\": \"a\",\n  \"image\": \"a.png\"\n}\n",
    );
    let message = read_err(&path, &ColumnOptions::default());
    assert!(
        message.starts_with(&format!(
            "{}: line 1: the line is not a JSON object",
            path.display()
        )),
        "{message}"
    );
    assert!(
        message.contains("each line must hold one whole object"),
        "{message}"
    );
}

#[test]
fn jsonl_missing_keys_are_errors_that_say_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "c.jsonl", "{\"id\": \"a\", \"title\": \"A\"}\n");
    let message = read_err(&path, &ColumnOptions::default());
    assert_eq!(
        message,
        format!(
            "{}: no image key (keys: id, title); name it with --image-column",
            path.display()
        )
    );
    let _ = s;
}

#[test]
fn overlong_ids_are_skipped_and_overlong_titles_prices_and_links_are_shortened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long_id = "x".repeat(200_000);
    let long_title = "Teapot ".repeat(100);
    let long_link = format!("https://shop.example/{}", "p".repeat(3000));
    let lines = [
        json!({"id": long_id, "image": "a.png"}).to_string(),
        json!({"id": "ok", "image": "b.png", "title": long_title, "price": "9".repeat(100), "link": long_link})
            .to_string(),
    ];
    let catalogue = read_ok(&write(dir.path(), "c.jsonl", lines.join("\n")));
    assert_eq!(ids(&catalogue), ["ok"]);
    let skip = &catalogue.skipped[0];
    assert!(
        skip.reason.contains("200000 characters") && skip.reason.contains("256"),
        "{}",
        skip.reason
    );
    assert!(skip.id.as_deref().is_some_and(|id| id.chars().count() < 50));
    let ok = row(&catalogue, "ok");
    assert_eq!(ok.title.chars().count(), 300);
    assert!(ok.title.ends_with('…'));
    assert_eq!(ok.price.as_deref().map(|p| p.chars().count()), Some(64));
    assert_eq!(ok.link, None);
    let note = &catalogue.shortened[0];
    assert_eq!((note.row, note.id.as_deref()), (2, Some("ok")));
    assert!(
        note.reason.contains("title shortened")
            && note.reason.contains("price shortened")
            && note.reason.contains("link dropped"),
        "{}",
        note.reason
    );
}
