//! Tests of `--embeddings`: matching rows, and refusing files that do not fit.

use super::*;

fn row(n: usize, id: &str, image: ImageRef) -> Row {
    Row {
        row: n,
        id: id.into(),
        title: id.into(),
        description: None,
        link: None,
        price: None,
        image,
        extra: Default::default(),
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn rows_are_matched_by_id_path_or_url_and_strangers_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    write(base, "img/a.png", b"a");
    let rows = [
        row(2, "A", ImageRef::Path(base.join("img/a.png"))),
        row(3, "B", ImageRef::Url("https://x.example/b.jpg".into())),
        row(4, "C", ImageRef::Url("https://x.example/b.jpg".into())),
        row(5, "D", ImageRef::Path(base.join("d.png"))),
    ];
    let npy = write(
        base,
        "e.npy",
        &vitrine_testkit::npy_f32(4, 2, &[1., 1., 2., 2., 3., 3., 4., 4.]),
    );
    let abs = base.join("img/./a.png").display().to_string();
    let meta = format!(
        "{{\"image_path\": {abs:?}}}\n{{\"url\": \"https://x.example/b.jpg\"}}\n\n\
         {{\"id\": \"D\", \"image_path\": \"elsewhere.png\"}}\n{{\"id\": 77}}\n"
    );
    write(base, "e.jsonl", meta.as_bytes());
    let got = read(&[npy], &[], "m", 2, &rows, base).unwrap();
    let mut by_row: Vec<_> = got.by_row.into_iter().collect();
    by_row.sort_by_key(|(r, _)| *r);
    assert_eq!(
        by_row,
        [
            (2, vec![1., 1.]),
            (3, vec![2., 2.]),
            (4, vec![2., 2.]),
            (5, vec![3., 3.])
        ]
    );
    assert!(got.notes[1].starts_with("1 imported embeddings name no catalogue row"));
    // A CSV gives the same, with a relative path.
    let csv = write(base, "m.csv", b"image_path,other\nimg/a.png,x\n");
    let npy = write(base, "one.npy", &vitrine_testkit::npy_f32(1, 2, &[9., 9.]));
    let got = read(&[npy], &[csv], "m", 2, &rows, base).unwrap();
    assert_eq!(got.by_row.get(&2), Some(&vec![9., 9.]));
}

#[test]
fn mismatched_files_are_refused_naming_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let rows = [row(2, "A", ImageRef::Path(base.join("a.png")))];
    let out = write(
        base,
        "out/img_emb/img_emb_0.npy",
        &vitrine_testkit::npy_f32(2, 2, &[0.; 4]),
    );
    write(base, "out/metadata/metadata_0.jsonl", b"{\"id\": \"A\"}\n");
    let e = |r: Result<Imported>| format!("{:#}", r.err().unwrap());
    let folder = base.join("out");
    let text = e(read(
        std::slice::from_ref(&folder),
        &[],
        "m",
        2,
        &rows,
        base,
    ));
    assert!(
        text.contains("img_emb_0.npy holds 2 rows, ")
            && text.contains("metadata_0.jsonl 1: they must come from the same run"),
        "{text}"
    );
    write(
        base,
        "out/metadata/metadata_0.jsonl",
        b"{\"id\": \"A\"}\n{\"id\": \"B\"}\n",
    );
    let text = e(read(
        std::slice::from_ref(&folder),
        &[],
        "tiny",
        3,
        &rows,
        base,
    ));
    assert!(
        text.contains("img_emb_0.npy: width 2, the model --model tiny embeds 3"),
        "{text}"
    );
    write(
        base,
        "out/img_emb/img_emb_0.npy",
        &vitrine_testkit::npy_f32(2, 2, &[0., 0., f32::NAN, 0.]),
    );
    let text = e(read(
        std::slice::from_ref(&folder),
        &[],
        "m",
        2,
        &rows,
        base,
    ));
    assert!(
        text.contains("img_emb_0.npy: row 1 (counted from 0) holds NaN"),
        "{text}"
    );
    std::fs::remove_file(base.join("out/metadata/metadata_0.jsonl")).unwrap();
    write(base, "out/metadata/metadata_0.parquet", b"PAR1");
    let text = e(read(&[folder], &[], "m", 2, &rows, base));
    assert!(
        text.contains("metadata_0.parquet: Parquet metadata is not read"),
        "{text}"
    );
    let text = e(read(std::slice::from_ref(&out), &[], "m", 2, &rows, base));
    assert!(text.contains("no row metadata found"), "{text}");
    let text = e(read(&[base.join("nothing")], &[], "m", 2, &rows, base));
    assert!(text.contains("neither an .npy file nor a folder"), "{text}");
    let meta = write(
        base,
        "bad.jsonl",
        b"{\"caption\": \"x\"}\n{\"id\": \"A\"}\n",
    );
    let text = e(read(&[out], &[meta], "m", 2, &rows, base));
    assert!(
        text.contains("bad.jsonl: a row has none of the columns"),
        "{text}"
    );
}
