//! Progressive growing: shapes at every phase, the two ends of a fade, the grown network
//! against one built at its size, exact resume in the middle of a fade, and 256×256.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use aegan::candle_core::{DType, Device, Tensor};
use aegan::config::ProgressiveConfig;
use aegan::data::{synthetic, BatchSampler};
use aegan::progressive::{downsample_area, upsample_nearest, Growth};
use aegan::{AeganConfig, AeganError, AeganTrainer, LoopOptions, Networks, TrainingLoop};

fn progressive(size: usize, images_per_phase: u64, images_per_fade: u64) -> AeganConfig {
    let mut c = common::tiny_full(size);
    assert!(c.generator_average.is_some(), "the average of G grows with G");
    c.progressive = Some(ProgressiveConfig {
        start_size: 4,
        images_per_phase,
        images_per_fade,
    });
    c
}

fn images(n: usize, size: usize) -> Tensor {
    synthetic::lesions(n, size, 11).to_tensor(&Device::Cpu).unwrap()
}

fn fading(resolution: usize, alpha: f64) -> Option<Growth> {
    Some(Growth { resolution, alpha })
}

#[test]
fn every_phase_has_the_right_shapes_from_2x2_to_32x32() {
    let mut config = progressive(32, 8, 8);
    config.progressive.as_mut().unwrap().start_size = 2;
    let mut nets = Networks::new(&config, &Device::Cpu).unwrap();
    let z = Tensor::zeros(
        (3, config.latent_dim),
        aegan::candle_core::DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    for r in [2, 4, 8, 16, 32] {
        for alpha in [0.0, 0.5, 1.0] {
            nets.set_growth(fading(r, alpha)).unwrap();
            assert_eq!(nets.resolution(), r);
            let x = nets.generator.forward_t(&z, true).unwrap();
            assert_eq!(x.dims(), &[3, 3, r, r], "G at {r} α {alpha}");
            let ema = nets.sampler().unwrap().forward_t(&z, false).unwrap();
            assert_eq!(ema.dims(), &[3, 3, r, r], "average of G at {r}");
            let e = nets.encoder.forward_t(&x, true).unwrap();
            assert_eq!(e.dims(), &[3, config.latent_dim], "E at {r} α {alpha}");
            let d = nets.image_discriminator.forward_t(&x, true).unwrap();
            assert_eq!(d.dims(), &[3, 1], "Dx at {r} α {alpha}");
            let dz = nets.latent_discriminator.forward_t(&e, true).unwrap();
            assert_eq!(dz.dims(), &[3, 1]);
        }
    }
    // Images of the wrong size for the phase are refused, not silently resized.
    nets.set_growth(fading(8, 1.0)).unwrap();
    assert!(nets.encoder.forward_t(&images(2, 16), false).is_err());
    // Resolutions outside the schedule are refused.
    assert!(nets.set_growth(fading(64, 1.0)).is_err());
    assert!(nets.set_growth(fading(8, 1.5)).is_err());
    let direct = Networks::new(&common::tiny(32), &Device::Cpu);
    assert!(direct.unwrap().set_growth(fading(16, 1.0)).is_err());
}

#[test]
fn at_alpha_zero_a_new_block_changes_nothing() {
    let config = progressive(32, 8, 8);
    let mut nets = Networks::new(&config, &Device::Cpu).unwrap();
    let z = aegan::rng::TrainRng::new(5)
        .normal((4, config.latent_dim), &Device::Cpu)
        .unwrap();
    let real = images(4, 32);
    for r in [8, 16, 32] {
        nets.set_growth(fading(r / 2, 1.0)).unwrap();
        let previous = nets.generator.forward_t(&z, false).unwrap();
        let small = downsample_area(&real, 32 / (r / 2)).unwrap();
        let previous_z = nets.encoder.forward_t(&small, false).unwrap();
        let previous_d = nets.image_discriminator.forward_t(&small, false).unwrap();

        nets.set_growth(fading(r, 0.0)).unwrap();
        let faded_in = nets.generator.forward_t(&z, false).unwrap();
        let upsampled = upsample_nearest(&previous, 2).unwrap();
        assert_eq!(common::max_abs_diff(&faded_in, &upsampled), 0.0, "G at {r}");

        let at_r = downsample_area(&real, 32 / r).unwrap();
        let z_r = nets.encoder.forward_t(&at_r, false).unwrap();
        assert!(common::max_abs_diff(&z_r, &previous_z) < 1e-5, "E at {r}");
        let d_r = nets.image_discriminator.forward_t(&at_r, false).unwrap();
        assert!(common::max_abs_diff(&d_r, &previous_d) < 1e-5, "Dx at {r}");

        // And α matters: halfway in, G is neither the old nor the new output.
        nets.set_growth(fading(r, 0.5)).unwrap();
        let halfway = nets.generator.forward_t(&z, false).unwrap();
        assert!(
            common::max_abs_diff(&halfway, &upsampled) > 1e-4,
            "G at {r} α 0.5"
        );
    }
}

#[test]
fn grown_networks_compute_what_networks_built_at_that_size_compute() {
    let config = progressive(16, 8, 8);
    let mut trainer = AeganTrainer::new(config.clone(), &Device::Cpu).unwrap();
    let data = synthetic::lesions(16, 16, 2);
    let sampler = BatchSampler::new(data.len(), config.batch_size, config.seed).unwrap();
    let until_full = config.progressive.unwrap().images_until_full_size(16) / 4;
    let mut seen = Vec::new();
    for step in 0..until_full + 2 {
        seen.push(trainer.resolution());
        let batch = data.batch(&sampler.batch(step), &Device::Cpu).unwrap();
        trainer.step(&batch).unwrap();
        // Between steps the networks are at the stage the trainer reports.
        assert_eq!(trainer.networks().growth(), trainer.growth(), "after step {step}");
    }
    assert_eq!(seen.first(), Some(&4));
    assert!(seen.contains(&8));
    assert_eq!(trainer.growth(), Some(Growth::stable(16)));

    let mut direct_config = config.clone();
    direct_config.progressive = None;
    let direct = Networks::new(&direct_config, &Device::Cpu).unwrap();
    let grown = trainer.networks();
    for ((stem, target), (_, source)) in direct.saved_stores().into_iter().zip(grown.saved_stores()) {
        let source = source.all();
        for (name, var) in target.all() {
            let (_, value) = source
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap_or_else(|| panic!("{stem}/{name} missing from the grown network"));
            var.set(value.as_tensor()).unwrap();
        }
    }
    let z = trainer.model().sample_latents(4, 9).unwrap();
    let x = images(4, 16);
    let pairs = [
        (
            grown.generator.forward_t(&z, false).unwrap(),
            direct.generator.forward_t(&z, false).unwrap(),
        ),
        (
            grown.sampler().unwrap().forward_t(&z, false).unwrap(),
            direct.sampler().unwrap().forward_t(&z, false).unwrap(),
        ),
        (
            grown.encoder.forward_t(&x, false).unwrap(),
            direct.encoder.forward_t(&x, false).unwrap(),
        ),
        (
            grown.image_discriminator.forward_t(&x, false).unwrap(),
            direct.image_discriminator.forward_t(&x, false).unwrap(),
        ),
    ];
    for (i, (a, b)) in pairs.iter().enumerate() {
        assert_eq!(common::max_abs_diff(a, b), 0.0, "network {i}");
    }
}

fn train(trainer: &mut AeganTrainer, data: &aegan::data::ImageSet, until: u64) {
    let sampler = BatchSampler::new(data.len(), trainer.config().batch_size, 3).unwrap();
    while trainer.step_count() < until {
        let batch = data
            .batch(&sampler.batch(trainer.step_count()), &Device::Cpu)
            .unwrap();
        trainer.step(&batch).unwrap();
    }
}

#[test]
fn resume_in_the_middle_of_a_fade_continues_it_exactly() {
    // Batch 4: steps 0-1 at 4×4, steps 2-5 fade 8×8 in, 6-7 at 8×8, then 16×16 fades in.
    let config = progressive(16, 8, 16);
    let data = synthetic::lesions(16, 16, 4);
    let dir = tempfile::tempdir().unwrap();

    let mut straight = AeganTrainer::new(config.clone(), &Device::Cpu).unwrap();
    train(&mut straight, &data, 10);

    let mut first = AeganTrainer::new(config.clone(), &Device::Cpu).unwrap();
    train(&mut first, &data, 5);
    let mid_fade = first.growth().unwrap();
    assert_eq!(mid_fade.resolution, 8);
    assert!(mid_fade.alpha > 0.0 && mid_fade.is_fading(), "{mid_fade:?}");
    let snapshot = first.save_checkpoint(dir.path()).unwrap();
    drop(first);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(snapshot.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["growth"]["resolution"], 8);
    assert_eq!(state["growth"]["alpha"], mid_fade.alpha);

    let mut resumed = AeganTrainer::resume(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(resumed.growth(), Some(mid_fade));
    assert_eq!(resumed.networks().growth(), Some(mid_fade));
    train(&mut resumed, &data, 10);
    assert_eq!(resumed.resolution(), 16);

    let a = common::snapshot(straight.networks());
    let b = common::snapshot(resumed.networks());
    let worst = common::max_weight_diff(&a, &b);
    assert!(worst <= 1e-6, "resumed weights differ by {worst}");

    // A checkpoint whose recorded phase disagrees with its step is refused.
    let path = snapshot.join("state.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut state: serde_json::Value = serde_json::from_str(&text).unwrap();
    state["growth"]["resolution"] = 16.into();
    std::fs::write(&path, serde_json::to_string(&state).unwrap()).unwrap();
    match AeganTrainer::resume(&snapshot, &Device::Cpu) {
        Err(AeganError::CorruptCheckpoint { reason, .. }) => assert!(reason.contains("growth"), "{reason}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a checkpoint with the wrong phase was accepted"),
    }
}

#[test]
fn trainer_serves_real_images_at_the_current_resolution() {
    let config = progressive(16, 8, 8);
    let mut trainer = AeganTrainer::new(config, &Device::Cpu).unwrap();
    assert_eq!(trainer.resolution(), 4);
    let full = images(4, 16);
    let served = trainer.at_current_resolution(&full).unwrap();
    assert_eq!(served.dims(), &[4, 3, 4, 4]);
    let expected = downsample_area(&full, 4).unwrap();
    assert!(common::max_abs_diff(&served, &expected) < 1e-6);
    // Full-size, half-size and current-size batches are all accepted.
    trainer.step(&full).unwrap();
    trainer.step(&downsample_area(&full, 4).unwrap()).unwrap();
    // Smaller than the current resolution or not square is an error naming the shape.
    trainer.step(&full).unwrap();
    assert_eq!(trainer.resolution(), 8);
    let err = trainer.step(&downsample_area(&full, 4).unwrap()).unwrap_err();
    assert!(matches!(err, AeganError::BadInput { .. }), "{err}");
    assert!(err.to_string().contains("8..=16"), "{err}");
}

#[test]
fn the_256_path_runs_end_to_end_on_synthetic_data() {
    let mut config = progressive(256, 2, 2);
    config.batch_size = 2;
    let data = synthetic::lesions(4, 256, 6);
    let dir = tempfile::tempdir().unwrap();
    let mut trainer = AeganTrainer::new(config.clone(), &Device::Cpu).unwrap();
    // One step per stable phase and one per fade: 4 → 256 is six doublings, 12 steps.
    let until_full = config.progressive.unwrap().images_until_full_size(256) / 2;
    assert_eq!(until_full, 12);
    let mut options = LoopOptions::new(dir.path(), until_full + 1);
    options.progress = false;
    options.save_every = 4;
    let summary = TrainingLoop::new(options, Arc::new(AtomicBool::new(false)))
        .run(&mut trainer, &data)
        .unwrap();
    assert_eq!(summary.final_step, until_full + 1);
    assert_eq!(trainer.growth(), Some(Growth::stable(256)));
    let losses = summary.last_losses.unwrap();
    assert!(losses.named().iter().all(|(_, v)| v.is_finite()));
    let z = trainer.model().sample_latents(2, 0).unwrap();
    assert_eq!(trainer.model().generate(&z).unwrap().dims(), &[2, 3, 256, 256]);
    // Sample grids were written at each saved resolution, named by it.
    let history: Vec<String> = std::fs::read_dir(dir.path().join("history"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for r in ["16px", "64px", "256px"] {
        assert!(
            history.iter().any(|n| n.ends_with(&format!("-{r}.png"))),
            "{r} in {history:?}"
        );
    }
    let grid = image::open(dir.path().join("samples.png")).unwrap();
    assert!(grid.width() > 8 * 256, "256×256 samples are shown at full size");
}

#[test]
fn resampling_by_a_factor_of_zero_is_an_error() {
    let x = Tensor::zeros((1, 3, 4, 4), DType::F32, &Device::Cpu).unwrap();
    assert!(downsample_area(&x, 0)
        .unwrap_err()
        .to_string()
        .contains("factor of 0"));
    assert!(upsample_nearest(&x, 0)
        .unwrap_err()
        .to_string()
        .contains("factor of 0"));
}

#[test]
fn downsampling_to_a_side_reports_the_sizes_it_cannot_reach() {
    use aegan::ops::{downsample_area_to, try_downsample_area_to};
    let image = |h: usize, w: usize| {
        Tensor::arange(0f32, (h * w) as f32, &Device::Cpu)
            .unwrap()
            .reshape((1, 1, h, w))
            .unwrap()
    };
    let dims = |t: Option<Tensor>| t.map(|t| t.dims().to_vec());
    // 4×4 → 2×2: the mean of each 2×2 block; the top-left block is 0, 1, 4, 5.
    let small = try_downsample_area_to(&image(4, 4), 2).unwrap().unwrap();
    assert_eq!(
        small.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        [2.5, 4.5, 10.5, 12.5]
    );
    // No larger than the side: as it is, square or not.
    assert_eq!(
        dims(try_downsample_area_to(&image(2, 1), 2).unwrap()),
        Some(vec![1, 1, 2, 1])
    );
    // Larger and unreachable: a side that does not divide, or not square.
    assert!(try_downsample_area_to(&image(6, 6), 4).unwrap().is_none());
    assert!(try_downsample_area_to(&image(8, 4), 4).unwrap().is_none());
    // The lenient form gives those back unchanged.
    assert_eq!(downsample_area_to(&image(6, 6), 4).unwrap().dims(), [1, 1, 6, 6]);
}
