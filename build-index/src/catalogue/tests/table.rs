//! CSV and TSV catalogues: Merchant Center feeds, spreadsheets, encodings, column options.

use super::{ids, read_ok, row, s, skipped, url, write};
use crate::catalogue::{ColumnOptions, ImageRef, read};

const MERCHANT_HEADER: &str =
    "id\ttitle\tdescription\tlink\timage_link\tprice\tbrand\tproduct_type\tgoogle_product_category";

#[test]
fn merchant_center_tsv_works_without_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let feed = format!(
        "{MERCHANT_HEADER}\n\
         SKU-001\tStoneware Mug, Blue\tHand-glazed 350 ml mug.\thttps://shop.example/p/mug\t\
         https://cdn.example/mug.jpg\t12.50 EUR\tAcme\tHome > Kitchen > Mugs\t2169\n\
         SKU-002\tLinen Apron\t\thttps://shop.example/p/apron\t\
         https://cdn.example/apron.jpg\t30.00 EUR\t\tHome > Textiles\t\n"
    );
    let path = write(dir.path(), "products.tsv", feed);
    let catalogue = read_ok(&path);
    assert_eq!(ids(&catalogue), ["SKU-001", "SKU-002"]);
    assert_eq!(catalogue.total, 2);

    let mug = row(&catalogue, "SKU-001");
    assert_eq!(mug.row, 2);
    assert_eq!(mug.title, "Stoneware Mug, Blue");
    assert_eq!(mug.description.as_deref(), Some("Hand-glazed 350 ml mug."));
    assert_eq!(mug.link.as_deref(), Some("https://shop.example/p/mug"));
    assert_eq!(mug.price.as_deref(), Some("12.50 EUR"));
    assert_eq!(mug.image, url("https://cdn.example/mug.jpg"));
    let extra: Vec<(&str, &serde_json::Value)> =
        mug.extra.iter().map(|(k, v)| (k.as_str(), v)).collect();
    assert_eq!(
        extra,
        [
            ("brand", &s("Acme")),
            ("google_product_category", &s("2169")),
            ("product_type", &s("Home > Kitchen > Mugs")),
        ]
    );

    // Empty cells are neither fields nor metadata.
    let apron = row(&catalogue, "SKU-002");
    assert_eq!(apron.row, 3);
    assert_eq!(apron.description, None);
    assert_eq!(apron.extra.keys().collect::<Vec<_>>(), ["product_type"]);
}

#[test]
fn merchant_center_txt_is_tab_separated_and_csv_with_tabs_is_sniffed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let feed =
        format!("{MERCHANT_HEADER}\nA1\tLamp, brass\t\t\thttps://cdn.example/a1.jpg\t\t\t\t\n");
    for name in ["feed.txt", "feed.csv", "feed"] {
        let catalogue = read_ok(&write(dir.path(), name, &feed));
        assert_eq!(ids(&catalogue), ["A1"], "{name}");
        assert_eq!(catalogue.rows[0].title, "Lamp, brass", "{name}");
    }
    // A comma-separated .txt is read as CSV, and semicolons alone (European spreadsheets) too.
    let comma = read_ok(&write(dir.path(), "comma.txt", "id,image\nB2,b2.png\n"));
    assert_eq!(ids(&comma), ["B2"]);
    let semicolon = read_ok(&write(
        dir.path(),
        "semi.csv",
        "id;image;price\nC3;c3.png;4,50\n",
    ));
    assert_eq!(semicolon.rows[0].price.as_deref(), Some("4,50"));
}

#[test]
fn bom_quoted_newlines_short_rows_and_row_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = "\u{FEFF}ID,Name,Image,Colour\r\n\
               1,\"Mug\nwith \"\"handle\"\"\",img/1.png,blue\r\n\
               \r\n\
               2,Plate,img/2.png\r\n\
               ,,,\r\n\
               3,Bowl,img/3.png,red,surplus\r\n";
    let path = write(dir.path(), "catalogue.csv", csv);
    let catalogue = read_ok(&path);
    assert_eq!(ids(&catalogue), ["1", "2", "3"]);
    // The BOM is not part of the first header name, so `ID` was recognised.
    let mug = row(&catalogue, "1");
    assert_eq!(mug.row, 2);
    // Titles are one line: the quoted newline becomes a space.
    assert_eq!(mug.title, "Mug with \"handle\"");
    assert_eq!(mug.extra.get("Colour"), Some(&s("blue")));
    // The record after a two-line record, a blank line and a blank row.
    assert_eq!(row(&catalogue, "2").row, 5);
    assert!(row(&catalogue, "2").extra.is_empty());
    assert_eq!(row(&catalogue, "3").row, 7);
    assert_eq!(
        row(&catalogue, "3").extra.get("column 5"),
        Some(&s("surplus"))
    );
    assert_eq!(catalogue.total, 3);
}

