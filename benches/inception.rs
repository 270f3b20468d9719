//! FID Inception-v3 features per second (`pool3`, 2,048 per image) from 32×32 images, the
//! path every FID and KID measurement takes. Needs the weights, which are never downloaded:
//! `$AEGAN_INCEPTION`, else `../shared/models/inception-2015-12-05-fid.safetensors`; without
//! them the bench says so and measures nothing.
//!
//! ```sh
//! cargo bench --bench inception
//! .venv-bench/bin/python bench/inception_twin.py --threads 2   # PyTorch, same layer shapes
//! ```

mod common;

use std::path::PathBuf;

use aegan::data::synthetic;
use aegan::metrics::FidInception;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn weights() -> Option<PathBuf> {
    let path = std::env::var_os("AEGAN_INCEPTION")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/models/inception-2015-12-05-fid.safetensors"));
    path.is_file().then_some(path)
}

fn bench_inception(c: &mut Criterion) {
    aegan::keep_freed_memory();
    let Some(path) = weights() else {
        eprintln!("inception bench: no weights (set AEGAN_INCEPTION); nothing measured");
        return;
    };
    let device = common::bench_device();
    let mut group = c.benchmark_group("inception");
    group.sample_size(10);
    for batch in [16, 64] {
        let net = FidInception::load(&path, &device)
            .expect("weights")
            .with_batch_size(batch);
        let images = synthetic::lesions(batch, 32, 0)
            .to_tensor(&device)
            .expect("images");
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("features", batch), &images, |b, images| {
            b.iter(|| net.features(images).expect("features"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_inception);
criterion_main!(benches);
