//! One full AEGAN training step (discriminator phase + generator/encoder phase), reported as
//! real images per second.
//!
//! ```sh
//! cargo bench --bench train_step              # every row (author32 takes minutes on a laptop CPU)
//! cargo bench --bench train_step -- lean      # only the lean preset
//! AEGAN_BENCH_BATCHES=64,256 cargo bench --bench train_step   # other batch sizes (default 64)
//! AEGAN_BENCH_PRECISION=f32,bf16 cargo bench --bench train_step # also mixed precision (rows lean32-bf16, ...)
//! AEGAN_BENCH_DEVICE=cuda cargo bench --features cuda --bench train_step  # that device or an error (default: the best present)
//! ```
//!
//! On the CPU a `lean32-generic` row runs the lean preset on the generic path (candle's
//! operations, what CUDA and Metal run) instead of aegan's CPU kernels, so that the generic
//! path's cost is visible without a GPU.

mod common;

use aegan::candle_core::Tensor;
use aegan::config::Precision;
use aegan::data::synthetic;
use aegan::{AeganConfig, AeganTrainer};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};

fn bench_train_step(c: &mut Criterion) {
    aegan::keep_freed_memory();
    aegan::serial_candle_elementwise();
    let device = common::bench_device();
    let mut group = c.benchmark_group("train_step");
    group.sample_size(10);
    // A step takes milliseconds to seconds: flat sampling runs a slow row 10 times, where
    // criterion's default (linear) sampling would run it at least 55 times.
    group.sampling_mode(SamplingMode::Flat);
    let batches: Vec<usize> = std::env::var("AEGAN_BENCH_BATCHES")
        .ok()
        .map(|list| list.split(',').filter_map(|b| b.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![64]);
    let precisions: Vec<Precision> = std::env::var("AEGAN_BENCH_PRECISION")
        .ok()
        .map(|list| {
            list.split(',')
                .filter_map(|p| match p.trim() {
                    "f32" => Some(Precision::F32),
                    "bf16" => Some(Precision::Bf16),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_else(|| vec![Precision::F32]);
    // (preset, size, generic path): the generic row only where the kernels are an alternative.
    let mut rows = vec![
        ("lean", 32, false),
        ("author", 32, false),
        ("lean", 64, false),
        ("lean", 128, false),
    ];
    if device.is_cpu() {
        rows.push(("lean", 32, true));
    }
    let cases = rows.iter().flat_map(|r| {
        let precisions = &precisions;
        batches
            .iter()
            .flat_map(move |b| precisions.iter().map(move |p| (*r, *b, *p)))
    });
    for ((name, size, generic), batch, precision) in cases {
        let suffix = match (precision.is_f32(), generic) {
            (true, false) => "",
            (true, true) => "-generic",
            (false, false) => "-bf16",
            (false, true) => "-generic-bf16",
        };
        let on_path = |f: &mut dyn FnMut()| match generic {
            true => aegan::ops::with_generic_ops(f),
            false => f(),
        };
        // Built on first use, so that a filter (`-- lean32`) skips the other models' set-up,
        // which for author32 is a 48-second warm-up step and 13 GB.
        let mut state: Option<(AeganTrainer, Tensor)> = None;
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::new(format!("{name}{size}{suffix}"), batch), |b| {
            let (trainer, images) = state.get_or_insert_with(|| {
                let mut config = AeganConfig::preset(name, size).expect("known preset");
                config.batch_size = batch;
                config.precision = precision;
                let mut trainer = AeganTrainer::new(config, &device).expect("trainer");
                let images = synthetic::lesions(batch, size, 0)
                    .to_tensor(&device)
                    .expect("images");
                on_path(&mut || {
                    trainer.step(&images).expect("warm-up step");
                });
                (trainer, images)
            });
            b.iter(|| {
                on_path(&mut || {
                    trainer.step(images).expect("step");
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_train_step);
criterion_main!(benches);
