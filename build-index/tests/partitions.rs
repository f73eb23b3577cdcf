//! The partitioned index through `build-index build`: probe counts are measured and recorded,
//! probing it gives the answers scanning every list gives, the gate fails a build that cannot
//! reach `--min-recall` within `--max-probes`, a rebuild after a small change keeps the
//! centroids, their groups, every list file and every thumbnail pack (a changed item joins a new
//! list), and a rebuild replaces a site whose root and chunk table an older build-index wrote.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{SiteDir, new_build, search_output, tempdir};
use vitrine_index::lists::Root;

fn feed() -> std::path::PathBuf {
    common::catalogues().join("merchant-center.tsv")
}

fn root(out: &Path) -> Root {
    let site = SiteDir::open(out);
    Root::from_bytes(&site.read(&site.manifest.files.vectors.path)).expect("root")
}

/// The names of the list files, then of the group files.
fn file_names(out: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let r = root(out);
    let names = |range: std::ops::Range<usize>| range.map(|j| r.file(j).path).collect();
    (names(0..r.lists()), names(r.lists()..r.file_count()))
}

/// The names of the thumbnail packs, then of the metadata chunks.
fn chunk_names(out: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let table = SiteDir::open(out).chunk_table();
    let names =
        |files: Vec<&vitrine_index::FileRef>| files.iter().map(|f| f.path.clone()).collect();
    (
        names(table.packs().collect()),
        names(table.metadata_files().collect()),
    )
}

fn centroids(out: &Path) -> vitrine_index::partition::Centroids {
    let (site, r) = (SiteDir::open(out), root(out));
    let groups: Vec<Vec<u8>> = (r.lists()..r.file_count())
        .map(|j| site.read(&r.file(j).path))
        .collect();
    r.centroids(&groups)
        .expect("the group files hold the centroids")
}

#[test]
fn a_partitioned_build_records_its_measured_probe_count_and_loads_as_the_page_does() {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    let report = new_build(&feed(), &out, &tmp.path().join("cache"))
        .args(["--partitions", "4", "--max-probes", "4"])
        .run()
        .expect(0);
    let site = SiteDir::assert_complete(&common::cli(), &out);
    let p = &site.manifest.partition;
    // The report records what the manifest does.
    assert_eq!(report.partition.as_ref(), Some(p));
    assert_eq!(p.lists, 4);
    assert!((1..=4).contains(&p.image_probes), "{p:?}");
    assert!((1..=4).contains(&p.text_probes), "{p:?}");
    assert!(
        p.image_recall >= p.min_recall && p.text_recall >= p.min_recall,
        "{p:?}"
    );
    assert!(p.image_queries > 0 && p.text_queries > 0, "{p:?}");
    // The lists are described by the root, not the manifest, and hold every item.
    assert!(site.manifest.files.lists.is_empty());
    let r = root(&out);
    let probes = r.probes();
    assert_eq!(
        (r.lists(), probes.image, probes.text),
        (4, p.image_probes, p.text_probes)
    );
    // The gaps, rounded in the manifest to 4 decimals.
    let near = |root: f32, manifest: f64| (f64::from(root) - manifest).abs() < 1e-4;
    assert!(near(probes.image_gap, p.image_gap) && near(probes.text_gap, p.text_gap));
    // Four lists fall into √4 = 2 groups; a query ranks the lists of the groups it probes.
    assert_eq!(
        (r.groups(), probes.image_groups, probes.text_groups),
        (2, p.image_group_probes, p.text_group_probes)
    );
    assert_eq!(p.groups, 2);
    assert!((1..=2).contains(&p.image_group_probes) && (1..=2).contains(&p.text_group_probes));
    assert_eq!(r.count(), site.manifest.count);
    // "More like this" puts the item first; the CLI loads and probes the lists as the page does.
    let first = &site.items()[0].id;
    let like = search_output(&out, &["--like", first]);
    assert_eq!(like.ids().first(), Some(first));
}

