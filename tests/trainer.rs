//! The trainer updates the right networks, stays finite, learns, and is deterministic.

mod common;

use aegan::candle_core::{Device, Tensor};
use aegan::data::{synthetic, BatchSampler};
use aegan::rng::TrainRng;
use aegan::{AeganError, AeganTrainer, NetworkKind};

fn changed_networks(before: &[(String, Vec<f32>)], after: &[(String, Vec<f32>)]) -> Vec<&'static str> {
    let mut changed = Vec::new();
    for kind in NetworkKind::ALL {
        let prefix = format!("{}/", kind.name());
        let differs = before
            .iter()
            .zip(after)
            .filter(|((name, _), _)| name.starts_with(&prefix))
            .any(|((_, a), (_, b))| a != b);
        if differs {
            changed.push(kind.name());
        }
    }
    changed
}

fn batch(n: usize, size: usize) -> Tensor {
    synthetic::lesions(n, size, 3).to_tensor(&Device::Cpu).unwrap()
}

#[test]
fn one_step_changes_all_four_networks_and_losses_are_finite() {
    let mut trainer = AeganTrainer::new(common::tiny_full(16), &Device::Cpu).unwrap();
    let before = common::snapshot(trainer.networks());
    let losses = trainer.step(&batch(4, 16)).unwrap();
    let after = common::snapshot(trainer.networks());
    assert_eq!(
        changed_networks(&before, &after),
        [
            "generator",
            "encoder",
            "image_discriminator",
            "latent_discriminator"
        ]
    );
    assert!(losses.named().iter().all(|(_, v)| v.is_finite()), "{losses:?}");
    assert_eq!(losses.step, 1);
    assert_eq!(trainer.step_count(), 1);
}

#[test]
fn discriminator_phase_updates_only_the_discriminators() {
    let mut trainer = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    let before = common::snapshot(trainer.networks());
    trainer.discriminator_step(&batch(4, 16), None).unwrap();
    let after = common::snapshot(trainer.networks());
    assert_eq!(
        changed_networks(&before, &after),
        ["image_discriminator", "latent_discriminator"]
    );
}

#[test]
fn generator_phase_updates_only_generator_and_encoder() {
    let mut trainer = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    let before = common::snapshot(trainer.networks());
    trainer.generator_step(&batch(4, 16), None).unwrap();
    let after = common::snapshot(trainer.networks());
    assert_eq!(changed_networks(&before, &after), ["generator", "encoder"]);
}

#[test]
fn same_seed_gives_the_same_weights_after_ten_steps() {
    let run = |seed: u64| {
        let mut config = common::tiny(16);
        config.seed = seed;
        let mut trainer = AeganTrainer::new(config, &Device::Cpu).unwrap();
        let data = batch(8, 16);
        for i in 0..10 {
            trainer.step(&data.narrow(0, (i % 2) * 4, 4).unwrap()).unwrap();
        }
        common::snapshot(trainer.networks())
    };
    let a = run(5);
    assert_eq!(a, run(5));
    assert_ne!(a, run(6));
}

