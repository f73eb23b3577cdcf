//! Builds spread over machines: `--shard I/N` runs fill caches (separate ones merged with
//! `--merge-cache`, or one shared), `--shard auto` reads Kubernetes' and Slurm's variables, and
//! `--embeddings` imports precomputed vectors; each final build writes the very site a single
//! build writes, embedding nothing.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{
    CATALOGUE_IMAGES, EMPTY_CACHE, RECORD, Run, cli, folder_catalogue, new_build, run, tempdir,
    tree,
};
use sha2::{Digest, Sha256};

/// A single-process build of the folder catalogue: the site every other way must reproduce.
fn reference(tmp: &Path) -> BTreeMap<String, Vec<u8>> {
    let out = tmp.join("reference");
    let report = new_build(&folder_catalogue(), &out, &tmp.join("reference-cache"))
        .run()
        .expect(0);
    assert_eq!(report.embedded, CATALOGUE_IMAGES);
    tree(&out)
}

/// Runs `build-index build --shard …` (no `--out`) with `env` set on the child.
fn shard(spec: &str, cache: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(cli().bin());
    cmd.args(["build", "--catalogue"])
        .arg(folder_catalogue())
        .arg("--model")
        .arg(common::MODEL)
        .arg("--cache")
        .arg(cache)
        .args(["--shard", spec, "-q"])
        .stdin(Stdio::null());
    for var in [
        "JOB_COMPLETION_INDEX",
        "JOB_COMPLETIONS",
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_STEP",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd
}

fn finish(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("run build-index");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[track_caller]
fn assert_same_site(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in a {
        assert!(b[path] == *bytes, "{path} differs");
    }
}

#[test]
fn four_shards_in_separate_caches_merged_write_the_single_build_site() {
    let tmp = tempdir();
    let expected = reference(tmp.path());
    let mut share_rows = 0;
    for i in 0..4 {
        let cache = tmp.path().join(format!("cache-{i}"));
        // `--out` is ignored (with a note); the report covers the share only.
        let built = new_build(&folder_catalogue(), &tmp.path().join("unused"), &cache)
            .args(["--shard", &format!("{i}/4")])
            .run();
        assert!(
            built.run.stderr.contains("--out is ignored with --shard"),
            "{}",
            built.run.stderr
        );
        let report = built.expect(0);
        assert_eq!((report.rows, report.embedded, report.reused), (9, 9, 0));
        share_rows += report.rows;
        assert_eq!(
            common::embedding_cache_size(&cache),
            EMPTY_CACHE + 9 * RECORD
        );
    }
    assert_eq!(share_rows, CATALOGUE_IMAGES);
    assert!(
        !tmp.path().join("unused").exists(),
        "a shard writes no site"
    );

    let out = tmp.path().join("merged");
    let mut build = new_build(&folder_catalogue(), &out, &tmp.path().join("fresh-cache"));
    for i in 0..4 {
        build = build.args([
            "--merge-cache".into(),
            tmp.path().join(format!("cache-{i}")).into_os_string(),
        ]);
    }
    let report = build.run().expect(0);
    assert_eq!((report.embedded, report.reused), (0, CATALOGUE_IMAGES));
    assert_same_site(&expected, &tree(&out));

    // A folder that is not there, or holds another model's cache, is a usage error.
    let missing = new_build(&folder_catalogue(), &out, &tmp.path().join("fresh-cache"))
        .args(["--merge-cache", "/no/such/cache"])
        .run();
    missing.run.expect_code(2);
    assert!(
        missing
            .run
            .stderr
            .contains("--merge-cache /no/such/cache: no such folder")
    );
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let other = new_build(&folder_catalogue(), &out, &tmp.path().join("fresh-cache"))
        .args(["--merge-cache".as_ref(), empty.as_os_str()])
        .run();
    other.run.expect_code(2);
    assert!(
        other
            .run
            .stderr
            .contains("holds no embeddings of this model")
    );
}

#[test]
fn four_concurrent_shards_sharing_one_cache_need_no_merge() {
    let tmp = tempdir();
    let expected = reference(tmp.path());
    let cache = tmp.path().join("shared");
    let children: Vec<_> = (0..4)
        .map(|i| {
            shard(&format!("{i}/4"), &cache, &[])
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = tmp.path().join("site");
    let report = new_build(&folder_catalogue(), &out, &cache).run().expect(0);
    assert_eq!((report.embedded, report.reused), (0, CATALOGUE_IMAGES));
    assert_same_site(&expected, &tree(&out));
}

#[test]
fn shard_auto_reads_kubernetes_and_slurm_and_refuses_bad_values() {
    let tmp = tempdir();
    let rows = |env: &[(&str, &str)], name: &str| {
        let report = tmp.path().join(format!("{name}.json"));
        let mut cmd = shard("auto", &tmp.path().join(name), env);
        finish(cmd.arg("--report").arg(&report)).expect_code(0);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(report).unwrap()).expect("the report is JSON");
        (
            json["rows"].as_u64().unwrap(),
            json["embedded"].as_u64().unwrap(),
        )
    };
    let k8s = [("JOB_COMPLETION_INDEX", "2"), ("JOB_COMPLETIONS", "5")];
    // Positions 2, 7, …, 32 of 36.
    assert_eq!(rows(&k8s, "k8s"), (7, 7));
    // `--array=1-3`: task 3 is the third share of three, positions 2, 5, …, 35.
    let slurm = [
        ("SLURM_ARRAY_TASK_ID", "3"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
    ];
    assert_eq!(rows(&slurm, "slurm"), (12, 12));

    let cache = tmp.path().join("bad");
    for (env, needle) in [
        (
            &[][..],
            "neither JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor SLURM_ARRAY_TASK_ID",
        ),
        (
            &[("JOB_COMPLETION_INDEX", "two"), ("JOB_COMPLETIONS", "5")][..],
            "JOB_COMPLETION_INDEX=\"two\" is not a whole number",
        ),
        (
            &[("JOB_COMPLETION_INDEX", "1")][..],
            "JOB_COMPLETIONS is not",
        ),
        (
            &[
                ("SLURM_ARRAY_TASK_ID", "9"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ][..],
            "share 9 of 4 does not exist",
        ),
    ] {
        let r = finish(&mut shard("auto", &cache, env));
        r.expect_code(2);
        assert!(r.stderr.contains(needle), "{env:?}: {}", r.stderr);
    }
    let r = finish(&mut shard("4/4", &cache, &[]));
    r.expect_code(2);
    assert!(
        r.stderr
            .contains("--shard 4/4: share 4 of 4 does not exist"),
        "{}",
        r.stderr
    );
    assert!(!cache.join("embeddings").exists(), "nothing was embedded");
}

#[test]
fn out_is_required_without_shard() {
    let tmp = tempdir();
    let r = run([
        "build".as_ref(),
        "--catalogue".as_ref(),
        folder_catalogue().as_os_str(),
        "--cache".as_ref(),
        tmp.path().as_os_str(),
    ]);
    r.expect_code(2);
    assert!(r.stderr.contains("--out <DIR>"), "{}", r.stderr);
}

/// The image files of the folder catalogue by SHA-256, and the embeddings a build cached.
fn cached_embeddings(cache: &Path) -> BTreeMap<[u8; 32], Vec<f32>> {
    let dir = cache.join("embeddings");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(file).unwrap();
    bytes[EMPTY_CACHE as usize..]
        .chunks_exact(RECORD as usize)
        .map(|r| {
            let v = r[32..32 + 64]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            (r[..32].try_into().unwrap(), v)
        })
        .collect()
}

fn images(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            images(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

#[test]
fn imported_embeddings_give_the_same_site_without_embedding() {
    let tmp = tempdir();
    let expected = reference(tmp.path());
    let cached = cached_embeddings(&tmp.path().join("reference-cache"));
    let root = folder_catalogue();
    let mut files = Vec::new();
    images(&root, &mut files);
    files.sort();
    // clip-retrieval's layout; half the rows named by id, half by absolute image path.
    let emb = tmp.path().join("emb");
    std::fs::create_dir_all(emb.join("img_emb")).unwrap();
    std::fs::create_dir_all(emb.join("metadata")).unwrap();
    let (mut data, mut meta) = (Vec::new(), String::new());
    for (i, f) in files.iter().enumerate() {
        let hash: [u8; 32] = Sha256::digest(std::fs::read(f).unwrap()).into();
        data.extend_from_slice(&cached[&hash]);
        let id = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        meta += &if i % 2 == 0 {
            serde_json::json!({ "id": id })
        } else {
            serde_json::json!({ "image_path": f.canonicalize().unwrap() })
        }
        .to_string();
        meta.push('\n');
    }
    meta += "{\"image_path\": \"/not/in/the/catalogue.png\"}\n";
    data.extend_from_slice(&[0.5; 16]);
    let n = files.len() + 1;
    std::fs::write(
        emb.join("img_emb/img_emb_0.npy"),
        vitrine_testkit::npy_f32(n, 16, &data),
    )
    .unwrap();
    std::fs::write(emb.join("metadata/metadata_0.jsonl"), &meta).unwrap();

    let out = tmp.path().join("imported");
    let cache = tmp.path().join("cache");
    let built = new_build(&root, &out, &cache)
        .args(["--embeddings".as_ref(), emb.as_os_str()])
        .verbose()
        .run();
    assert!(
        built
            .run
            .stderr
            .contains("1 imported embeddings name no catalogue row")
    );
    let report = built.expect(0);
    assert_eq!((report.embedded, report.reused), (0, CATALOGUE_IMAGES));
    assert_same_site(&expected, &tree(&out));
    // They are in the cache now: a rebuild without them embeds nothing either.
    let again = new_build(&root, &out, &cache).run().expect(0);
    assert_eq!(again.embedded, 0);

    // Files that do not fit: the build stops (status 1) naming the file and the fix.
    let bad = |npy_bytes: Vec<u8>, needle: &str| {
        std::fs::write(emb.join("img_emb/img_emb_0.npy"), npy_bytes).unwrap();
        let built = new_build(
            &root,
            &tmp.path().join("bad"),
            &tmp.path().join("bad-cache"),
        )
        .args(["--embeddings".as_ref(), emb.as_os_str()])
        .run();
        built.run.expect_code(1);
        assert!(built.run.stderr.contains(needle), "{}", built.run.stderr);
    };
    bad(
        vitrine_testkit::npy_f32(n - 1, 16, &data[..(n - 1) * 16]),
        &format!("img_emb_0.npy holds {} rows, ", n - 1),
    );
    bad(
        vitrine_testkit::npy_f32(n, 8, &data[..n * 8]),
        "img_emb_0.npy: width 8, the model --model ",
    );
    assert!(!tmp.path().join("bad").exists());
}
