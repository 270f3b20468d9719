//! The generic path (what CUDA and Metal run: candle's operations, no aegan CPU kernel) run on
//! the CPU and compared with aegan's CPU kernels, forward and every gradient, and through whole
//! training steps. `cargo test generic` selects these tests.

mod common;

use aegan::candle_core::{Device, Tensor, Var};
use aegan::data::synthetic;
use aegan::ops::{self, generic_ops, with_generic_ops};
use aegan::AeganTrainer;

/// Largest |a − b| over max(1, largest |b|): a relative difference that tolerates values
/// near zero.
fn relative_difference(a: &Tensor, b: &Tensor) -> f32 {
    let diff = common::max_abs_diff(a, b);
    let scale = common::max_abs(b);
    diff / scale.max(1.0)
}

fn random(shape: &[usize], seed: u64) -> Var {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|i| (((i as u64 + 1) * (seed * 2 + 1) * 2_654_435_761) % 10_007) as f32 / 5_003.5 - 1.0)
        .collect();
    Var::from_tensor(&Tensor::from_vec(values, shape, &Device::Cpu).unwrap()).unwrap()
}

/// The output of `op` on `inputs` and the gradients of Σ output·w (w fixed, so every output
/// element's gradient differs) with respect to every input.
fn output_and_gradients(op: &dyn Fn(&[Tensor]) -> Tensor, inputs: &[Var]) -> (Tensor, Vec<Tensor>) {
    let tensors: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
    let out = op(&tensors);
    let weights = random(out.dims(), 99);
    let grads = (&out * weights.as_tensor())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let grads = inputs
        .iter()
        .map(|v| grads.get(v.as_tensor()).expect("a gradient").clone())
        .collect();
    (out, grads)
}

/// Compares the two paths of `op`; returns whether they differed at all (two different
/// computations rarely agree to the last bit, so that shows both paths ran).
fn compare(name: &str, op: &dyn Fn(&[Tensor]) -> Tensor, shapes: &[&[usize]]) -> bool {
    let inputs: Vec<Var> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| random(s, i as u64 + 1))
        .collect();
    assert!(!generic_ops());
    let (fast, fast_grads) = output_and_gradients(op, &inputs);
    let (generic, generic_grads) = with_generic_ops(|| {
        assert!(generic_ops());
        output_and_gradients(op, &inputs)
    });
    assert!(!generic_ops(), "the switch is put back");
    let d = relative_difference(&generic, &fast);
    assert!(d <= 1e-4, "{name}: forward differs by {d}");
    let mut differed = d > 0.0;
    for (i, (g, f)) in generic_grads.iter().zip(&fast_grads).enumerate() {
        let d = relative_difference(g, f);
        assert!(d <= 1e-4, "{name}: gradient of input {i} differs by {d}");
        differed |= d > 0.0;
    }
    differed
}

#[test]
fn generic_convolutions_match_the_cpu_kernels_forward_and_gradients() {
    let mut differed = false;
    for (stride, before, after, k) in [
        (1, 1, 1, 3),
        (2, 1, 1, 3),
        (1, 1, 2, 4),
        (2, 0, 0, 1),
        (1, 2, 2, 5),
    ] {
        differed |= compare(
            &format!("conv2d stride {stride} pad {before}/{after} kernel {k}"),
            &|t| ops::conv2d(&t[0], &t[1], stride, before, after).unwrap(),
            &[&[2, 3, 8, 8], &[5, 3, k, k]],
        );
    }
    for (before, after, k) in [(1, 1, 3), (1, 2, 4)] {
        differed |= compare(
            &format!("upsample2x_conv2d pad {before}/{after} kernel {k}"),
            &|t| ops::upsample2x_conv2d(&t[0], &t[1], 1, before, after).unwrap(),
            &[&[2, 4, 5, 5], &[3, 4, k, k]],
        );
    }
    differed |= compare(
        "conv2d_rect 1×7",
        &|t| ops::conv2d_rect(&t[0], &t[1], 1, (0, 3)).unwrap(),
        &[&[2, 3, 9, 9], &[4, 3, 1, 7]],
    );
    differed |= compare(
        "conv_transpose2d stride 2",
        &|t| ops::conv_transpose2d(&t[0], &t[1], 2, 1).unwrap(),
        &[&[2, 4, 5, 5], &[4, 3, 4, 4]],
    );
    assert!(
        differed,
        "the two paths agree to the last bit everywhere: did both run?"
    );
}

#[test]
fn generic_normalisation_and_activations_match_the_cpu_kernels_forward_and_gradients() {
    let differed = compare(
        "batch_norm_leaky_relu",
        &|t| {
            ops::batch_norm_leaky_relu(&t[0], &t[1], &t[2], 1e-5, 0.2)
                .unwrap()
                .0
        },
        &[&[4, 3, 5, 5], &[3], &[3]],
    );
    compare(
        "leaky_relu",
        &|t| ops::leaky_relu(&t[0], 0.2).unwrap(),
        &[&[3, 4, 6]],
    );
    compare(
        "bias_leaky_relu",
        &|t| ops::bias_leaky_relu(&t[0], &t[1], 0.2).unwrap(),
        &[&[2, 3, 4, 4], &[3]],
    );
    compare(
        "scale_shift_leaky_relu",
        &|t| ops::scale_shift_leaky_relu(&t[0], &t[1], &t[2], 0.2).unwrap(),
        &[&[2, 3, 4, 4], &[3], &[3]],
    );
    assert!(
        differed,
        "batch norm agrees to the last bit on both paths: did both run?"
    );
}

/// The step losses of `steps` training steps from a fresh trainer.
fn losses(config: &aegan::AeganConfig, steps: u64) -> Vec<f32> {
    let device = Device::Cpu;
    let data = synthetic::lesions(16, config.image_size, 1);
    let sampler = aegan::data::BatchSampler::new(data.len(), config.batch_size, config.seed).unwrap();
    let mut trainer = AeganTrainer::new(config.clone(), &device).unwrap();
    let mut out = Vec::new();
    for step in 0..steps {
        let l = trainer
            .step(&data.batch(&sampler.batch(step), &device).unwrap())
            .unwrap();
        out.extend([
            l.discriminator.image,
            l.discriminator.latent,
            l.generator.image_reconstruction,
            l.generator.latent_reconstruction,
            l.generator.total,
        ]);
    }
    out
}

#[test]
fn generic_training_steps_match_the_cpu_kernels() {
    // G's per-pixel noise is seeded by the bits of each latent, so the last-bit differences
    // between the two paths in E(x) draw other noise for the reconstructions from the second
    // step on; the noise kernel's two paths are compared on their own (`ops::noise`).
    let mut tiny = common::tiny(16);
    tiny.generator.noise = false;
    let mut progressive = tiny.clone();
    progressive.progressive = Some(aegan::config::ProgressiveConfig::new(8));
    let mut spectral = tiny.clone();
    spectral.image_discriminator.spectral_norm = true;
    for (name, config) in [
        ("tiny", tiny),
        ("progressive", progressive),
        ("spectral norm", spectral),
    ] {
        let fast = losses(&config, 5);
        let generic = with_generic_ops(|| losses(&config, 5));
        assert_ne!(
            fast, generic,
            "{name}: identical to the last bit: did both paths run?"
        );
        for (i, (g, f)) in generic.iter().zip(&fast).enumerate() {
            let d = (g - f).abs() / f.abs().max(1.0);
            assert!(
                d <= 1e-4,
                "{name}: loss {i} (step {}) is {g} generic, {f} on the CPU kernels",
                i / 5
            );
        }
    }
}
