//! Checkpoints round-trip exactly, resume exactly, survive interrupted writes and reject
//! checkpoints that do not fit.

mod common;

use std::fs;

use aegan::candle_core::{Device, Tensor};
use aegan::checkpoint::{self, LATEST_FILE};
use aegan::data::synthetic;
use aegan::rng::TrainRng;
use aegan::{AeganError, AeganTrainer, NetworkKind};

fn data() -> Tensor {
    synthetic::sprites(16, 16, 9).to_tensor(&Device::Cpu).unwrap()
}

fn batch(data: &Tensor, step: u64) -> Tensor {
    data.narrow(0, (step as usize % 4) * 4, 4).unwrap()
}

fn train(trainer: &mut AeganTrainer, data: &Tensor, steps: u64) {
    for _ in 0..steps {
        let step = trainer.step_count();
        trainer.step(&batch(data, step)).unwrap();
    }
}

#[test]
fn round_trip_gives_identical_outputs() {
    let mut rng = TrainRng::new(21);
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    let mut trainer = AeganTrainer::new(common::tiny_full(16), &Device::Cpu).unwrap();
    train(&mut trainer, &data, 3);
    trainer.save_checkpoint(dir.path()).unwrap();

    let loaded = AeganTrainer::resume(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(loaded.step_count(), 3);
    assert_eq!(loaded.config(), trainer.config());
    let z = rng.normal((4, 8), &Device::Cpu).unwrap();
    assert_eq!(
        common::max_abs_diff(
            &trainer.model().generate(&z).unwrap(),
            &loaded.model().generate(&z).unwrap()
        ),
        0.0
    );
    assert_eq!(
        common::max_abs_diff(
            &trainer.model().encode(&data).unwrap(),
            &loaded.model().encode(&data).unwrap()
        ),
        0.0
    );
    let (_, nets) = checkpoint::load_networks(dir.path(), &Device::Cpu).unwrap();
    let dx = |n: &aegan::Networks| n.image_discriminator.forward_t(&data, false).unwrap();
    assert_eq!(common::max_abs_diff(&dx(trainer.networks()), &dx(&nets)), 0.0);
    let dz = |n: &aegan::Networks| n.latent_discriminator.forward_t(&z, false).unwrap();
    assert_eq!(common::max_abs_diff(&dz(trainer.networks()), &dz(&nets)), 0.0);
}

#[test]
fn resume_is_exact_n_steps_save_load_m_steps_equals_n_plus_m() {
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    let mut config = common::tiny_full(16);
    config.output_zeroing = 0.1; // exercise the random masks too
    config.image_discriminator.spectral_norm = true; // and the power-iteration state
    assert!(config.generator_average.is_some(), "and the moving average of G");

    let mut straight = AeganTrainer::new(config.clone(), &Device::Cpu).unwrap();
    train(&mut straight, &data, 7);

    let mut first = AeganTrainer::new(config, &Device::Cpu).unwrap();
    train(&mut first, &data, 4);
    first.save_checkpoint(dir.path()).unwrap();
    drop(first);
    let mut resumed = AeganTrainer::resume(dir.path(), &Device::Cpu).unwrap();
    train(&mut resumed, &data, 3);

    assert_eq!(resumed.step_count(), 7);
    let a = common::snapshot(straight.networks());
    let b = common::snapshot(resumed.networks());
    let worst = common::max_weight_diff(&a, &b);
    assert!(worst <= 1e-6, "resumed weights differ by {worst}");
    // Batch-norm running statistics continue too.
    for kind in NetworkKind::ALL {
        for ((name, x), (_, y)) in straight
            .networks()
            .store(kind)
            .all()
            .iter()
            .zip(resumed.networks().store(kind).all())
        {
            assert!(
                common::max_abs_diff(x.as_tensor(), y.as_tensor()) <= 1e-6,
                "{name}"
            );
        }
    }
}

#[test]
fn checkpoint_of_another_config_is_rejected_naming_tensor_and_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let small = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    small.save_checkpoint(dir.path()).unwrap();

    let mut wider_config = common::tiny(16);
    wider_config.generator.widths.max = 32;
    let mut wider = AeganTrainer::new(wider_config, &Device::Cpu).unwrap();
    let before = common::snapshot(wider.networks());
    let err = wider.load_checkpoint(dir.path()).unwrap_err();
    match &err {
        AeganError::ShapeMismatch {
            path,
            tensor,
            expected,
            found,
        } => {
            assert!(path.ends_with("generator.safetensors"), "{err}");
            // The first differing tensor in name order: the first stage's 3×3 conv, 32→32 vs 16→16.
            assert_eq!(tensor, "stages.0.conv.weight");
            assert_eq!(expected, &vec![32, 32, 3, 3]);
            assert_eq!(found, &vec![16, 16, 3, 3]);
        }
        other => panic!("expected ShapeMismatch, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("stages.0.conv.weight")
            && message.contains("[32, 32, 3, 3]")
            && message.contains("[16, 16, 3, 3]"),
        "{message}"
    );
    assert_eq!(
        before,
        common::snapshot(wider.networks()),
        "a failed load must change nothing"
    );

    let mut deeper_config = common::tiny(16);
    deeper_config.encoder.hidden = vec![16, 16];
    let mut deeper = AeganTrainer::new(deeper_config, &Device::Cpu).unwrap();
    let err = deeper.load_checkpoint(dir.path()).unwrap_err();
    assert!(
        matches!(&err, AeganError::TensorSetMismatch { tensor, .. } if tensor.starts_with("head.fc.1")),
        "{err}"
    );
}

#[test]
fn truncated_safetensors_file_is_a_corrupt_checkpoint_error() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    let snapshot = trainer.save_checkpoint(dir.path()).unwrap();
    let file = snapshot.join("encoder.safetensors");
    let bytes = fs::read(&file).unwrap();
    fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let err = AeganTrainer::resume(dir.path(), &Device::Cpu).err().unwrap();
    assert!(
        matches!(&err, AeganError::CorruptCheckpoint { path, .. } if path == &file),
        "{err}"
    );

    fs::write(&file, b"").unwrap();
    assert!(matches!(
        AeganTrainer::resume(dir.path(), &Device::Cpu).err().unwrap(),
        AeganError::CorruptCheckpoint { .. }
    ));
}

