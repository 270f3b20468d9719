//! Forward passes of the four networks in evaluation mode, reported as images per second.
//! Each pass waits for the device, so GPU rows time the work, not its launch.
//!
//! ```sh
//! cargo bench --bench forward                 # every row
//! cargo bench --bench forward -- lean32       # one preset and size
//! ```

mod common;

use aegan::candle_core::Tensor;
use aegan::data::synthetic;
use aegan::rng::TrainRng;
use aegan::{AeganConfig, Networks};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn bench_forward(c: &mut Criterion) {
    aegan::keep_freed_memory();
    aegan::serial_candle_elementwise();
    let device = common::bench_device();
    for (name, size) in [("lean", 32), ("author", 32), ("lean", 64)] {
        let config = AeganConfig::preset(name, size).expect("known preset");
        let nets = Networks::new(&config, &device).expect("networks");
        let mut group = c.benchmark_group(format!("forward/{name}{size}"));
        group.sample_size(10);
        for batch in [1, 64, 256] {
            let z = TrainRng::new(0)
                .normal((batch, config.latent_dim), &device)
                .expect("latents");
            let x: Tensor = synthetic::lesions(batch, size, 0)
                .to_tensor(&device)
                .expect("images");
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(BenchmarkId::new("generator", batch), &z, |b, z| {
                b.iter(|| {
                    let out = nets.generator.forward_t(z, false).expect("G");
                    device.synchronize().expect("sync");
                    out
                })
            });
            group.bench_with_input(BenchmarkId::new("encoder", batch), &x, |b, x| {
                b.iter(|| {
                    let out = nets.encoder.forward_t(x, false).expect("E");
                    device.synchronize().expect("sync");
                    out
                })
            });
            group.bench_with_input(BenchmarkId::new("image_discriminator", batch), &x, |b, x| {
                b.iter(|| {
                    let out = nets.image_discriminator.forward_t(x, false).expect("Dx");
                    device.synchronize().expect("sync");
                    out
                })
            });
            group.bench_with_input(BenchmarkId::new("latent_discriminator", batch), &z, |b, z| {
                b.iter(|| {
                    let out = nets.latent_discriminator.forward_t(z, false).expect("Dz");
                    device.synchronize().expect("sync");
                    out
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_forward);
criterion_main!(benches);
