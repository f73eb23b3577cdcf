//! The tensors of a Hugging Face `CLIPModel`, by name and shape, for a given config: what the text
//! encoder export copies and what the synthetic benchmark checkpoints fill.

use crate::config::{ClipConfig, EncoderConfig};

fn encoder_shapes(prefix: &str, c: &EncoderConfig, out: &mut Vec<(String, Vec<usize>)>) {
    let (d, f) = (c.hidden_size, c.intermediate_size);
    for i in 0..c.num_hidden_layers {
        let l = format!("{prefix}.encoder.layers.{i}");
        for p in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            out.push((format!("{l}.self_attn.{p}.weight"), vec![d, d]));
            out.push((format!("{l}.self_attn.{p}.bias"), vec![d]));
        }
        for n in ["layer_norm1", "layer_norm2"] {
            out.push((format!("{l}.{n}.weight"), vec![d]));
            out.push((format!("{l}.{n}.bias"), vec![d]));
        }
        out.push((format!("{l}.mlp.fc1.weight"), vec![f, d]));
        out.push((format!("{l}.mlp.fc1.bias"), vec![f]));
        out.push((format!("{l}.mlp.fc2.weight"), vec![d, f]));
        out.push((format!("{l}.mlp.fc2.bias"), vec![d]));
    }
}

/// Every tensor of a `CLIPModel` with this config: name and shape.
pub fn tensor_shapes(c: &ClipConfig) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    let (t, v) = (&c.text, &c.vision);
    let (td, vd) = (t.encoder.hidden_size, v.encoder.hidden_size);
    out.push((
        "text_model.embeddings.token_embedding.weight".into(),
        vec![t.vocab_size, td],
    ));
    out.push((
        "text_model.embeddings.position_embedding.weight".into(),
        vec![t.max_position_embeddings, td],
    ));
    encoder_shapes("text_model", &t.encoder, &mut out);
    out.push(("text_model.final_layer_norm.weight".into(), vec![td]));
    out.push(("text_model.final_layer_norm.bias".into(), vec![td]));
    out.push(("text_projection.weight".into(), vec![c.projection_dim, td]));
    out.push(("vision_model.embeddings.class_embedding".into(), vec![vd]));
    out.push((
        "vision_model.embeddings.patch_embedding.weight".into(),
        vec![vd, v.num_channels, v.patch_size, v.patch_size],
    ));
    out.push((
        "vision_model.embeddings.position_embedding.weight".into(),
        vec![v.num_positions(), vd],
    ));
    for n in ["pre_layrnorm", "post_layernorm"] {
        out.push((format!("vision_model.{n}.weight"), vec![vd]));
        out.push((format!("vision_model.{n}.bias"), vec![vd]));
    }
    encoder_shapes("vision_model", &v.encoder, &mut out);
    out.push((
        "visual_projection.weight".into(),
        vec![c.projection_dim, vd],
    ));
    out.push(("logit_scale".into(), vec![]));
    out
}