#[test]
fn an_interrupted_save_leaves_the_previous_checkpoint_loadable() {
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    let mut trainer = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    train(&mut trainer, &data, 2);
    let first = trainer.save_checkpoint(dir.path()).unwrap();

    // What a kill in the middle of the next save leaves behind: a half-written temporary
    // snapshot and a half-written temporary `latest`.
    let partial = dir.path().join(".tmp-step-00000003");
    fs::create_dir(&partial).unwrap();
    fs::write(partial.join("generator.safetensors"), b"\x10\x00").unwrap();
    fs::write(dir.path().join(".latest.tmp"), b"step-000").unwrap();

    let resumed = AeganTrainer::resume(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(resumed.step_count(), 2);
    assert_eq!(checkpoint::resolve(dir.path()).unwrap(), first);

    // The next complete save cleans up and moves `latest` on; two snapshots are kept.
    train(&mut trainer, &data, 1);
    trainer.save_checkpoint(dir.path()).unwrap();
    train(&mut trainer, &data, 1);
    let last = trainer.save_checkpoint(dir.path()).unwrap();
    assert!(!partial.exists());
    assert_eq!(
        fs::read_to_string(dir.path().join(LATEST_FILE)).unwrap(),
        "step-00000004"
    );
    let snapshots = fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("step-")
        })
        .count();
    assert_eq!(snapshots, 2);
    assert_eq!(AeganTrainer::resume(&last, &Device::Cpu).unwrap().step_count(), 4);
}

#[test]
fn missing_checkpoint_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = AeganTrainer::resume(dir.path(), &Device::Cpu).err().unwrap();
    assert!(matches!(err, AeganError::NoCheckpoint { .. }), "{err}");
}

