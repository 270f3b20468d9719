//! One full AEGAN training step (discriminator phase + generator/encoder phase), reported as
//! real images per second.
//!
//! ```sh
//! cargo bench --bench train_step              # every row (author32 takes minutes on a laptop CPU)
//! cargo bench --bench train_step -- lean      # only the lean preset
//! ```

use aegan::candle_core::Device;
use aegan::data::synthetic;
use aegan::{AeganConfig, AeganTrainer};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn bench_train_step(c: &mut Criterion) {
    aegan::keep_freed_memory();
    let device = aegan::select_device(aegan::DeviceChoice::Auto).unwrap_or(Device::Cpu);
    let mut group = c.benchmark_group("train_step");
    group.sample_size(10);
    for (name, size) in [("lean", 32), ("author", 32), ("lean", 64)] {
        {
            let batch = 64;
            let mut config = AeganConfig::preset(name, size).expect("known preset");
            config.batch_size = batch;
            let mut trainer = AeganTrainer::new(config, &device).expect("trainer");
            let images = synthetic::lesions(batch, size, 0)
                .to_tensor(&device)
                .expect("images");
            trainer.step(&images).expect("warm-up step");
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{name}{size}"), batch),
                &images,
                |b, images| b.iter(|| trainer.step(images).expect("step")),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench_train_step);
criterion_main!(benches);