#[test]
fn small_model_halves_its_reconstruction_error_on_64_synthetic_images() {
    let mut config = common::tiny(32);
    config.batch_size = 8;
    config.latent_dim = 16;
    config.learning_rates.generator = 3e-3;
    config.learning_rates.encoder = 3e-3;
    let device = Device::Cpu;
    let data = synthetic::lesions(64, 32, 11);
    let all = data.to_tensor(&device).unwrap();
    let l1 = |t: &AeganTrainer| {
        let rec = t.model().reconstruct(&all).unwrap();
        (rec - &all)
            .unwrap()
            .abs()
            .unwrap()
            .mean_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let mut trainer = AeganTrainer::new(config, &device).unwrap();
    let start = l1(&trainer);
    let sampler = BatchSampler::new(data.len(), 8, 0).unwrap();
    for step in 0..250 {
        trainer
            .step(&data.batch(&sampler.batch(step), &device).unwrap())
            .unwrap();
    }
    let end = l1(&trainer);
    assert!(end <= start / 2.0, "L1 reconstruction went from {start} to {end}");
}

#[test]
fn wrong_batch_shape_is_a_typed_error() {
    let mut trainer = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    let err = trainer.step(&batch(4, 32)).unwrap_err();
    assert!(matches!(err, AeganError::BadInput { found, .. } if found == vec![4, 3, 32, 32]));
}

#[test]
fn a_diverged_loss_stops_the_step_without_touching_the_weights() {
    let mut config = common::tiny(16);
    config.norm = aegan::config::Norm::None;
    let mut trainer = AeganTrainer::new(config, &Device::Cpu).unwrap();
    let before = common::snapshot(trainer.networks());
    let nan = Tensor::full(f32::NAN, (4, 3, 16, 16), &Device::Cpu).unwrap();
    let err = trainer.step(&nan).unwrap_err();
    assert!(matches!(err, AeganError::NonFiniteLoss { step: 1, .. }), "{err}");
    assert_eq!(before, common::snapshot(trainer.networks()));
    assert_eq!(trainer.step_count(), 0);
}

#[test]
fn inference_outputs_do_not_keep_the_graph_alive() {
    // A tracked output keeps every activation of its graph in memory, and anything computed
    // from it (e.g. Inception features of thousands of generated images) records more graph.
    let mut trainer = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    trainer.step(&batch(4, 16)).unwrap();
    for kind in NetworkKind::ALL {
        let moments = trainer.optimizer_mut(kind).state_tensors();
        assert!(
            moments.iter().all(|(_, m)| !m.track_op()),
            "Adam moments of {} hold a graph",
            kind.name()
        );
    }
    let z = trainer.model().sample_latents(4, 0).unwrap();
    assert!(!trainer.model().generate(&z).unwrap().track_op());
    assert!(!trainer.model().encode(&batch(4, 16)).unwrap().track_op());
    assert!(!trainer.model().reconstruct(&batch(4, 16)).unwrap().track_op());
    assert!(!aegan::metrics::generate(trainer.networks(), &z, None)
        .unwrap()
        .track_op());
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn allocator_tuning_applies_on_glibc() {
    assert!(aegan::keep_freed_memory());
}

#[test]
fn generator_average_follows_g_with_the_ramped_decay_and_is_what_samples_come_from() {
    let mut config = common::tiny(16);
    config.generator_average = Some(aegan::config::GeneratorAverage::FixedDecay { decay: 0.999 });
    let mut trainer = AeganTrainer::new(config, &Device::Cpu).unwrap();
    // The parameters follow G; the batch-norm statistics are measured for the average itself.
    let values = |store: &aegan::params::ParamStore| -> Vec<Vec<f32>> {
        store
            .trainable()
            .iter()
            .map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect()
    };
    let nets = trainer.networks();
    let ema_store = nets.ema_store().expect("an average is kept").clone();
    let initial = values(nets.store(NetworkKind::Generator));
    assert_eq!(
        values(&ema_store),
        initial,
        "the average starts at G's initial weights"
    );

    trainer.step(&batch(4, 16)).unwrap();
    // First G step: decay = min(0.999, (1 + 0) / (10 + 0)) = 0.1.
    let g = values(trainer.networks().store(NetworkKind::Generator));
    let avg = values(&ema_store);
    let mut worst = 0f32;
    for ((a, i), g) in avg.iter().zip(&initial).zip(&g) {
        for ((a, i), g) in a.iter().zip(i).zip(g) {
            worst = worst.max((a - (0.1 * i + 0.9 * g)).abs());
        }
    }
    assert!(worst < 1e-6, "average off by {worst}");
    assert_ne!(avg, g, "the average is not G");

    let z = trainer.model().sample_latents(3, 1).unwrap();
    let from_average = trainer
        .networks()
        .sampler()
        .unwrap()
        .forward_t(&z, false)
        .unwrap();
    let from_g = trainer.networks().generator.forward_t(&z, false).unwrap();
    assert_eq!(
        common::max_abs_diff(&trainer.model().generate(&z).unwrap(), &from_average),
        0.0
    );
    assert!(common::max_abs_diff(&from_average, &from_g) > 0.0);

    let mut plain = common::tiny(16);
    plain.generator_average = None;
    let plain = AeganTrainer::new(plain, &Device::Cpu).unwrap();
    assert!(plain.networks().ema_store().is_none());
    assert_eq!(plain.networks().saved_stores().len(), 4);
}

/// Every tensor of every network (weights and batch-norm statistics), flattened.
fn all_state(trainer: &AeganTrainer, kinds: &[NetworkKind]) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    for &kind in kinds {
        for (name, var) in trainer.networks().store(kind).all() {
            out.push((
                format!("{}/{name}", kind.name()),
                var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            ));
        }
    }
    out
}

fn changed(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> Vec<String> {
    a.iter()
        .zip(b)
        .filter(|((_, x), (_, y))| x != y)
        .map(|((name, _), _)| name.clone())
        .collect()
}

#[test]
fn each_phase_changes_only_its_own_networks_statistics_included() {
    let mut trainer = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    let batch = synthetic::lesions(4, 16, 0).to_tensor(&Device::Cpu).unwrap();
    let d = [NetworkKind::ImageDiscriminator, NetworkKind::LatentDiscriminator];
    let ge = [NetworkKind::Generator, NetworkKind::Encoder];

    let (d0, ge0) = (all_state(&trainer, &d), all_state(&trainer, &ge));
    trainer.discriminator_step(&batch, None).unwrap();
    let (d1, ge1) = (all_state(&trainer, &d), all_state(&trainer, &ge));
    assert_eq!(
        changed(&ge0, &ge1),
        Vec::<String>::new(),
        "the discriminator phase changed G or E"
    );
    let moved = changed(&d0, &d1);
    assert!(
        moved.iter().any(|n| n.contains("running_mean")),
        "Dx's statistics: {moved:?}"
    );
    assert!(
        moved.iter().any(|n| n.starts_with("latent_discriminator/")),
        "{moved:?}"
    );

    trainer.generator_step(&batch, None).unwrap();
    let (d2, ge2) = (all_state(&trainer, &d), all_state(&trainer, &ge));
    assert_eq!(
        changed(&d1, &d2),
        Vec::<String>::new(),
        "the generator phase changed Dx or Dz"
    );
    let moved = changed(&ge1, &ge2);
    assert!(
        moved
            .iter()
            .any(|n| n.starts_with("generator/") && n.contains("running_var")),
        "{moved:?}"
    );
    assert!(moved.iter().any(|n| n.starts_with("encoder/")), "{moved:?}");
}

#[test]
fn a_non_finite_loss_in_the_second_phase_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::tiny(16);
    // Finite as a weight, infinite once the total is formed in f32: only the generator
    // phase, which runs after the discriminator has been updated, fails.
    config.loss_weights.image_reconstruction = 1e300;
    config.lecam = Some(aegan::config::LeCamConfig::default());
    let mut trainer = AeganTrainer::new(config, &Device::Cpu).unwrap();
    let batch = synthetic::lesions(4, 16, 0).to_tensor(&Device::Cpu).unwrap();
    let before = all_state(&trainer, &NetworkKind::ALL);
    let adaptive = trainer.adaptive_state();
    let saved = trainer.save_checkpoint(dir.path().join("before")).unwrap();

    let err = trainer.step(&batch).unwrap_err();
    assert!(
        matches!(
            err,
            AeganError::NonFiniteLoss {
                name: "g_total",
                step: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        changed(&before, &all_state(&trainer, &NetworkKind::ALL)),
        Vec::<String>::new()
    );
    assert_eq!(trainer.adaptive_state(), adaptive, "LeCam anchors put back");
    assert_eq!(trainer.step_count(), 0);
    // Optimiser moments and counts, the random stream: a checkpoint now is the one before.
    let after = trainer.save_checkpoint(dir.path().join("after")).unwrap();
    let state = |dir: &std::path::Path| {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("run_id");
        v
    };
    assert_eq!(state(&saved), state(&after));
    let moments = |dir: &std::path::Path| std::fs::read(dir.join("optimizer.safetensors")).unwrap();
    assert!(moments(&saved) == moments(&after), "Adam's moments differ");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    // The lean preset at 32×32 takes every kernel path: sub-pixel and upsampled convolutions,
    // stride-2 phases, weight gradients summed over images, batches smaller and larger than
    // the pool.
    let train = |threads: usize, batch: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut config = aegan::AeganConfig::lean(32);
            config.batch_size = batch;
            let mut trainer = AeganTrainer::new(config, &Device::Cpu).unwrap();
            let data = synthetic::lesions(batch, 32, 3).to_tensor(&Device::Cpu).unwrap();
            for _ in 0..2 {
                trainer.step(&data).unwrap();
            }
            all_state(&trainer, &NetworkKind::ALL)
        })
    };
    for batch in [2, 12] {
        let one = train(1, batch);
        for threads in [2, 3, 8] {
            let other = train(threads, batch);
            assert_eq!(
                changed(&one, &other),
                Vec::<String>::new(),
                "batch {batch}: 1 thread and {threads} threads disagree"
            );
        }
    }
}