#[test]
fn pruning_never_touches_another_runs_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    let mut older = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    train(&mut older, &data, 2);
    let older_snapshot = older.save_checkpoint(dir.path()).unwrap();

    // A second run saving three times into the same folder keeps its own newest two and
    // leaves the first run's snapshot alone.
    let mut newer = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    assert_ne!(newer.run_id(), older.run_id());
    let mut saved = Vec::new();
    for _ in 0..3 {
        train(&mut newer, &data, 1);
        saved.push(newer.save_checkpoint(dir.path()).unwrap());
    }
    assert!(
        older_snapshot.join("state.json").is_file(),
        "the older run's snapshot was pruned"
    );
    assert!(!saved[0].exists());
    assert!(saved[1].is_dir() && saved[2].is_dir());
    assert_eq!(
        checkpoint::snapshot_run_id(&older_snapshot).as_deref(),
        Some(older.run_id())
    );

    // A resumed run keeps its id, so it goes on pruning its own snapshots.
    let resumed = AeganTrainer::resume(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(resumed.run_id(), newer.run_id());
}

#[test]
fn snapshots_are_tried_newest_first_when_latest_is_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    let mut trainer = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    train(&mut trainer, &data, 1);
    let first = trainer.save_checkpoint(dir.path()).unwrap();
    train(&mut trainer, &data, 1);
    let second = trainer.save_checkpoint(dir.path()).unwrap();
    fs::write(second.join("optimizer.safetensors"), b"\x00").unwrap();

    let resumed = AeganTrainer::resume_reporting(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(resumed.snapshot, first);
    assert_eq!(resumed.value.step_count(), 1);
    assert_eq!(resumed.skipped.len(), 1);
    assert_eq!(resumed.skipped[0].0, second);
    assert!(matches!(
        resumed.skipped[0].1,
        AeganError::CorruptCheckpoint { .. }
    ));

    fs::remove_file(dir.path().join(LATEST_FILE)).unwrap();
    assert_eq!(checkpoint::snapshots_newest_first(dir.path()), [second, first]);
}

#[test]
fn resume_is_exact_with_every_adaptive_option_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    let mut config = common::tiny(16);
    config.generator_average = Some(aegan::config::GeneratorAverage::HalfLife {
        half_life_images: 20.0,
        ramp_up: 0.5,
    });
    config.lecam = Some(aegan::config::LeCamConfig::default());
    let mut augment = aegan::config::DiffAugmentConfig::all();
    augment.probability = 0.5;
    augment.adaptive = Some(aegan::config::AdaptiveAugment {
        target: 0.6,
        images_to_full: 40.0,
    });
    config.diff_augment = Some(augment);

    let mut straight = AeganTrainer::new(config.clone(), &Device::Cpu).unwrap();
    train(&mut straight, &data, 6);
    let mut first = AeganTrainer::new(config, &Device::Cpu).unwrap();
    train(&mut first, &data, 3);
    first.save_checkpoint(dir.path()).unwrap();
    let mut resumed = AeganTrainer::resume(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(resumed.adaptive_state(), first.adaptive_state());
    train(&mut resumed, &data, 3);

    let state = straight.adaptive_state();
    assert_ne!(state.augment_probability, 0.5, "the controller moved p");
    assert_ne!(state.lecam_real, 0.0, "the anchors moved");
    assert_eq!(resumed.adaptive_state(), state);
    let worst = common::max_weight_diff(
        &common::snapshot(straight.networks()),
        &common::snapshot(resumed.networks()),
    );
    assert!(worst <= 1e-6, "resumed weights differ by {worst}");
    let z = straight.model().sample_latents(4, 1).unwrap();
    assert_eq!(
        common::max_abs_diff(
            &straight.model().generate(&z).unwrap(),
            &resumed.model().generate(&z).unwrap()
        ),
        0.0,
        "the moving average of G continues exactly"
    );
}

