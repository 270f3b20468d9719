//! The machine's ceiling for this work: the rate of one large f32 matrix product (candle's
//! `matmul`, which runs the same `gemm` kernels as aegan's convolutions), reported as
//! floating-point operations per second ("elem/s" in criterion's output).
//!
//! A training step can't run its matrix products faster than this, which bounds what any
//! speed-up can reach: at `author32`, whose step is almost all matrix products, a rate of
//! 1.5× PyTorch's would need more than this ceiling (see bench/README.md).
//!
//! ```sh
//! cargo bench --bench ceiling
//! RAYON_NUM_THREADS=1 cargo bench --bench ceiling -- narrow   # one core, the narrow products
//! ```

use aegan::candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn bench_matmul(c: &mut Criterion) {
    let device = Device::Cpu;
    let mut group = c.benchmark_group("ceiling");
    group.sample_size(10);
    for n in [1024, 2048] {
        let a = Tensor::randn(0f32, 1.0, (n, n), &device).expect("matrix");
        let b = Tensor::randn(0f32, 1.0, (n, n), &device).expect("matrix");
        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        group.bench_function(BenchmarkId::new("matmul_flops", n), |bench| {
            bench.iter(|| a.matmul(&b).expect("product"))
        });
    }
    // The products of E's last layer at 32×32 (128 output channels, 128·3·3 inputs per
    // pixel) on one image's 4×4 plane (16 columns) and on four side by side (64 columns, as the
    // convolutions multiply small planes): gemm's rate on the narrow one is about half.
    for n in [16, 64] {
        let a = Tensor::randn(0f32, 1.0, (128, 1152), &device).expect("matrix");
        let b = Tensor::randn(0f32, 1.0, (1152, n), &device).expect("matrix");
        group.throughput(Throughput::Elements(2 * 128 * 1152 * n as u64));
        group.bench_function(BenchmarkId::new("narrow_product_flops", n), |bench| {
            bench.iter(|| a.matmul(&b).expect("product"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_matmul);
criterion_main!(benches);
