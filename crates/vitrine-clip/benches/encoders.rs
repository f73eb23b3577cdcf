//! Encoder speed at full ViT-B/32 size with seeded random weights (speed depends on sizes only):
//! a 12-token text query (unpadded, as the page encodes it) and a batch of 8 images.
//! `cargo bench -p vitrine-clip --bench encoders`

#![allow(missing_docs)]

// As in build-index: glibc returns big tensors' memory to the kernel and takes page faults
// to get it back on every layer; mimalloc keeps it.
#[cfg(not(target_arch = "wasm32"))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::VarBuilder;
    use criterion::{Criterion, Throughput};
    use vitrine_clip::synthetic::{VIT_B_32_CONFIG, random_tensors};
    use vitrine_clip::{
        ClipConfig, EmbeddingBits, ImageEncoder, QuantLayout, QuantTextEncoder, TextEncoder,
    };

    pub(crate) fn encoders(c: &mut Criterion) {
        let config = ClipConfig::from_json(VIT_B_32_CONFIG.as_bytes()).unwrap();
        let tensors = random_tensors(&config, 42).unwrap();
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let text = TextEncoder::new(vb.clone(), &config).unwrap();
        let image = ImageEncoder::new(vb.clone(), &config).unwrap();

        // "a photo of a fluffy pink cat on a tv" is 12 tokens with start and end.
        let ids: Vec<u32> = vec![
            49406, 320, 1125, 539, 320, 11859, 3969, 2368, 525, 320, 7536, 49407,
        ];
        let mut g = c.benchmark_group("vit-b-32");
        g.sample_size(30);
        g.bench_function("text_encode_12_tokens", |b| {
            b.iter(|| text.encode(&ids).unwrap())
        });
        for activation_bits in [7, 8] {
            let layout = QuantLayout {
                embedding: EmbeddingBits::Four,
                activation_bits,
            };
            let bytes = vitrine_clip::quant::export::export(
                vb.clone(),
                &config,
                layout,
                std::slice::from_ref(&ids),
            )
            .unwrap();
            let quant = QuantTextEncoder::from_bytes(VIT_B_32_CONFIG.as_bytes(), bytes).unwrap();
            g.bench_function(format!("text_encode_12_tokens_{}", layout.name()), |b| {
                b.iter(|| quant.encode(&ids).unwrap())
            });
        }
        let pixels = Tensor::randn(0f32, 1f32, (8, 3, 224, 224), &Device::Cpu).unwrap();
        g.sample_size(10);
        g.throughput(Throughput::Elements(8));
        g.bench_function("image_encode_batch_8", |b| {
            b.iter(|| image.encode_tensor(&pixels).unwrap())
        });
        g.finish();
    }
}

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_group!(benches, native::encoders);
#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(benches);

#[cfg(target_arch = "wasm32")]
fn main() {}
