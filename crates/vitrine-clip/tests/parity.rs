//! Parity with Hugging Face `transformers` on the tiny CLIP fixture: tokenizer ids, text and image
//! features, preprocessing. Every size of the fixture differs from ViT-B/32, so passing here means
//! the sizes really come from `config.json`.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use candle_core::{Device, Tensor};
use common::{cosine, reference, rel_max_abs, tiny_clip};
use vitrine_clip::{Checkpoint, ClipTokenizer, DEFAULT_MAX_PIXELS};

#[derive(serde::Deserialize)]
struct TokenRow {
    text: String,
    hf_fast: Vec<u32>,
}

#[test]
fn tokenizer_ids_equal_clip_tokenizer_fast_for_all_reference_strings() {
    let rows: Vec<TokenRow> = serde_json::from_slice(
        &std::fs::read(common::fixtures().join("clip-tokenizer/reference_ids.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(rows.len(), 33);
    let json = std::fs::read(tiny_clip().join("tokenizer.json")).unwrap();
    let tokenizer = ClipTokenizer::from_bytes(&json, 77).unwrap();
    for row in rows {
        assert_eq!(
            tokenizer.encode(&row.text).unwrap(),
            row.hf_fast,
            "{:?}",
            row.text
        );
    }
}

#[test]
fn truncation_keeps_end_of_text_last_at_77_tokens() {
    let json = std::fs::read(tiny_clip().join("tokenizer.json")).unwrap();
    let tokenizer = ClipTokenizer::from_bytes(&json, 77).unwrap();
    let ids = tokenizer.encode(&"word ".repeat(200)).unwrap();
    assert_eq!(ids.len(), 77);
    assert_eq!(ids[0], 49406);
    assert_eq!(ids[76], 49407);
}

#[test]
fn text_features_equal_transformers_get_text_features() {
    let r = reference();
    let ckpt = Checkpoint::open(tiny_clip().to_str().unwrap()).unwrap();
    let tokenizer = ckpt.tokenizer().unwrap();
    let encoder = ckpt.text_encoder().unwrap();
    for (i, text) in r.texts.iter().enumerate() {
        let ids = tokenizer.encode(text).unwrap();
        assert_eq!(ids, r.input_ids_unpadded[i], "ids of {text:?}");
        let got = encoder.encode(&ids).unwrap();
        let err = rel_max_abs(&got, &r.text_embeds[i]);
        assert!(err < 1e-4, "{text:?}: relative error {err}");
    }
}

#[test]
fn a_padded_batch_gives_each_text_its_unpadded_features() {
    let r = reference();
    let ckpt = Checkpoint::open(tiny_clip().to_str().unwrap()).unwrap();
    let encoder = ckpt.text_encoder().unwrap();
    let batch: Vec<&[u32]> = r.input_ids_unpadded.iter().map(Vec::as_slice).collect();
    let lens: Vec<usize> = batch.iter().map(|b| b.len()).collect();
    assert!(
        lens.iter().min() != lens.iter().max(),
        "the batch must need padding"
    );
    let got = encoder.encode_batch(&batch).unwrap();
    for (i, want) in r.text_embeds.iter().enumerate() {
        let err = rel_max_abs(&got[i], want);
        assert!(err < 1e-4, "text {i}: relative error {err}");
    }
}

fn reference_pixels() -> Tensor {
    let path = tiny_clip().join("reference_tensors.safetensors");
    let mut tensors = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    tensors.remove("pixel_values").unwrap()
}

#[test]
fn image_features_from_reference_pixels_equal_transformers_get_image_features() {
    let r = reference();
    let ckpt = Checkpoint::open(tiny_clip().to_str().unwrap()).unwrap();
    let encoder = ckpt.image_encoder().unwrap();
    let got: Vec<Vec<f32>> = encoder
        .encode_tensor(&reference_pixels())
        .unwrap()
        .to_vec2()
        .unwrap();
    for (i, want) in r.image_embeds.iter().enumerate() {
        let err = rel_max_abs(&got[i], want);
        assert!(err < 1e-4, "image {i}: relative error {err}");
    }
}

#[test]
fn preprocessing_equals_clip_image_processor_within_two_levels() {
    let r = reference();
    let ckpt = Checkpoint::open(tiny_clip().to_str().unwrap()).unwrap();
    let pre = ckpt.preprocessor();
    let (mean, std) = pre.config().mean_std.unwrap();
    let t = reference_pixels();
    let (_, _, h, w) = t.dims4().unwrap();
    let values: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    let (mut total, mut close) = (0usize, 0usize);
    for (i, name) in r.images.iter().enumerate() {
        let bytes = std::fs::read(tiny_clip().join("ref_images").join(name)).unwrap();
        let image = vitrine_clip::decode_image(&bytes, DEFAULT_MAX_PIXELS).unwrap();
        let ours = pre.resize_and_crop(&vitrine_clip::to_rgb(&image));
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let v = values[((i * 3 + c) * h + y) * w + x];
                    let want = (f64::from(v) * std[c] + mean[c]) * 255.0;
                    let got = f64::from(ours.get_pixel(x as u32, y as u32)[c]);
                    total += 1;
                    close += usize::from((got - want).abs() <= 2.0);
                }
            }
        }
    }
    let share = close as f64 / total as f64;
    assert!(
        share >= 0.999,
        "only {:.4}% of values within 2/255",
        share * 100.0
    );
}

