//! Shopify product CSV exports: handles, HTML bodies, variant prices, continuation rows.

use super::{ids, read_ok, row, s, skipped, url, write};

/// The header of a Shopify product export (2024 layout).
const HEADER: &str = "Handle,Title,Body (HTML),Vendor,Product Category,Type,Tags,Published,\
Option1 Name,Option1 Value,Option2 Name,Option2 Value,Option3 Name,Option3 Value,Variant SKU,\
Variant Grams,Variant Inventory Tracker,Variant Inventory Qty,Variant Inventory Policy,\
Variant Fulfillment Service,Variant Price,Variant Compare At Price,Variant Requires Shipping,\
Variant Taxable,Variant Barcode,Image Src,Image Position,Image Alt Text,Gift Card,SEO Title,\
SEO Description,Variant Image,Variant Weight Unit,Variant Tax Code,Cost per item,Status";

/// A Shopify row: the given cells, then empty cells up to the header's 36 columns.
fn shopify_row(cells: &[&str]) -> String {
    let mut all: Vec<String> = cells.iter().map(|c| (*c).to_owned()).collect();
    all.resize(36, String::new());
    all.join(",")
}

/// A row with only a handle, a title and an Image Src.
fn with_image(handle: &str, title: &str, image: &str) -> String {
    let mut cells = vec![handle, title];
    cells.resize(25, "");
    cells.push(image);
    shopify_row(&cells)
}

/// A small export: every kind of row a real one has.
fn export() -> String {
    let mut lines = vec![HEADER.to_owned()];
    // A product with three variants and two images: one product row, three continuation rows.
    lines.push(shopify_row(&[
        "classic-tee",
        "Classic Tee",
        "\"<p>Soft <strong>organic</strong> cotton &amp; a relaxed fit.</p>\n<ul><li>Machine \
         washable</li><li>Made in Portugal</li></ul><p>Size&nbsp;guide: &quot;true to size&quot; \
         &#8211; &#x2605;</p>\"",
        "Acme Apparel",
        "Apparel & Accessories > Clothing > Shirts & Tops",
        "T-Shirt",
        "\"cotton, summer\"",
        "true",
        "Size",
        "S",
        "",
        "",
        "",
        "",
        "TEE-S",
        "200",
        "shopify",
        "10",
        "deny",
        "manual",
        "19.00",
        "25.00",
        "true",
        "true",
        "",
        "https://cdn.shopify.com/s/files/1/0001/tee-front.jpg?v=1",
        "1",
        "Front",
        "false",
        "",
        "",
        "",
        "kg",
        "",
        "",
        "active",
    ]));
    let variant = |size: &str, sku: &str| {
        let mut cells = vec!["classic-tee"];
        cells.resize(9, "");
        cells.extend([size, "", "", "", "", sku]);
        cells.resize(20, "");
        cells.push("21.00");
        shopify_row(&cells)
    };
    lines.push(variant("M", "TEE-M"));
    lines.push(variant("L", "TEE-L"));
    let mut image_only = vec!["classic-tee"];
    image_only.resize(25, "");
    image_only.extend([
        "https://cdn.shopify.com/s/files/1/0001/tee-back.jpg?v=1",
        "2",
        "Back",
    ]);
    lines.push(shopify_row(&image_only));
    // A simple product; its Body (HTML) holds a script and a comment.
    lines.push(shopify_row(&[
        "gift-card",
        "Gift Card",
        "<script>alert(1)</script><!-- internal --><p>5 < 6 &lt;3</p>",
        "Acme",
        "",
        "Gift",
        "",
        "true",
        "Title",
        "Default Title",
        "",
        "",
        "",
        "",
        "GC",
        "",
        "",
        "",
        "",
        "",
        "50.00",
        "",
        "",
        "",
        "",
        "//cdn.shopify.com/gift.png",
    ]));
    // Not continuations: a repeated handle with a title, and an empty title after another handle.
    lines.push(with_image("gift-card", "Gift Card Again", "g2.png"));
    lines.push(with_image("classic-tee", "", "x.png"));
    lines.push(shopify_row(&["no-image", "Poster"]));
    // A draft, an archived product and one not published to the online store: never indexed.
    let status = |handle: &str, published: &str, status: &str| {
        let mut cells = vec![handle, "Secret", "", "", "", "", "", published];
        cells.resize(25, "");
        cells.push("s.png");
        cells.resize(35, "");
        cells.push(status);
        shopify_row(&cells)
    };
    lines.push(status("next-season", "true", "draft"));
    lines.push(status("old-stock", "true", "archived"));
    lines.push(status("staff-only", "FALSE", "active"));
    lines.join("\n") + "\n"
}