#[test]
fn invalid_utf8_row_is_skipped_and_the_others_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut csv = b"sku,title,image_url\nA,Caf".to_vec();
    csv.extend_from_slice(b"\xE9 cup,a.png\nB,Tea cup,b.png\n");
    let catalogue = read_ok(&write(dir.path(), "latin1.csv", csv));
    assert_eq!(ids(&catalogue), ["B"]);
    assert_eq!(
        skipped(&catalogue),
        [(
            2,
            "the title cell is not valid UTF-8 text; save the catalogue as UTF-8"
        )]
    );
    assert_eq!(catalogue.skipped[0].id.as_deref(), Some("A"));
    assert_eq!(catalogue.total, 2);
}

#[test]
fn relative_image_paths_are_joined_to_the_catalogue_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("export");
    let csv = "id,image\n\
               rel,photos/a b.png\n\
               abs,/srv/images/b.jpg\n\
               file,file:///srv/my%20images/c.png\n\
               localhost,file://localhost/srv/d.png\n\
               web,HTTPS://cdn.example/some image.jpg\n";
    let catalogue = read_ok(&write(&folder, "cat.csv", csv));
    assert_eq!(
        row(&catalogue, "rel").image,
        ImageRef::Path(folder.join("photos/a b.png"))
    );
    assert_eq!(
        row(&catalogue, "abs").image,
        ImageRef::Path("/srv/images/b.jpg".into())
    );
    assert_eq!(
        row(&catalogue, "file").image,
        ImageRef::Path("/srv/my images/c.png".into())
    );
    assert_eq!(
        row(&catalogue, "localhost").image,
        ImageRef::Path("/srv/d.png".into())
    );
    assert_eq!(
        row(&catalogue, "web").image,
        url("https://cdn.example/some%20image.jpg")
    );
}

#[test]
fn column_options_override_recognition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = "id,Article No,Big Picture,image,Label,title\n\
               1,X-1,x1.jpg,thumb1.jpg,Chair,internal name\n";
    let path = write(dir.path(), "c.csv", csv);
    let columns = ColumnOptions {
        // Matched ignoring case and surrounding spaces.
        id: Some(" article no ".into()),
        image: Some("Big Picture".into()),
        title: Some("LABEL".into()),
    };
    let catalogue = read(&path, &columns, &[]).expect("read");
    let chair = row(&catalogue, "X-1");
    assert_eq!(chair.title, "Chair");
    assert_eq!(chair.image, ImageRef::Path(dir.path().join("x1.jpg")));
    // Recognisable columns that lost their role to an option are plain metadata.
    let keys: Vec<&str> = chair.extra.keys().map(String::as_str).collect();
    assert_eq!(keys, ["id", "image", "title"]);
    assert_eq!(chair.extra.get("image"), Some(&s("thumb1.jpg")));
}

#[test]
fn recognition_priority_and_sale_price_fallback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = "product_name,item_id,photo,sale_price,product_url,body_html\n\
               Desk,D1,d.png,99,https://s.example/d,<p>Oak &amp; steel</p>\n";
    let catalogue = read_ok(&write(dir.path(), "c.csv", csv));
    let desk = row(&catalogue, "D1");
    assert_eq!(desk.title, "Desk");
    assert_eq!(desk.price.as_deref(), Some("99"));
    assert_eq!(desk.link.as_deref(), Some("https://s.example/d"));
    assert_eq!(desk.description.as_deref(), Some("Oak & steel"));
    assert!(desk.extra.is_empty(), "{:?}", desk.extra);

    // With both, `price` wins and `sale_price` is metadata; `image_link` beats `image`.
    let csv = "sale_price,price,image,image_link,sku,id\n5,7,a.png,b.png,S,I\n";
    let catalogue = read_ok(&write(dir.path(), "d.csv", csv));
    let item = row(&catalogue, "I");
    assert_eq!(item.price.as_deref(), Some("7"));
    assert_eq!(item.image, ImageRef::Path(dir.path().join("b.png")));
    let keys: Vec<&str> = item.extra.keys().map(String::as_str).collect();
    assert_eq!(keys, ["image", "sale_price", "sku"]);
}
