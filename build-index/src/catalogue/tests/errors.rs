//! Row-level skip reasons, and the errors for catalogues with nothing usable.

use super::{ids, read_err, read_ok, skipped, write};
use crate::catalogue::ColumnOptions;

#[test]
fn each_row_problem_is_skipped_with_a_reason_and_the_rest_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = "id,title,image_link\n\
               a,First,https://cdn.example/a.jpg\n\
               ,No id,https://cdn.example/x.jpg\n\
               \u{20}\u{20},Blank id,https://cdn.example/y.jpg\n\
               a,Again,https://cdn.example/a2.jpg\n\
               b,No image,\n\
               c,FTP,ftp://files.example/c.jpg\n\
               d,Inline,data:image/png;base64,iVBORw0KGgo=\n\
               b,Second try,https://cdn.example/b.jpg\n\
               e,Tab,\"e\t.png\"\n";
    let catalogue = read_ok(&write(dir.path(), "feed.csv", csv));
    // "b" was skipped for its image, so its second row is not a duplicate.
    assert_eq!(ids(&catalogue), ["a", "b"]);
    assert_eq!(
        skipped(&catalogue),
        [
            (3, "no id (the id column is empty)"),
            (4, "no id (the id column is empty)"),
            (5, "duplicate id \"a\" (first seen on row 2)"),
            (6, "no image (the image_link column is empty)"),
            (
                7,
                "image \"ftp://files.example/c.jpg\" uses the unsupported ftp: scheme; use an \
                 http:// or https:// URL or a file path"
            ),
            (
                8,
                "image is a data: URI, which is not supported; save it to a file or use an \
                 http:// or https:// URL or a file path"
            ),
            (
                10,
                "image \"e\\t.png\" contains control characters (a line break or tab?), so it \
                 is not a path or URL"
            ),
        ]
    );
    let skipped_ids: Vec<Option<&str>> =
        catalogue.skipped.iter().map(|s| s.id.as_deref()).collect();
    assert_eq!(
        skipped_ids,
        [
            None,
            None,
            Some("a"),
            Some("b"),
            Some("c"),
            Some("d"),
            Some("e")
        ]
    );
    assert_eq!(catalogue.total, 9);
    assert_eq!(
        catalogue.total,
        catalogue.rows.len() + catalogue.skipped.len()
    );
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nope.csv");
    let message = read_err(&path, &ColumnOptions::default());
    assert_eq!(
        message,
        format!(
            "{}: no such file or folder; check the catalogue path",
            path.display()
        )
    );
}

#[test]
fn empty_and_headerless_files_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = write(dir.path(), "empty.csv", "\u{FEFF}\n  \n");
    let message = read_err(&empty, &ColumnOptions::default());
    assert!(
        message.starts_with(&format!("{}: the file is empty; export", empty.display())),
        "{message}"
    );

    let no_header = write(dir.path(), "commas.csv", ",,,\na,b,c\n");
    let message = read_err(&no_header, &ColumnOptions::default());
    assert!(
        message.starts_with(&format!("{}: no header line;", no_header.display())),
        "{message}"
    );
    assert!(
        message.contains("the first line must name the columns"),
        "{message}"
    );

    let header_only = write(dir.path(), "header.csv", "id,image\n\n,\n");
    let message = read_err(&header_only, &ColumnOptions::default());
    assert!(
        message.starts_with(&format!(
            "{}: the header is there but no product rows",
            header_only.display()
        )),
        "{message}"
    );
}

#[test]
fn missing_image_or_id_column_is_an_error_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "catalogue.csv", "a,b,c\n1,2,3\n");
    assert_eq!(
        read_err(&path, &ColumnOptions::default()),
        format!(
            "{}: no image column (columns: a, b, c); name it with --image-column",
            path.display()
        )
    );
    let path = write(dir.path(), "noid.tsv", "Name\tPicture\nMug\tm.png\n");
    assert_eq!(
        read_err(&path, &ColumnOptions::default()),
        format!(
            "{}: no id column (columns: Name, Picture); name it with --id-column",
            path.display()
        )
    );
    // With --id-column, the same file works.
    let columns = ColumnOptions {
        id: Some("name".into()),
        ..ColumnOptions::default()
    };
    let catalogue = crate::catalogue::read(&path, &columns, &[]).expect("read");
    assert_eq!(ids(&catalogue), ["Mug"]);
}

#[test]
fn a_named_column_that_does_not_exist_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "c.csv", "id,image,title\n1,a.png,A\n");
    for (columns, flag, wanted) in [
        (
            ColumnOptions {
                id: Some("ean".into()),
                ..Default::default()
            },
            "--id-column",
            "ean",
        ),
        (
            ColumnOptions {
                image: Some("photo".into()),
                ..Default::default()
            },
            "--image-column",
            "photo",
        ),
        (
            ColumnOptions {
                title: Some("heading".into()),
                ..Default::default()
            },
            "--title-column",
            "heading",
        ),
    ] {
        assert_eq!(
            read_err(&path, &columns),
            format!(
                "{}: no column named \"{wanted}\" (given with {flag}; columns: id, image, title); \
                 check the spelling",
                path.display()
            )
        );
    }
}

#[test]
fn long_column_lists_are_cut_short() {
    let dir = tempfile::tempdir().expect("tempdir");
    let header: Vec<String> = (1..=40).map(|i| format!("c{i}")).collect();
    let path = write(dir.path(), "wide.csv", format!("{}\n", header.join(",")));
    let message = read_err(&path, &ColumnOptions::default());
    assert!(
        message.contains("c29, c30, and 10 more); name it with --image-column"),
        "{message}"
    );
}

#[test]
fn images_spreadsheets_and_binary_files_are_errors_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "photo.JPG",
            "this is an image, not a catalogue; give the folder holding the images",
        ),
        (
            "products.xlsx",
            "spreadsheet files cannot be read directly; export the sheet as CSV",
        ),
        ("dump.bin", "this is not a text file"),
    ];
    for (name, expected) in cases {
        let path = write(dir.path(), name, b"PK\x03\x04\x00\x00binary");
        let message = read_err(&path, &ColumnOptions::default());
        assert!(
            message.starts_with(&format!("{}: {expected}", path.display())),
            "{message}"
        );
    }
}

#[test]
fn utf16_text_from_excel_is_decoded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "id\ttitle\timage_link\r\nK1\tKäse ☕\thttps://cdn.example/k.jpg\r\n";
    let little: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let big: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    for (name, bytes) in [("le.txt", little), ("be.txt", big)] {
        let catalogue = read_ok(&write(dir.path(), name, bytes));
        assert_eq!(ids(&catalogue), ["K1"], "{name}");
        assert_eq!(catalogue.rows[0].title, "Käse ☕", "{name}");
        assert_eq!(catalogue.rows[0].row, 2, "{name}");
    }
    let damaged = write(dir.path(), "odd.txt", [0xFF, 0xFE, b'i', 0, b'd']);
    let message = read_err(&damaged, &ColumnOptions::default());
    assert!(
        message.ends_with("the UTF-16 text is damaged; save the catalogue as UTF-8"),
        "{message}"
    );
}