#[test]
fn the_average_of_g_gets_statistics_measured_on_its_own_activations() {
    let mut config = common::tiny(16);
    config.generator_average = Some(aegan::config::GeneratorAverage::HalfLife {
        half_life_images: 16.0,
        ramp_up: 0.0,
    });
    let mut trainer = AeganTrainer::new(config, &Device::Cpu).unwrap();
    for _ in 0..3 {
        trainer.step(&batch(4, 16)).unwrap();
    }
    let nets = trainer.networks();
    let average = nets.generator_ema.as_ref().unwrap();
    // Measured statistics make evaluation mode behave like training mode on a large batch.
    let z = TrainRng::new(9).normal((512, 8), &Device::Cpu).unwrap();
    let mean_abs = |t: Tensor| t.abs().unwrap().mean_all().unwrap().to_scalar::<f32>().unwrap();
    let stale =
        mean_abs((average.forward_t(&z, false).unwrap() - average.forward_t(&z, true).unwrap()).unwrap());
    let sampler = nets.sampler().unwrap();
    let fresh =
        mean_abs((sampler.forward_t(&z, false).unwrap() - sampler.forward_t(&z, true).unwrap()).unwrap());
    assert!(
        fresh < 0.02,
        "evaluation and batch statistics disagree by {fresh}"
    );
    assert!(
        fresh < stale / 2.0,
        "measuring changed little: {stale} -> {fresh}"
    );
}
