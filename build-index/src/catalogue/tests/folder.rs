//! A folder of images as the catalogue.

use std::path::{Path, PathBuf};

use super::{ids, read_err, read_ok, row, write};
use crate::catalogue::{ColumnOptions, ImageRef};

/// A tiny real PNG from the test fixtures.
fn png() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/tiny-clip/ref_images/coffee_100x100.png");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn folder_rows_are_images_sorted_by_relative_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("shop");
    let png = png();
    for name in [
        "mugs/blue_mug.png",
        "mugs/Red--Mug   XL.JPG",
        "mugs.png",
        "a/deep/nested/lamp-shade.webp",
        "Zebra print.jpeg",
        "chair.tiff",
        "notes.txt",
        "image.png.bak",
        ".hidden.png",
        ".cache/thumb.png",
        "mugs/.DS_Store",
    ] {
        write(&root, name, &png);
    }
    let catalogue = read_ok(&root);
    // Byte order: upper case before lower case, and "mugs.png" before "mugs/…" ('.' < '/').
    assert_eq!(
        ids(&catalogue),
        [
            "Zebra print.jpeg",
            "a/deep/nested/lamp-shade.webp",
            "chair.tiff",
            "mugs.png",
            "mugs/Red--Mug   XL.JPG",
            "mugs/blue_mug.png",
        ]
    );
    assert_eq!(
        catalogue.rows.iter().map(|r| r.row).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert_eq!(catalogue.total, 6);
    assert!(catalogue.skipped.is_empty());

    let titles: Vec<&str> = catalogue.rows.iter().map(|r| r.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Zebra print",
            "lamp shade",
            "chair",
            "mugs",
            "Red Mug XL",
            "blue mug"
        ]
    );

    let lamp = row(&catalogue, "a/deep/nested/lamp-shade.webp");
    assert_eq!(
        lamp.image,
        ImageRef::Path(root.join("a/deep/nested/lamp-shade.webp"))
    );
    assert_eq!(
        std::fs::read(match &lamp.image {
            ImageRef::Path(path) => path.clone(),
            ImageRef::Url(url) => panic!("unexpected URL {url}"),
        })
        .expect("the image path points at the file"),
        png
    );
    assert_eq!(
        (
            lamp.description.as_deref(),
            lamp.link.as_deref(),
            lamp.price.as_deref()
        ),
        (None, None, None)
    );
    assert!(lamp.extra.is_empty());
}

#[test]
fn folder_title_falls_back_to_the_id_when_the_stem_has_no_words() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "_-_.png", png());
    let catalogue = read_ok(dir.path());
    assert_eq!(catalogue.rows[0].id, "_-_.png");
    assert_eq!(catalogue.rows[0].title, "_-_.png");
}

#[test]
fn folder_column_options_are_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "x/one.gif", png());
    let columns = ColumnOptions {
        id: Some("sku".into()),
        image: None,
        title: None,
    };
    let catalogue = crate::catalogue::read(dir.path(), &columns, &[]).expect("read");
    assert_eq!(ids(&catalogue), ["x/one.gif"]);
}

#[cfg(unix)]
#[test]
fn folder_follows_symlinks_without_looping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    write(&root, "real/a.png", png());
    std::os::unix::fs::symlink(root.join("real"), root.join("linked")).expect("symlink");
    std::os::unix::fs::symlink(&root, root.join("real/loop")).expect("symlink");
    let catalogue = read_ok(&root);
    // `linked` is the same folder as `real`: it is read once, under the name sorted first.
    assert_eq!(ids(&catalogue), ["linked/a.png"]);
}

#[test]
fn folder_without_images_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root: PathBuf = dir.path().join("photos");
    write(&root, "readme.txt", "no images here");
    write(&root, ".hidden/a.png", png());
    let message = read_err(&root, &ColumnOptions::default());
    assert!(message.contains(&root.display().to_string()), "{message}");
    assert!(message.contains("no image files"), "{message}");
    assert!(message.contains(".webp"), "{message}");
    assert!(
        message.contains("put the product images in it"),
        "{message}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn folder_file_with_a_non_utf8_name_is_skipped() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "ok.png", png());
    let bad = dir.path().join(std::ffi::OsStr::from_bytes(b"caf\xE9.png"));
    std::fs::write(&bad, png()).expect("write");
    let catalogue = read_ok(dir.path());
    assert_eq!(ids(&catalogue), ["ok.png"]);
    assert_eq!(catalogue.skipped.len(), 1);
    // Sorted by bytes: "caf\xE9.png" comes before "ok.png".
    assert_eq!(catalogue.skipped[0].row, 1);
    assert_eq!(catalogue.rows[0].row, 2);
    let reason = &catalogue.skipped[0].reason;
    assert!(
        reason.starts_with("the file name \"")
            && reason.ends_with("\" is not valid UTF-8; rename the file"),
        "{reason}"
    );
    assert_eq!(catalogue.total, 2);
}
