//! `build-index verify` checks a deployed site against its manifest: it accepts a fresh build
//! and names every file that is damaged, truncated or missing (and `search` refuses to rank
//! with damaged files).

mod common;

use std::path::{Path, PathBuf};

use common::{SiteDir, folder_catalogue, new_build, tempdir, verify};

/// Builds the eight emoji of the committed folder catalogue into `dir/site`.
fn built_site(dir: &Path) -> PathBuf {
    let out = dir.join("site");
    new_build(&folder_catalogue().join("emoji"), &out, &dir.join("cache"))
        .run()
        .expect(0);
    out
}

#[test]
fn verify_accepts_a_fresh_build_and_counts_its_files() {
    let tmp = tempdir();
    let out = built_site(tmp.path());
    let site = SiteDir::open(&out);
    let files = site.listed_files().len() - 1;
    // 3 encoder files, vectors (root, its one list and that list's group), item table, chunk
    // table, 1 keyword shard, and the one chunk's metadata and thumbnail pack.
    assert_eq!(files, 11);
    let run = verify(&out);
    run.expect_code(0);
    assert!(
        run.stdout
            .starts_with(&format!("ok: {files} files match manifest"))
            && run.stdout.contains(&site.manifest.build_id),
        "{}",
        run.stdout
    );
}

#[test]
fn verify_names_the_vectors_file_when_one_byte_is_flipped() {
    let tmp = tempdir();
    let out = built_site(tmp.path());
    let site = SiteDir::open(&out);
    let files = site.listed_files().len() - 1;
    let vectors = site.manifest.files.vectors.path.clone();
    let path = out.join(&vectors);
    let mut bytes = std::fs::read(&path).expect("vectors");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, &bytes).expect("write");

    let run = verify(&out);
    run.expect_code(1);
    assert!(
        run.stderr.contains(&format!(
            "bad: {vectors}: content does not match the SHA-256 the index records for it"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("1 of {files} files are missing or damaged")),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "no \"ok\": {}", run.stdout);

    // The page's loader refuses it too: `search` reads the site as the page does.
    let search = common::run([
        "search".as_ref(),
        "--site".as_ref(),
        out.as_os_str(),
        "--text".as_ref(),
        "a cat".as_ref(),
    ]);
    search.expect_code(1);
    assert!(search.stderr.contains(&vectors), "{}", search.stderr);
}

#[test]
fn verify_names_a_deleted_thumbnail_pack_and_a_truncated_metadata_chunk() {
    let tmp = tempdir();
    let out = built_site(tmp.path());
    let site = SiteDir::open(&out);
    let table = site.chunk_table();
    let thumb = table.chunks[0].pack.clone().expect("a pack").path;
    std::fs::remove_file(out.join(&thumb)).expect("delete thumbnail pack");

    let run = verify(&out);
    run.expect_code(1);
    assert!(
        run.stderr.contains(&format!("bad: {thumb}: ")),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("bad: ").count(),
        1,
        "only that file is named: {}",
        run.stderr
    );

    let chunk = table.chunks[0].metadata.clone();
    let path = out.join(&chunk.path);
    let bytes = std::fs::read(&path).expect("chunk");
    std::fs::write(&path, &bytes[..bytes.len() - 10]).expect("truncate");
    let run = verify(&out);
    run.expect_code(1);
    assert!(
        run.stderr.contains(&format!(
            "bad: {}: {} bytes, the index says {}",
            chunk.path,
            chunk.size - 10,
            chunk.size
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("bad: {thumb}: ")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("2 of 11 files are missing or damaged"),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_fails_on_a_folder_that_is_not_a_site() {
    let tmp = tempdir();
    let run = verify(tmp.path());
    run.expect_code(1);
    assert!(run.stderr.contains("manifest.json"), "{}", run.stderr);
    std::fs::write(tmp.path().join("manifest.json"), b"{\"format\": \"other\"}").expect("write");
    let run = verify(tmp.path());
    run.expect_code(1);
    assert!(
        run.stderr.contains("not a vitrine index manifest"),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_names_a_manifest_edited_after_the_build() {
    let tmp = tempdir();
    let out = built_site(tmp.path());
    let path = out.join("manifest.json");
    let text = std::fs::read_to_string(&path).expect("manifest");
    // Someone "fixes" the recorded recall by hand: every listed file is still intact.
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("json");
    json["recall"]["value"] = serde_json::json!(0.999);
    std::fs::write(&path, serde_json::to_vec_pretty(&json).expect("json")).expect("write");

    let run = verify(&out);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("bad: manifest.json: its content does not match its build id"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the manifest is damaged; 0 of"),
        "{}",
        run.stderr
    );
}

#[test]
fn verify_loads_the_index_as_the_page_does() {
    let tmp = tempdir();
    let out = built_site(tmp.path());
    // Vectors whose header holds a NaN, written with a matching hash and manifest entry (what a
    // copied or hand-made cache once published): every hash matches, but the page cannot load it.
    let mut manifest = SiteDir::open(&out).manifest;
    let mut bytes = std::fs::read(out.join(&manifest.files.vectors.path)).expect("vectors");
    // The root's int8 centre starts after its 64-byte header.
    bytes[64..68].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::remove_file(out.join(&manifest.files.vectors.path)).expect("remove");
    let file = vitrine_index::FileRef::for_content("vectors", "bin", &bytes);
    std::fs::write(out.join(&file.path), &bytes).expect("write");
    manifest.files.vectors = file;
    manifest.seal();
    std::fs::write(out.join("manifest.json"), manifest.to_json()).expect("manifest");
    let run = verify(&out);
    run.expect_code(1);
    assert!(
        run.stderr.contains("does not load") && run.stderr.contains("not finite"),
        "{}",
        run.stderr
    );
}
