//! The inference type: loading, sampling, encoding, reconstruction and interpolation.

mod common;

use aegan::candle_core::{Device, Tensor};
use aegan::config::ProgressiveConfig;
use aegan::data::synthetic;
use aegan::model::interpolate_latents;
use aegan::{AeganError, AeganTrainer, Interpolation, Model};

fn trained(config: aegan::AeganConfig, steps: u64) -> AeganTrainer {
    let data = synthetic::lesions(8, config.image_size, 1)
        .to_tensor(&Device::Cpu)
        .unwrap();
    let mut trainer = AeganTrainer::new(config, &Device::Cpu).unwrap();
    for step in 0..steps {
        let batch = data.narrow(0, (step as usize % 2) * 4, 4).unwrap();
        trainer.step(&batch).unwrap();
    }
    trainer
}

fn norms(z: &Tensor) -> Vec<f32> {
    z.sqr()
        .unwrap()
        .sum(1)
        .unwrap()
        .sqrt()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

#[test]
fn a_loaded_checkpoint_samples_what_the_trainer_samples_from_the_moving_average() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = trained(common::tiny(16), 3);
    assert!(trainer.config().generator_average.is_some());
    trainer.save_checkpoint(dir.path()).unwrap();
    let model = Model::load(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(model.config(), trainer.config());

    let samples = model.sample(6, 42).unwrap();
    assert_eq!(samples.dims(), &[6, 3, 16, 16]);
    let z = model.sample_latents(6, 42).unwrap();
    assert_eq!(
        common::max_abs_diff(&samples, &trainer.model().generate(&z).unwrap()),
        0.0
    );
    // From the average, not from G.
    let from_g = trainer.networks().generator.forward_t(&z, false).unwrap();
    assert!(common::max_abs_diff(&samples, &from_g) > 0.0);
    // Latent i does not depend on how many are drawn.
    let first = model.sample(2, 42).unwrap();
    assert_eq!(
        common::max_abs_diff(&first, &samples.narrow(0, 0, 2).unwrap()),
        0.0
    );
    assert!(common::max_abs_diff(&first, &model.sample(2, 43).unwrap()) > 0.0);
}

#[test]
fn encoding_and_reconstruction_resize_inputs_to_the_models_resolution() {
    let model = trained(common::tiny(16), 2).model();
    let x16 = synthetic::lesions(4, 16, 3).to_tensor(&Device::Cpu).unwrap();
    let x32 = aegan::ops::upsample_nearest(&x16, 2).unwrap();
    let z = model.encode(&x16).unwrap();
    assert_eq!(z.dims(), &[4, 8]);
    // A 2× nearest upsample, area-downsampled back, is the same image.
    assert!(common::max_abs_diff(&z, &model.encode(&x32).unwrap()) < 1e-5);
    let recon = model.reconstruct(&x32).unwrap();
    assert_eq!(recon.dims(), &[4, 3, 16, 16]);
    let through_g = model.networks().generator.forward_t(&z, false).unwrap();
    assert!(
        common::max_abs_diff(&recon, &through_g) < 1e-5,
        "G itself, not the average"
    );

    for bad in [
        Tensor::zeros((2, 1, 16, 16), aegan::candle_core::DType::F32, &Device::Cpu).unwrap(),
        Tensor::zeros((2, 3, 24, 24), aegan::candle_core::DType::F32, &Device::Cpu).unwrap(),
        Tensor::zeros((2, 3, 16, 8), aegan::candle_core::DType::F32, &Device::Cpu).unwrap(),
        Tensor::zeros((3, 16, 16), aegan::candle_core::DType::F32, &Device::Cpu).unwrap(),
    ] {
        let err = model.encode(&bad).unwrap_err();
        assert!(
            matches!(err, AeganError::BadInput { .. }),
            "{:?}: {err}",
            bad.dims()
        );
    }
}

#[test]
fn a_checkpoint_taken_mid_growth_works_at_its_own_resolution() {
    let mut config = common::tiny(16);
    config.progressive = Some(ProgressiveConfig {
        start_size: 4,
        images_per_phase: 1_000,
        images_per_fade: 1_000,
    });
    let trainer = trained(config, 1);
    let model = trainer.model();
    assert_eq!(model.resolution(), 4);
    assert_eq!(model.sample(2, 0).unwrap().dims(), &[2, 3, 4, 4]);
    let x = synthetic::lesions(2, 16, 0).to_tensor(&Device::Cpu).unwrap();
    assert_eq!(model.reconstruct(&x).unwrap().dims(), &[2, 3, 4, 4]);
}

#[test]
fn interpolation_starts_and_ends_at_the_reconstructions() {
    let model = trained(common::tiny(16), 2).model();
    let x = synthetic::lesions(2, 16, 5).to_tensor(&Device::Cpu).unwrap();
    let recon = model.reconstruct(&x).unwrap();
    for how in [Interpolation::Linear, Interpolation::Spherical] {
        let path = model
            .interpolate(&x.get(0).unwrap(), &x.get(1).unwrap(), 5, how)
            .unwrap();
        assert_eq!(path.dims(), &[5, 3, 16, 16]);
        let ends = Tensor::cat(&[path.get(0).unwrap(), path.get(4).unwrap()], 0)
            .unwrap()
            .reshape((2, 3, 16, 16))
            .unwrap();
        assert!(common::max_abs_diff(&ends, &recon) < 1e-4, "{how:?}");
    }
    let err = model
        .interpolate(&x.get(0).unwrap(), &x.get(1).unwrap(), 1, Interpolation::Linear)
        .unwrap_err();
    assert!(err.to_string().contains("at least 2"), "{err}");
}

#[test]
fn spherical_interpolation_keeps_the_norm_where_the_line_cuts_the_corner() {
    let z0 = Tensor::new(&[3f32, 0.0, 0.0], &Device::Cpu).unwrap();
    let z1 = Tensor::new(&[0f32, 3.0, 0.0], &Device::Cpu).unwrap();
    let arc = interpolate_latents(&z0, &z1, 5, Interpolation::Spherical).unwrap();
    for n in norms(&arc) {
        assert!((n - 3.0).abs() < 1e-5, "{n}");
    }
    let line = interpolate_latents(&z0, &z1, 3, Interpolation::Linear).unwrap();
    assert_eq!(line.get(1).unwrap().to_vec1::<f32>().unwrap(), [1.5, 1.5, 0.0]);
    // The arc's midpoint is at 45°.
    let mid = arc.get(2).unwrap().to_vec1::<f32>().unwrap();
    assert!((mid[0] - mid[1]).abs() < 1e-5 && mid[0] > 2.0, "{mid:?}");
    // Parallel latents: the arc degenerates to the line, without dividing by zero.
    let same = interpolate_latents(&z0, &z0, 3, Interpolation::Spherical).unwrap();
    assert!(same
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .all(|v| v.is_finite()));
}