#[test]
fn weights_that_are_not_finite_are_refused_by_every_load_and_resume_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    let mut trainer = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    train(&mut trainer, &data, 1);
    let good = trainer.save_checkpoint(dir.path()).unwrap();
    train(&mut trainer, &data, 1);
    let damaged = trainer.save_checkpoint(dir.path()).unwrap();
    let file = damaged.join(checkpoint::network_file(NetworkKind::Generator));
    for value in [f32::NAN, f32::INFINITY] {
        common::poison(&file, "out.bias", value);
        let names_it = |err: &AeganError| {
            matches!(err, AeganError::NonFiniteTensor { path, tensor, .. }
                if path == &file && tensor == "out.bias")
        };
        // The snapshot alone: refused by each way of loading it, naming file and tensor.
        let err = aegan::Model::load(&damaged, &Device::Cpu).err().unwrap();
        assert!(names_it(&err), "Model::load: {err}");
        let err = checkpoint::load_networks(&damaged, &Device::Cpu).err().unwrap();
        assert!(names_it(&err), "load_networks: {err}");
        let err = AeganTrainer::resume(&damaged, &Device::Cpu).err().unwrap();
        assert!(names_it(&err), "resume: {err}");
        assert!(err.to_string().contains(&value.to_string()), "{err}");
        // The checkpoint root: the newest finite snapshot, saying which was skipped and why.
        let resumed = AeganTrainer::resume_reporting(dir.path(), &Device::Cpu).unwrap();
        assert_eq!(
            (resumed.snapshot.as_path(), resumed.value.step_count()),
            (good.as_path(), 1)
        );
        assert_eq!(resumed.skipped.len(), 1);
        assert!(names_it(&resumed.skipped[0].1), "{}", resumed.skipped[0].1);
        let model = aegan::Model::load_reporting(dir.path(), &Device::Cpu).unwrap();
        assert_eq!(model.snapshot, good);
    }
}

#[test]
fn a_snapshot_of_weights_that_are_not_finite_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    let first = trainer.save_checkpoint(dir.path()).unwrap();
    let store = trainer.networks().store(NetworkKind::Encoder);
    let (name, var) = store.trainable().into_iter().next().unwrap();
    var.set(&(var.as_tensor() * f64::INFINITY).unwrap()).unwrap();
    let err = trainer.save_checkpoint(dir.path()).err().unwrap();
    assert!(
        matches!(&err, AeganError::NonFiniteTensor { tensor, path, .. }
            if tensor == &name && path.ends_with(checkpoint::network_file(NetworkKind::Encoder))),
        "{err}"
    );
    let left: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 2, "the first snapshot and `latest` only: {left:?}");
    assert_eq!(checkpoint::resolve(dir.path()).unwrap(), first);
}

#[test]
fn resume_is_exact_with_every_architecture_option_on() {
    let dir = tempfile::tempdir().unwrap();
    // 64×64 is the smallest size with a skip-layer excitation (4×4 → 64×64).
    let data = synthetic::lesions(16, 64, 9).to_tensor(&Device::Cpu).unwrap();
    let mut config = common::tiny(64);
    config.generator.skip_outputs = true;
    config.generator.excitation = true;
    config.image_discriminator.residual = true;
    config.image_discriminator.minibatch_std = Some(2);
    config.consistency = Some(aegan::config::ConsistencyConfig::default());
    config.self_supervision = Some(aegan::config::SelfSupervisionConfig::default());
    config.fake_target = 0.0;
    config.progressive = Some(aegan::config::ProgressiveConfig::new(8));

    let mut straight = AeganTrainer::new(config.clone(), &Device::Cpu).unwrap();
    train(&mut straight, &data, 6);
    let mut first = AeganTrainer::new(config, &Device::Cpu).unwrap();
    train(&mut first, &data, 3);
    first.save_checkpoint(dir.path()).unwrap();
    let mut resumed = AeganTrainer::resume(dir.path(), &Device::Cpu).unwrap();
    train(&mut resumed, &data, 3);
    let worst = common::max_weight_diff(
        &common::snapshot(straight.networks()),
        &common::snapshot(resumed.networks()),
    );
    assert!(worst <= 1e-6, "resumed weights differ by {worst}");
    let names: Vec<String> = common::snapshot(resumed.networks())
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for expected in [
        "generator/excitation.64.fc.0.weight",
        "generator/to_rgb.4.weight",
        "image_discriminator/down.0.skip.weight",
        "image_discriminator/decoder.out.weight",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing");
    }
}