#[test]
fn end_to_end_image_features_match_at_cosine_0_9999() {
    let r = reference();
    let ckpt = Checkpoint::open(tiny_clip().to_str().unwrap()).unwrap();
    let pre = ckpt.preprocessor();
    let encoder = ckpt.image_encoder().unwrap();
    for (i, name) in r.images.iter().enumerate() {
        let bytes = std::fs::read(tiny_clip().join("ref_images").join(name)).unwrap();
        let pixels = pre.pixels_from_bytes(&bytes, DEFAULT_MAX_PIXELS).unwrap();
        let got = encoder.encode_pixels(&[&pixels]).unwrap().remove(0);
        let cos = cosine(&got, &r.image_embeds[i]);
        assert!(cos >= 0.9999, "{name}: cosine {cos}");
    }
}

#[test]
fn logit_scale_and_logits_per_image_equal_transformers() {
    let r = reference();
    let ckpt = Checkpoint::open(tiny_clip().to_str().unwrap()).unwrap();
    let text = ckpt.text_encoder().unwrap();
    assert!((text.logit_scale() - r.logit_scale).abs() < 1e-4);
    let images = ckpt.image_encoder().unwrap();
    let img: Vec<Vec<f32>> = images
        .encode_tensor(&reference_pixels())
        .unwrap()
        .to_vec2()
        .unwrap();
    for (i, row) in r.logits_per_image.iter().enumerate() {
        for (j, &want) in row.iter().enumerate() {
            let t = text.encode(&r.input_ids_unpadded[j]).unwrap();
            let got = text.logit_scale() * cosine(&img[i], &t);
            assert!((got - want).abs() < 1e-3, "logit[{i}][{j}] {got} vs {want}");
        }
    }
}

#[test]
fn our_towers_equal_candle_transformers_clip_where_it_applies() {
    // candle's CLIP fixes QuickGELU and eps 1e-5, which the tiny fixture happens to use.
    use candle_transformers::models::clip as candle_clip;
    let r = reference();
    let ckpt = Checkpoint::open(tiny_clip().to_str().unwrap()).unwrap();
    let c = &ckpt.config;
    let text = candle_clip::text_model::ClipTextConfig {
        vocab_size: c.text.vocab_size,
        embed_dim: c.text.encoder.hidden_size,
        activation: candle_clip::text_model::Activation::QuickGelu,
        intermediate_size: c.text.encoder.intermediate_size,
        max_position_embeddings: c.text.max_position_embeddings,
        pad_with: None,
        num_hidden_layers: c.text.encoder.num_hidden_layers,
        num_attention_heads: c.text.encoder.num_attention_heads,
        projection_dim: c.projection_dim,
    };
    let vision = candle_clip::vision_model::ClipVisionConfig {
        embed_dim: c.vision.encoder.hidden_size,
        activation: candle_clip::text_model::Activation::QuickGelu,
        intermediate_size: c.vision.encoder.intermediate_size,
        num_hidden_layers: c.vision.encoder.num_hidden_layers,
        num_attention_heads: c.vision.encoder.num_attention_heads,
        projection_dim: c.projection_dim,
        num_channels: 3,
        image_size: c.vision.image_size,
        patch_size: c.vision.patch_size,
    };
    let config = candle_clip::ClipConfig {
        text_config: text,
        vision_config: vision,
        logit_scale_init_value: 2.6592,
        image_size: c.vision.image_size,
    };
    let theirs = candle_clip::ClipModel::new(ckpt.var_builder().unwrap(), &config).unwrap();
    let ours = ckpt.text_encoder().unwrap();
    for ids in &r.input_ids_unpadded {
        let t = Tensor::new(ids.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let want: Vec<f32> = theirs
            .get_text_features(&t)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(rel_max_abs(&ours.encode(ids).unwrap(), &want) < 1e-5);
    }
    let pixels = reference_pixels();
    let want: Vec<Vec<f32>> = theirs
        .get_image_features(&pixels)
        .unwrap()
        .to_vec2()
        .unwrap();
    let got: Vec<Vec<f32>> = ckpt
        .image_encoder()
        .unwrap()
        .encode_tensor(&pixels)
        .unwrap()
        .to_vec2()
        .unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert!(rel_max_abs(g, w) < 1e-5);
    }
}
