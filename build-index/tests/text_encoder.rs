//! The page's text encoder and its quality gate, end to end: `auto` ships the smallest layout
//! that passes and says why; an explicit layout that misses the gate fails with the numbers and
//! writes nothing; `auto` falls back to f16 when nothing smaller passes; a model whose width does
//! not fit 4-bit blocks falls back to the best layout that fits, and says so; `search` ranks with
//! the encoder the site ships.

mod common;

use std::path::Path;

use common::{MODEL, SiteDir, assert_complete_site, folder_catalogue, new_build, search, tempdir};
use vitrine_index::EncoderFormat;

/// A small catalogue: the committed folder of images.
fn shop() -> std::path::PathBuf {
    folder_catalogue()
}

#[test]
fn auto_ships_the_smallest_layout_that_passes_and_records_its_quality() {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    let report = new_build(&shop(), &out, &tmp.path().join("cache"))
        .args(["--facet", "kind=animal,food,tool"])
        .run()
        .expect(0);
    let site = assert_complete_site(&out);
    let encoder = &site.manifest.encoder;
    assert_eq!(encoder.format, EncoderFormat::Quantized);
    let q = &encoder.quality;
    assert!(q.mean_cosine >= 0.99 && q.recall_at_10 >= 0.95, "{q:?}");
    // Facet prompts, the 224 everyday queries and the catalogue's titles.
    assert!(q.prompts as usize >= 3 + 224 + 36, "{q:?}");
    assert!(site.manifest.files.encoder.weights.path.ends_with(".vtq"));
    let reported = report.text_encoder.expect("the report has the encoder");
    assert_eq!(&reported.quality, q);
    assert!(
        reported.note.contains("the smallest layout tried"),
        "{}",
        reported.note
    );
    assert_eq!(reported.bytes, site.manifest.files.encoder.weights.size);
    // `search` runs the shipped encoder.
    assert_eq!(search(&out, &["--text", "a cat", "-k", "5"]).len(), 5);
}

#[test]
fn an_explicit_layout_that_misses_the_gate_fails_with_the_numbers() {
    let tmp = tempdir();
    let out = tmp.path().join("site");
    let built = new_build(&shop(), &out, &tmp.path().join("cache"))
        .args(["--text-encoder", "q8e4", "--min-encoder-cosine", "0.999999"])
        .run();
    built.run.expect_code(1);
    let err = &built.run.stderr;
    for words in [
        "misses the quality gate",
        "q8e4a7",
        "q8e4a8",
        "mean cosine 0.9",
        "recall@10",
    ] {
        assert!(err.contains(words), "{words:?} missing from: {err}");
    }
    assert!(!out.exists(), "nothing was written");

    // auto falls back to f16 and says why.
    let report = new_build(&shop(), &out, &tmp.path().join("cache"))
        .args(["--min-encoder-cosine", "0.999999"])
        .run()
        .expect(0);
    let site = SiteDir::open(&out);
    assert_eq!(site.manifest.encoder.format, EncoderFormat::F16);
    let note = report.text_encoder.expect("encoder").note;
    assert!(note.contains("no smaller layout passed"), "{note}");
}

#[test]
fn f16_and_q8e8_are_shipped_when_asked_for() {
    let tmp = tempdir();
    for (choice, format, layout, ext) in [
        ("f16", EncoderFormat::F16, "f16", ".safetensors"),
        ("q8e8", EncoderFormat::Quantized, "q8e8a7", ".vtq"),
    ] {
        let out = tmp.path().join(choice);
        new_build(&shop(), &out, &tmp.path().join("cache"))
            .args(["--text-encoder", choice])
            .run()
            .expect(0);
        let site = assert_complete_site(&out);
        assert_eq!(
            (
                site.manifest.encoder.format,
                site.manifest.encoder.layout.as_str()
            ),
            (format, layout)
        );
        assert!(site.manifest.files.encoder.weights.path.ends_with(ext));
        assert_eq!(search(&out, &["--text", "a red apple", "-k", "3"]).len(), 3);
    }
}

/// A checkpoint like the tiny fixture but 24 wide: no row of it is whole 4-bit blocks of 32.
fn narrow_checkpoint(dir: &Path) {
    let tiny = Path::new(MODEL);
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tiny.join("config.json")).expect("config"))
            .expect("json");
    config["text_config"]["hidden_size"] = 24.into();
    config["text_config"]["intermediate_size"] = 48.into();
    config["text_config"]["num_attention_heads"] = 4.into();
    let tokenizer = std::fs::read(tiny.join("tokenizer.json")).expect("tokenizer");
    vitrine_clip::synthetic::write_checkpoint(dir, &config.to_string(), &tokenizer, 7)
        .expect("write a checkpoint");
}

#[test]
fn a_model_whose_width_does_not_fit_4_bit_blocks_gets_the_best_layout_that_fits() {
    let tmp = tempdir();
    let model = tmp.path().join("narrow-clip");
    narrow_checkpoint(&model);
    let out = tmp.path().join("site");
    let report = new_build(&shop(), &out, &tmp.path().join("cache"))
        .model(&model)
        .run()
        .expect(0);
    let note = report.text_encoder.expect("encoder").note;
    assert!(
        note.contains("q8e4a7 does not fit this model (its width 24 is not a multiple of 32)"),
        "{note}"
    );
    assert!(
        SiteDir::open(&out)
            .manifest
            .encoder
            .layout
            .starts_with("q8e8")
    );
}