#[test]
fn one_list_is_the_default_for_a_small_catalogue_and_is_part_of_the_first_download() {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    new_build(&feed(), &out, &tmp.path().join("cache"))
        .run()
        .expect(0);
    let site = SiteDir::open(&out);
    assert_eq!(
        (
            site.manifest.partition.lists,
            site.manifest.partition.image_probes,
            site.manifest.partition.text_probes
        ),
        (1, 1, 1)
    );
    // The list and its group (one centroid) come with the first download.
    let names: Vec<String> = site
        .manifest
        .files
        .lists
        .iter()
        .map(|f| f.path.clone())
        .collect();
    assert_eq!(
        names,
        root(&out)
            .files()
            .into_iter()
            .map(|f| f.path)
            .collect::<Vec<_>>()
    );
    assert!(names[0].starts_with("lists/list.") && names[1].starts_with("lists/group."));
    // Kept offline with the rest of what search needs.
    let offline = site
        .manifest
        .files
        .offline(&site.chunk_table(), Some(&root(&out)));
    assert!(names.iter().all(|n| offline.core.contains(n)));
    assert!(offline.on_demand.is_empty());
}

#[test]
fn the_probe_gate_fails_the_build_when_max_probes_cannot_reach_the_target() {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    // One item per list: probing one list finds none of an image's other neighbours.
    let built = new_build(&feed(), &out, &tmp.path().join("cache"))
        .args(["--partitions", "36", "--max-probes", "1"])
        .run();
    built.run.expect_code(1);
    let err = &built.run.stderr;
    assert!(
        err.contains("probing 1 of")
            && err.contains("--max-probes")
            && err.contains("nothing was written"),
        "{err}"
    );
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn a_rebuild_after_a_small_change_keeps_every_list_file_and_pack_and_a_changed_item_joins_a_new_list()
 {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    let cache = tmp.path().join("cache");
    let text = std::fs::read_to_string(feed()).expect("feed");
    let dir = feed().parent().expect("folder").to_path_buf();
    let write = |name: &str, body: &str| {
        // Beside the committed feed's images, so relative image paths still resolve.
        let p = tmp.path().join(name);
        std::fs::write(
            &p,
            body.replace("\tfolder/", &format!("\t{}/folder/", dir.display())),
        )
        .expect("write");
        p
    };
    let before = write("before.tsv", &text);
    new_build(&before, &out, &cache)
        .args(["--partitions", "4", "--allow-outside-paths"])
        .run()
        .expect(0);
    let (root_a, (lists_a, groups_a)) = (root(&out), file_names(&out));
    let (packs_a, metadata_a) = chunk_names(&out);
    let centroids_a = centroids(&out);
    // One row of 36 loses its line: every list file stays; the root skips the row.
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(5);
    let rebuild = |name: &str, lines: &[String]| {
        let after = write(name, &(lines.join("\n") + "\n"));
        let rebuilt = new_build(&after, &out, &cache)
            .args(["--partitions", "4", "--allow-outside-paths"])
            .verbose()
            .run();
        rebuilt.run.expect_code(0);
        SiteDir::assert_complete(&common::cli(), &out);
        rebuilt.run.stderr
    };
    let mut lines: Vec<String> = lines.into_iter().map(String::from).collect();
    let stderr = rebuild("after.tsv", &lines);
    assert!(
        stderr.contains("kept 4 of the previous build's 4 list files"),
        "{stderr}"
    );
    let root_b = root(&out);
    assert_eq!(centroids(&out), centroids_a, "the centroids are kept");
    assert_eq!(
        root_b.quantizer(),
        root_a.quantizer(),
        "the int8 scale is kept"
    );
    assert_eq!((root_b.count(), root_b.removed()), (35, 1));
    let (lists_b, groups_b) = file_names(&out);
    assert_eq!(lists_a, lists_b, "no list file renamed");
    assert_eq!(groups_a, groups_b, "kept centroids keep their groups");
    // The departed item's chunk keeps its pack (its thumbnail left in it); only that chunk's
    // metadata is new.
    assert!(
        stderr.contains(&format!(
            "thumbnails: kept {0} of the previous build's {0} packs; 0 new",
            packs_a.len()
        )),
        "{stderr}"
    );
    let (packs_b, metadata_b) = chunk_names(&out);
    assert_eq!(packs_a, packs_b, "no pack renamed");
    assert_eq!(metadata_b.difference(&metadata_a).count(), 1);
    assert_eq!(metadata_b.len(), metadata_a.len());
    // Then an item's image changes (it shows the next row's picture): its old row is skipped too
    // and it joins a new list; every other list file stays.
    let image = |line: &str| line.split('\t').nth(4).expect("image_link").to_string();
    let next = image(&lines[8]);
    lines[7] = lines[7].replacen(&image(&lines[7]), &next, 1);
    let stderr = rebuild("changed.tsv", &lines);
    assert!(stderr.contains("form 1 new lists"), "{stderr}");
    let root_c = root(&out);
    assert_eq!(
        (root_c.lists(), root_c.count(), root_c.removed()),
        (5, 35, 2)
    );
    let (lists_c, groups_c) = file_names(&out);
    assert!(lists_c.is_superset(&lists_b), "{lists_b:?} → {lists_c:?}");
    let (packs_c, _) = chunk_names(&out);
    assert!(packs_c.is_superset(&packs_b), "{packs_b:?} → {packs_c:?}");
    assert_eq!(packs_c.len(), packs_b.len() + 1, "the new list's pack");
    assert!(
        groups_c.difference(&groups_b).count() <= 1,
        "only the group joined by the new list changes: {groups_b:?} → {groups_c:?}"
    );
}

#[test]
fn a_rebuild_replaces_a_site_whose_root_and_chunk_table_an_older_build_index_wrote() {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    let cache = tmp.path().join("cache");
    let build = || {
        new_build(&feed(), &out, &cache)
            .args(["--partitions", "4"])
            .run()
    };
    build().expect(0);
    // The root and the chunk table of an older layout version (as an older build-index wrote
    // them), under their content-addressed names and listed by a sealed manifest: this
    // build-index cannot read them, so it cannot name their lists, chunks and packs.
    let mut m = SiteDir::open(&out).manifest;
    for (file, stem) in [
        (&mut m.files.vectors, "vectors"),
        (&mut m.files.chunks, "chunks"),
    ] {
        let mut bytes = std::fs::read(out.join(&file.path)).expect("read");
        bytes[4..8].copy_from_slice(&1u32.to_le_bytes());
        std::fs::remove_file(out.join(&file.path)).expect("remove");
        *file = vitrine_index::FileRef::for_content(stem, "bin", &bytes);
        std::fs::write(out.join(&file.path), &bytes).expect("write");
    }
    m.seal();
    std::fs::write(out.join(vitrine_index::MANIFEST), m.to_json()).expect("manifest");
    let refused = common::verify(&out);
    assert_ne!(
        refused.code,
        Some(0),
        "the aged site does not load: {}",
        refused.stderr
    );
    // The next build replaces it whole: its lists, groups, chunks and packs are build-index's.
    build().expect(0);
    SiteDir::assert_complete(&common::cli(), &out);
    // So does the one after a manifest of an older format version.
    let manifest = out.join(vitrine_index::MANIFEST);
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let version = |v: u32| format!("\"version\": {v}");
    let now = version(vitrine_index::FORMAT_VERSION);
    assert!(text.contains(&now), "{text}");
    let older = text.replacen(&now, &version(vitrine_index::FORMAT_VERSION - 1), 1);
    std::fs::write(&manifest, older).expect("manifest");
    assert_ne!(common::verify(&out).code, Some(0));
    build().expect(0);
    SiteDir::assert_complete(&common::cli(), &out);
}