#[test]
fn shopify_export_works_without_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "products_export_1.csv", export());
    let catalogue = read_ok(&path);
    assert_eq!(ids(&catalogue), ["classic-tee", "gift-card"]);

    let tee = row(&catalogue, "classic-tee");
    assert_eq!(tee.row, 2);
    assert_eq!(tee.title, "Classic Tee");
    assert_eq!(
        tee.description.as_deref(),
        Some(
            "Soft organic cotton & a relaxed fit. Machine washable Made in Portugal \
             Size guide: \"true to size\" \u{2013} \u{2605}"
        )
    );
    assert_eq!(tee.price.as_deref(), Some("19.00"));
    assert_eq!(tee.link, None);
    assert_eq!(
        tee.image,
        url("https://cdn.shopify.com/s/files/1/0001/tee-front.jpg?v=1")
    );
    assert_eq!(tee.extra.get("Vendor"), Some(&s("Acme Apparel")));
    assert_eq!(tee.extra.get("Tags"), Some(&s("cotton, summer")));
    assert_eq!(tee.extra.get("Variant SKU"), Some(&s("TEE-S")));
    assert_eq!(
        tee.extra.get("Cost per item"),
        None,
        "empty cells are not kept"
    );
    for role in [
        "Handle",
        "Title",
        "Body (HTML)",
        "Variant Price",
        "Image Src",
        "Status",
        "Published",
    ] {
        assert!(
            !tee.extra.contains_key(role),
            "{role} duplicated into extra"
        );
    }

    // The body spans two lines; the product after the continuation rows starts on line 7.
    let gift = row(&catalogue, "gift-card");
    assert_eq!(gift.row, 7);
    assert_eq!(gift.description.as_deref(), Some("5 < 6 <3"));
    assert_eq!(gift.price.as_deref(), Some("50.00"));
    // Protocol-relative URLs, as older exports write them, are https.
    assert_eq!(gift.image, url("https://cdn.shopify.com/gift.png"));

    // Continuation rows are neither rows nor skipped nor counted.
    assert_eq!(
        skipped(&catalogue),
        [
            (8, "duplicate id \"gift-card\" (first seen on row 7)"),
            (9, "duplicate id \"classic-tee\" (first seen on row 2)"),
            (10, "no image (the Image Src column is empty)"),
        ]
    );
    // Unpublished products are left out on purpose, not skipped as errors.
    let excluded: Vec<(usize, &str)> = catalogue
        .excluded
        .iter()
        .map(|e| (e.row, e.reason.as_str()))
        .collect();
    assert_eq!(
        excluded,
        [
            (
                11,
                "not active (Status: draft); only active products are indexed"
            ),
            (
                12,
                "not active (Status: archived); only active products are indexed"
            ),
            (
                13,
                "not published (Published: FALSE); only published products are indexed"
            ),
        ]
    );
    assert_eq!(catalogue.total, 8);
}

#[test]
fn continuation_rule_needs_the_handle_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Same shape, but the id column is `id`: an empty title is just a missing title.
    let csv = "id,Title,Image Src\nA,Mug,a.png\nA,,a2.png\n";
    let catalogue = read_ok(&write(dir.path(), "c.csv", csv));
    assert_eq!(
        skipped(&catalogue),
        [(3, "duplicate id \"A\" (first seen on row 2)")]
    );
    assert_eq!(catalogue.total, 2);
}
