//! Class-conditional AEGAN: label embedding and projection, training on two synthetic classes,
//! class-balanced batches, exact resume, and the errors for labels and classes that do not fit.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use aegan::candle_core::{Device, Tensor};
use aegan::config::{ConditioningConfig, ConditioningTransition};
use aegan::data::{synthetic, ImageSet};
use aegan::rng::TrainRng;
use aegan::{AeganConfig, AeganError, AeganTrainer, LoopOptions, Model, NetworkKind, Networks, TrainingLoop};

const CLASSES: [&str; 2] = ["pink", "blue"];

fn conditional(mut config: AeganConfig) -> AeganConfig {
    config.conditioning = Some(ConditioningConfig::new(
        CLASSES.iter().map(|c| c.to_string()).collect(),
    ));
    config
}

/// `n` synthetic lesions per class: class 0 as drawn (pink skin, red above blue), class 1 the
/// same drawings with red and blue swapped (blue above red), alternating.
fn two_classes(n: usize, size: usize) -> ImageSet {
    let drawn = synthetic::lesions(n, size, 3).to_tensor(&Device::Cpu).unwrap();
    let swapped = Tensor::cat(
        &[
            drawn.narrow(1, 2, 1).unwrap(),
            drawn.narrow(1, 1, 1).unwrap(),
            drawn.narrow(1, 0, 1).unwrap(),
        ],
        1,
    )
    .unwrap();
    let mut images = Vec::with_capacity(2 * n);
    let (pink, blue) = (
        aegan::viz::to_rgb_images(&drawn).unwrap(),
        aegan::viz::to_rgb_images(&swapped).unwrap(),
    );
    let mut labels = Vec::with_capacity(2 * n);
    for (p, b) in pink.into_iter().zip(blue) {
        images.push(p);
        labels.push(0);
        images.push(b);
        labels.push(1);
    }
    ImageSet::from_rgb(&images, "synthetic lesions in two colourings")
        .unwrap()
        .with_labels(labels, CLASSES.iter().map(|c| c.to_string()).collect())
        .unwrap()
}

/// Mean of red minus blue over images in [−1, 1].
fn red_minus_blue(images: &Tensor) -> f32 {
    let red = images.narrow(1, 0, 1).unwrap().mean_all().unwrap();
    let blue = images.narrow(1, 2, 1).unwrap().mean_all().unwrap();
    (red - blue).unwrap().to_scalar::<f32>().unwrap()
}

fn tensor_of(networks: &Networks, kind: NetworkKind, name: &str) -> Tensor {
    let found = networks.store(kind).all().into_iter().find(|(n, _)| n == name);
    found
        .unwrap_or_else(|| panic!("no tensor {name}"))
        .1
        .as_tensor()
        .clone()
}

#[test]
fn the_label_embedding_joins_z_and_the_projection_reads_dx_features() {
    let mut rng = TrainRng::new(21);
    let config = conditional(common::tiny(16));
    let nets = Networks::new(&config, &Device::Cpu).unwrap();
    let embedding = tensor_of(&nets, NetworkKind::Generator, "label_embedding.weight");
    assert_eq!(embedding.dims(), &[2, 16], "classes × embedding size");
    let stem = tensor_of(&nets, NetworkKind::Generator, "stem.linear.weight");
    assert_eq!(
        stem.dim(1).unwrap(),
        config.latent_dim + 16,
        "the stem reads [z, e(y)]"
    );
    let projection = tensor_of(&nets, NetworkKind::ImageDiscriminator, "class_projection.weight");
    let out = tensor_of(&nets, NetworkKind::ImageDiscriminator, "out.weight");
    assert_eq!(
        projection.dims(),
        &[2, out.dim(1).unwrap()],
        "one vector per class, as long as φ(x)"
    );
    for kind in [NetworkKind::Encoder, NetworkKind::LatentDiscriminator] {
        let names: Vec<String> = nets.store(kind).all().into_iter().map(|(n, _)| n).collect();
        assert!(
            !names.iter().any(|n| n.contains("label") || n.contains("class")),
            "{names:?}"
        );
    }

    let z = rng.normal((2, config.latent_dim), &Device::Cpu).unwrap();
    let same_z = Tensor::cat(&[&z.get(0).unwrap().unsqueeze(0).unwrap(); 2], 0).unwrap();
    let labels = nets.labels_for(Some(&[0, 1]), 2).unwrap();
    let x = nets
        .generator
        .forward_labelled_t(&same_z, labels.as_ref(), true)
        .unwrap();
    assert_eq!(x.dims(), &[2, 3, 16, 16]);
    assert!(
        common::max_abs_diff(&x.get(0).unwrap(), &x.get(1).unwrap()) > 1e-4,
        "labels change G(z, y)"
    );
    let same_x = Tensor::cat(&[&x.get(0).unwrap().unsqueeze(0).unwrap(); 2], 0).unwrap();
    let logits = nets
        .image_discriminator
        .forward_labelled_t(&same_x, labels.as_ref(), true)
        .unwrap();
    assert_eq!(logits.dims(), &[2, 1]);
    let by_label = logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!((by_label[0] - by_label[1]).abs() > 1e-6, "labels change Dx(x, y)");

    // At strength 0 (the start of a transition) neither network depends on the label.
    let mut unconditioned = nets.clone();
    unconditioned.set_condition_strength(0.0);
    let x0 = unconditioned
        .generator
        .forward_labelled_t(&same_z, labels.as_ref(), true)
        .unwrap();
    assert_eq!(
        common::max_abs_diff(&x0.get(0).unwrap(), &x0.get(1).unwrap()),
        0.0
    );
    let l0 = unconditioned
        .image_discriminator
        .forward_labelled_t(&same_x, labels.as_ref(), true)
        .unwrap();
    let l0 = l0.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(l0[0], l0[1]);
    // With the projection vectors zeroed, Dx(x, y) is the unconditional part for every y.
    let (_, projection_var) = nets
        .store(NetworkKind::ImageDiscriminator)
        .all()
        .into_iter()
        .find(|(n, _)| n == "class_projection.weight")
        .unwrap();
    projection_var.set(&projection.zeros_like().unwrap()).unwrap();
    let zeroed = nets
        .image_discriminator
        .forward_labelled_t(&same_x, labels.as_ref(), true)
        .unwrap();
    let zeroed = zeroed.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(zeroed[0], zeroed[1]);
}

#[test]
fn a_conditional_model_trained_on_two_classes_draws_the_class_it_is_asked_for() {
    let data = two_classes(48, 16);
    let mut config = conditional(common::tiny(16));
    config.batch_size = 16;
    let mut trainer = AeganTrainer::new(config, &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = LoopOptions::new(dir.path(), 300);
    options.progress = false;
    options.save_every = 300;
    TrainingLoop::new(options, Arc::new(AtomicBool::new(false)))
        .run(&mut trainer, &data)
        .unwrap();
    let model = Model::load(TrainingLoop::checkpoint_dir(dir.path()), &Device::Cpu).unwrap();
    assert_eq!(model.class_names(), CLASSES);
    let pink = model.sample_class(64, "pink", 5).unwrap();
    let blue = model.sample_class(64, "blue", 5).unwrap();
    let (pink, blue) = (red_minus_blue(&pink), red_minus_blue(&blue));
    let real = data.to_tensor(&Device::Cpu).unwrap();
    let real_pink = red_minus_blue(&real.narrow(0, 0, 1).unwrap());
    assert!(
        real_pink > 0.2,
        "the drawn lesions are red above blue ({real_pink})"
    );
    assert!(pink > 0.1, "asked for pink, got red − blue = {pink}");
    assert!(blue < -0.1, "asked for blue, got red − blue = {blue}");
    // The same latents, other label: the class, not the latent, decides the colouring.
    let z = model.sample_latents(8, 9).unwrap();
    let as_pink = model.generate_labelled(&z, &[0; 8]).unwrap();
    let as_blue = model.generate_labelled(&z, &[1; 8]).unwrap();
    assert!(red_minus_blue(&as_pink) > red_minus_blue(&as_blue) + 0.2);
    // Samples are drawn one row per class.
    let grid = image::open(dir.path().join("samples.png")).unwrap();
    let tile = 2 * 16 + 2;
    assert_eq!(grid.height() as usize, 2 * tile + 2, "one row per class");
}

#[test]
fn balanced_batches_a_transition_and_mode_seeking_resume_exactly() {
    // Class 1 is rare (one image in eight); balanced batches draw it half the time.
    let images = synthetic::lesions(40, 16, 1);
    let labels: Vec<usize> = (0..40).map(|i| usize::from(i % 8 == 0)).collect();
    let data = images
        .with_labels(labels.clone(), CLASSES.iter().map(|c| c.to_string()).collect())
        .unwrap();
    let mut config = conditional(common::tiny(16));
    let conditioning = config.conditioning.as_mut().unwrap();
    conditioning.balanced_batches = true;
    conditioning.transition = Some(ConditioningTransition {
        start_images: 8,
        length_images: 16,
    });
    config.loss_weights.mode_seeking = 1.0;
    let run = |dir: &std::path::Path, trainer: &mut AeganTrainer, steps: u64| {
        let mut options = LoopOptions::new(dir, steps);
        options.progress = false;
        options.save_every = 3;
        TrainingLoop::new(options, Arc::new(AtomicBool::new(false)))
            .run(trainer, &data)
            .unwrap();
    };
    let straight_dir = tempfile::tempdir().unwrap();
    let mut straight = AeganTrainer::new(config.clone(), &Device::Cpu).unwrap();
    run(straight_dir.path(), &mut straight, 8);
    assert_eq!(
        straight.condition_strength(),
        1.0,
        "8 steps of 4 images end the transition"
    );

    let split_dir = tempfile::tempdir().unwrap();
    let mut first = AeganTrainer::new(config, &Device::Cpu).unwrap();
    run(split_dir.path(), &mut first, 3);
    assert_eq!(
        first.condition_strength(),
        0.25,
        "(12 − 8) / 16 after three steps"
    );
    let mut resumed =
        AeganTrainer::resume(TrainingLoop::checkpoint_dir(split_dir.path()), &Device::Cpu).unwrap();
    assert_eq!(resumed.condition_strength(), 0.25);
    run(split_dir.path(), &mut resumed, 8);
    let worst = common::max_weight_diff(
        &common::snapshot(straight.networks()),
        &common::snapshot(resumed.networks()),
    );
    assert_eq!(worst, 0.0, "resumed weights differ by {worst}");
    let losses = |dir: &std::path::Path| std::fs::read_to_string(dir.join("losses.jsonl")).unwrap();
    assert_eq!(losses(straight_dir.path()), losses(split_dir.path()));
}

#[test]
fn labels_that_do_not_fit_the_model_are_errors_that_change_nothing() {
    let data = two_classes(4, 16);
    let x = data.to_tensor(&Device::Cpu).unwrap();
    let mut trainer = AeganTrainer::new(conditional(common::tiny(16)), &Device::Cpu).unwrap();
    let before = common::snapshot(trainer.networks());
    let err = trainer.step(&x).unwrap_err();
    assert!(matches!(err, AeganError::ClassLabels { .. }), "{err}");
    assert!(err.to_string().contains("pink, blue"), "{err}");
    let err = trainer.step_labelled(&x, &[0, 1, 0]).unwrap_err();
    assert!(err.to_string().contains("3 labels for 8 images"), "{err}");
    let err = trainer.step_labelled(&x, &[0, 1, 0, 1, 0, 1, 0, 2]).unwrap_err();
    assert!(err.to_string().contains("label 2"), "{err}");
    assert_eq!(
        common::max_weight_diff(&before, &common::snapshot(trainer.networks())),
        0.0
    );
    assert_eq!(trainer.step_count(), 0);
    trainer.step_labelled(&x, &[0, 1, 0, 1, 0, 1, 0, 1]).unwrap();

    let mut unconditional = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    let err = unconditional.step_labelled(&x, &[0; 8]).unwrap_err();
    assert!(err.to_string().contains("unconditional"), "{err}");

    let model = trainer.model();
    let err = model.sample_class(2, "purple", 0).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("purple") && message.contains("pink, blue"),
        "{message}"
    );
    assert!(model.sample(2, 0).is_err(), "a conditional model needs a class");
    assert!(unconditional.model().sample_class(2, "pink", 0).is_err());
}

#[test]
fn a_checkpoint_loads_only_into_a_config_of_the_same_classes() {
    let dir = tempfile::tempdir().unwrap();
    let config = conditional(common::tiny(16));
    AeganTrainer::new(config.clone(), &Device::Cpu)
        .unwrap()
        .save_checkpoint(dir.path())
        .unwrap();
    let refusal = |other: AeganConfig| {
        let mut trainer = AeganTrainer::new(other, &Device::Cpu).unwrap();
        let before = common::snapshot(trainer.networks());
        let err = trainer.load_checkpoint(dir.path()).unwrap_err();
        assert!(matches!(err, AeganError::ConditioningMismatch { .. }), "{err}");
        assert_eq!(
            common::max_weight_diff(&before, &common::snapshot(trainer.networks())),
            0.0
        );
        err.to_string()
    };
    let message = refusal(common::tiny(16));
    assert!(
        message.contains("conditional on 2 classes (pink, blue)") && message.contains("is unconditional"),
        "{message}"
    );
    let mut renamed = config.clone();
    renamed.conditioning.as_mut().unwrap().classes = vec!["pink".into(), "green".into()];
    let message = refusal(renamed);
    assert!(
        message.contains("(pink, blue)") && message.contains("(pink, green)"),
        "{message}"
    );

    // The reverse: an unconditional checkpoint into a conditional config.
    let plain = tempfile::tempdir().unwrap();
    AeganTrainer::new(common::tiny(16), &Device::Cpu)
        .unwrap()
        .save_checkpoint(plain.path())
        .unwrap();
    let mut trainer = AeganTrainer::new(config.clone(), &Device::Cpu).unwrap();
    let message = trainer.load_checkpoint(plain.path()).unwrap_err().to_string();
    assert!(
        message.contains("is unconditional") && message.contains("pink, blue"),
        "{message}"
    );

    // A loop refuses data without the model's classes.
    let out = tempfile::tempdir().unwrap();
    let mut options = LoopOptions::new(out.path(), 2);
    options.progress = false;
    let mut trainer = AeganTrainer::new(config, &Device::Cpu).unwrap();
    let err = TrainingLoop::new(options, Arc::new(AtomicBool::new(false)))
        .run(&mut trainer, &synthetic::lesions(8, 16, 0))
        .unwrap_err();
    assert!(err.to_string().contains("unlabelled"), "{err}");
}

#[test]
fn conditioning_is_validated_by_name_and_its_strength_ramps_linearly() {
    let invalid = |edit: &dyn Fn(&mut ConditioningConfig), field: &str| {
        let mut config = conditional(common::tiny(16));
        edit(config.conditioning.as_mut().unwrap());
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains(field), "{message}");
    };
    invalid(&|c| c.classes.truncate(1), "conditioning.classes");
    invalid(&|c| c.classes[1] = "pink".into(), "conditioning.classes");
    invalid(&|c| c.classes[0] = " ".into(), "conditioning.classes");
    invalid(&|c| c.embedding_dim = 0, "conditioning.embedding_dim");
    invalid(
        &|c| {
            c.transition = Some(ConditioningTransition {
                start_images: 0,
                length_images: 0,
            })
        },
        "conditioning.transition.length_images",
    );

    use aegan::controllers::condition_strength;
    let mut c = ConditioningConfig::new(vec!["a".into(), "b".into()]);
    assert_eq!(condition_strength(&c, 0), 1.0, "no transition: fully conditional");
    c.transition = Some(ConditioningTransition {
        start_images: 100,
        length_images: 400,
    });
    assert_eq!(condition_strength(&c, 100), 0.0);
    assert_eq!(condition_strength(&c, 300), 0.5);
    assert_eq!(condition_strength(&c, 500), 1.0);
    assert_eq!(condition_strength(&c, 10_000), 1.0);
    // The JSON keeps the class names and reads back the same config.
    let config = conditional(common::tiny(16));
    let json = serde_json::to_string(&config).unwrap();
    assert!(json.contains(r#""classes":["pink","blue"]"#), "{json}");
    assert_eq!(serde_json::from_str::<AeganConfig>(&json).unwrap(), config);
}

#[test]
fn per_class_quality_refuses_references_of_other_classes_by_name() {
    use aegan::metrics::classifier::{Classifier, ClassifierConfig};
    use aegan::metrics::{per_class_quality, ClassReference};
    let model = AeganTrainer::new(conditional(common::tiny(16)), &Device::Cpu)
        .unwrap()
        .model();
    let real = two_classes(4, 16);
    let reference = |real: &ImageSet, classifier: Option<&Classifier>| {
        let reference = ClassReference {
            real,
            held_out: Some(real),
            inception: None,
            classifier,
            cache_dir: None,
        };
        per_class_quality(&model, &reference, 4, 100, 0)
    };
    let quality = reference(&real, None).unwrap();
    assert_eq!(quality.len(), 2);
    assert_eq!((quality[0].class.as_str(), quality[0].real_images), ("pink", 4));
    assert!(quality[0].fidelity.is_none() && quality[0].kid.is_none());

    let renamed = synthetic::lesions(2, 16, 0)
        .with_labels(vec![0, 1], vec!["pink".into(), "green".into()])
        .unwrap();
    let message = reference(&renamed, None).unwrap_err().to_string();
    assert!(
        message.contains("(pink, blue)") && message.contains("(pink, green)"),
        "{message}"
    );
    let message = reference(&synthetic::lesions(2, 16, 0), None)
        .unwrap_err()
        .to_string();
    assert!(message.contains("unlabelled"), "{message}");

    let config = ClassifierConfig {
        steps: 1,
        ..ClassifierConfig::default()
    };
    let other = Classifier::train(&renamed, &config, &Device::Cpu).unwrap();
    let message = reference(&real, Some(&other)).unwrap_err().to_string();
    assert!(message.contains("the classifier"), "{message}");
    let same = Classifier::train(&real, &config, &Device::Cpu).unwrap();
    let quality = reference(&real, Some(&same)).unwrap();
    for q in &quality {
        let fidelity = q.fidelity.unwrap();
        assert!(
            (0.0..=1.0).contains(&fidelity) && (fidelity * 4.0).fract() == 0.0,
            "a share of 4 images"
        );
        assert!(q.held_out_recall.is_some());
    }
}

fn with_classifier(weight: f64) -> AeganConfig {
    let mut config = conditional(common::tiny(16));
    config.conditioning.as_mut().unwrap().class_loss_weight = weight;
    config
}

#[test]
fn the_auxiliary_classifier_adds_its_weighted_cross_entropy_to_both_steps() {
    use aegan::controllers::AdaptiveState;
    use aegan::objective::AeganObjective;

    let nets = Networks::new(&with_classifier(0.5), &Device::Cpu).unwrap();
    assert!(nets.image_discriminator.has_classifier());
    let head = tensor_of(&nets, NetworkKind::ImageDiscriminator, "class_head.weight");
    let out = tensor_of(&nets, NetworkKind::ImageDiscriminator, "out.weight");
    assert_eq!(
        head.dims(),
        &[2, out.dim(1).unwrap()],
        "one logit per class from φ(x)"
    );
    let without = Networks::new(&with_classifier(0.0), &Device::Cpu).unwrap();
    assert!(!without.image_discriminator.has_classifier());
    let names = without.store(NetworkKind::ImageDiscriminator).all();
    assert!(!names.iter().any(|(n, _)| n.starts_with("class_head")));
    let message = with_classifier(-0.1).validate().unwrap_err().to_string();
    assert!(message.contains("conditioning.class_loss_weight"), "{message}");

    let x = two_classes(4, 16).to_tensor(&Device::Cpu).unwrap();
    let labels = nets.labels_for(Some(&[0, 1, 0, 1, 0, 1, 0, 1]), 8).unwrap();
    let z = TrainRng::new(23).normal((8, 8), &Device::Cpu).unwrap();
    let losses = |weight: f64, strength: f64| {
        let config = with_classifier(weight);
        let mut nets = Networks::new(&config, &Device::Cpu).unwrap();
        nets.set_condition_strength(strength);
        let objective = AeganObjective::new(&config);
        let state = AdaptiveState::new(&config);
        let mut rng = TrainRng::new(1);
        let d = objective
            .discriminator_loss(&nets, &x, labels.as_ref(), &z, &state, &mut rng)
            .unwrap();
        let g = objective
            .generator_loss(&nets, &x, labels.as_ref(), &z, &state, &mut rng)
            .unwrap();
        (nets, d.values().unwrap(), g.values().unwrap())
    };
    let (nets, d1, g1) = losses(0.5, 1.0);
    let (_, d2, g2) = losses(2.0, 1.0);
    // The reported class loss is the cross-entropy of Dx's class logits on the real images.
    let (_, class_logits) = nets
        .image_discriminator
        .forward_with_classes_t(&x, labels.as_ref(), true)
        .unwrap();
    let expected = aegan::candle_nn::loss::cross_entropy(&class_logits.unwrap(), labels.as_ref().unwrap())
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((d1.class - expected).abs() < 1e-5, "{} vs {expected}", d1.class);
    assert!(d1.class > 0.1 && g1.image_class > 0.1);
    assert_eq!(d1.class, d2.class);
    let close = |a: f32, b: f32| (a - b).abs() < 1e-4 * (1.0 + b.abs());
    assert!(close(d2.image - d1.image, 1.5 * d1.class), "L_Dx gains w·CE");
    assert_eq!(d1.latent, d2.latent);
    assert!(
        close(g2.total - g1.total, 1.5 * g1.image_class),
        "L_GE gains w·λ·CE"
    );
    // At strength 0 (the start of a transition) G is not asked for classes; Dx still learns them.
    let (_, d1, g1) = losses(0.5, 0.0);
    let (_, d2, g2) = losses(2.0, 0.0);
    assert!(close(g2.total, g1.total) && g1.image_class > 0.1);
    assert!(close(d2.image - d1.image, 1.5 * d1.class));
}

#[test]
fn with_an_auxiliary_classifier_dx_tells_the_classes_apart_and_g_draws_them() {
    let data = two_classes(48, 16);
    let mut config = with_classifier(0.5);
    config.batch_size = 16;
    let mut trainer = AeganTrainer::new(config, &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = LoopOptions::new(dir.path(), 200);
    options.progress = false;
    options.save_every = 200;
    let report = TrainingLoop::new(options, Arc::new(AtomicBool::new(false)))
        .run(&mut trainer, &data)
        .unwrap();
    let last = report.last_losses.unwrap();
    assert!(last.discriminator.class < 0.3, "{last:?}");
    // Share of `images` that Dx's classifier puts in class `label`.
    let share = |images: &Tensor, label: usize| {
        let n = images.dim(0).unwrap();
        let nets = trainer.networks();
        let labels = nets.labels_for(Some(&vec![label; n]), n).unwrap();
        let (_, logits) = nets
            .image_discriminator
            .forward_with_classes_t(images, labels.as_ref(), false)
            .unwrap();
        let logits = logits.unwrap();
        let predicted = logits.argmax(1).unwrap().to_vec1::<u32>().unwrap();
        predicted.iter().filter(|&&p| p as usize == label).count() as f32 / predicted.len() as f32
    };
    let real = data.to_tensor(&Device::Cpu).unwrap();
    let pink_real = real
        .index_select(&Tensor::new(&[0u32, 2, 4, 6, 8, 10], &Device::Cpu).unwrap(), 0)
        .unwrap();
    assert!(share(&pink_real, 0) >= 0.8);
    let model = trainer.model();
    for (label, class) in CLASSES.iter().enumerate() {
        let drawn = model.sample_class(32, class, 3).unwrap();
        let got = share(&drawn, label);
        assert!(
            got >= 0.8,
            "{class}: Dx's classifier calls {got} of G's images {class}"
        );
    }
}

#[test]
fn with_the_label_in_every_stage_each_stage_learns_a_shift_that_starts_at_zero() {
    let plain_config = conditional(common::tiny(16));
    let mut config = plain_config.clone();
    config.conditioning.as_mut().unwrap().every_stage = true;
    config.validate().unwrap();
    // Saved when on, absent (and off) in configs written without it.
    assert_eq!(AeganConfig::from_json(&config.to_json()).unwrap(), config);
    assert!(!plain_config.to_json().contains("every_stage"));
    let nets = Networks::new(&config, &Device::Cpu).unwrap();
    let plain = Networks::new(&plain_config, &Device::Cpu).unwrap();
    // One map per stage (4→8, 8→16), from the 16-value embedding to the stage's 16 channels,
    // all zero: a new G draws what it draws without them.
    for i in 0..2 {
        let map = tensor_of(&nets, NetworkKind::Generator, &format!("stages.{i}.label.weight"));
        assert_eq!(map.dims(), &[16, 16]);
        assert_eq!(
            map.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap(),
            0.0
        );
    }
    let z = TrainRng::new(2)
        .normal((2, config.latent_dim), &Device::Cpu)
        .unwrap();
    let labels = nets.labels_for(Some(&[0, 1]), 2).unwrap();
    let draw = |nets: &Networks| {
        nets.generator
            .forward_labelled_t(&z, labels.as_ref(), false)
            .unwrap()
    };
    assert_eq!(common::max_abs_diff(&draw(&nets), &draw(&plain)), 0.0);

    // Training moves the maps, and then the label changes every stage's features.
    let data = two_classes(8, 16);
    let real = data.to_tensor(&Device::Cpu).unwrap().narrow(0, 0, 4).unwrap();
    let mut trainer = AeganTrainer::new(config, &Device::Cpu).unwrap();
    for _ in 0..3 {
        trainer.step_labelled(&real, &[0, 1, 0, 1]).unwrap();
    }
    let trained = trainer.networks();
    for i in 0..2 {
        let map = tensor_of(
            trained,
            NetworkKind::Generator,
            &format!("stages.{i}.label.weight"),
        );
        assert!(map.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
    }
    // At strength 0 the label enters nowhere: not at the stem, not in the stages.
    let mut unconditioned = trained.clone();
    unconditioned.set_condition_strength(0.0);
    let same_z = Tensor::cat(&[&z.get(0).unwrap().unsqueeze(0).unwrap(); 2], 0).unwrap();
    let x0 = unconditioned
        .generator
        .forward_labelled_t(&same_z, labels.as_ref(), false)
        .unwrap();
    assert_eq!(
        common::max_abs_diff(&x0.get(0).unwrap(), &x0.get(1).unwrap()),
        0.0
    );
}

#[test]
fn a_class_path_runs_from_the_reconstruction_as_one_class_to_the_counterfactual_as_the_other() {
    for every_stage in [false, true] {
        let mut config = conditional(common::tiny(16));
        config.conditioning.as_mut().unwrap().every_stage = every_stage;
        let nets = Networks::new(&config, &Device::Cpu).unwrap();
        let model = Model::new(config, nets);
        let x = two_classes(2, 16).to_tensor(&Device::Cpu).unwrap();
        let first_image = x.narrow(0, 0, 1).unwrap();
        // Encoded alone, as the reconstruction below encodes it: a batch of one takes the
        // same arithmetic path, so the latent (and the noise its bits seed) is the same.
        let z = model.encode(&first_image).unwrap().get(0).unwrap();
        let path = model.class_path(&z, "pink", "blue", 5).unwrap();
        assert_eq!(path.dims(), &[5, 3, 16, 16]);
        let as_pink = model.reconstruct_labelled(&first_image, &[0]).unwrap();
        let as_blue = model.counterfactual(&first_image, "blue").unwrap();
        let ends = |i: usize| path.narrow(0, i, 1).unwrap();
        assert!(
            common::max_abs_diff(&ends(0), &as_pink) < 1e-5,
            "t = 0: the reconstruction as pink"
        );
        assert!(
            common::max_abs_diff(&ends(4), &as_blue) < 1e-5,
            "t = 1: the image as blue"
        );
        assert!(
            common::max_abs_diff(&as_pink, &as_blue) > 1e-4,
            "the class changes the image"
        );
        // Every image of the batch is drawn as the class asked for.
        let both = model.counterfactual(&x.narrow(0, 0, 2).unwrap(), "blue").unwrap();
        let each = model
            .reconstruct_labelled(&x.narrow(0, 0, 2).unwrap(), &[1, 1])
            .unwrap();
        assert!(common::max_abs_diff(&both, &each) < 1e-6);
        // Refusals that name the problem.
        let unknown = model
            .counterfactual(&first_image, "green")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("green") && unknown.contains("pink"), "{unknown}");
        assert!(model.class_path(&z, "pink", "blue", 1).is_err());
        let two_latents = model.encode(&x).unwrap();
        assert!(model.class_path(&two_latents, "pink", "blue", 3).is_err());
    }
    let unconditional = common::tiny(16);
    let nets = Networks::new(&unconditional, &Device::Cpu).unwrap();
    let model = Model::new(unconditional, nets);
    let x = synthetic::lesions(1, 16, 0).to_tensor(&Device::Cpu).unwrap();
    for err in [
        model.counterfactual(&x, "pink").unwrap_err(),
        model
            .class_path(&model.encode(&x).unwrap(), "pink", "blue", 3)
            .unwrap_err(),
    ] {
        assert!(matches!(err, AeganError::ClassLabels { .. }), "{err}");
        assert!(err.to_string().contains("unconditional"), "{err}");
    }
}

#[test]
fn with_mode_seeking_the_generated_batch_takes_the_first_half_s_labels_in_pairs() {
    use aegan::controllers::AdaptiveState;
    use aegan::objective::AeganObjective;
    let mut config = conditional(common::tiny(16));
    config.loss_weights.mode_seeking = 1.0;
    let device = Device::Cpu;
    let nets = Networks::new(&config, &device).unwrap();
    let x = synthetic::lesions(4, 16, 2).to_tensor(&device).unwrap();
    let z = TrainRng::new(3).normal((4, config.latent_dim), &device).unwrap();
    let real_labels = [0u32, 1, 1, 0];
    let labels = Tensor::new(&real_labels, &device).unwrap();
    // The classifier's cross-entropy, by hand, of `images` against `classes`.
    let cross_entropy = |images: &Tensor, classes: &[u32]| -> f64 {
        let l = Tensor::new(classes, &device).unwrap();
        let out = nets
            .image_discriminator
            .forward_all_t(images, Some(&l), true)
            .unwrap();
        let logits = out.class_logits.unwrap().to_vec2::<f32>().unwrap();
        let per_image = logits.iter().zip(classes).map(|(row, &c)| {
            let max = row.iter().fold(f32::MIN, |m, &v| m.max(v)) as f64;
            let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
            max + sum.ln() - row[c as usize] as f64
        });
        per_image.sum::<f64>() / classes.len() as f64
    };
    let generated = |classes: &[u32]| {
        let l = Tensor::new(classes, &device).unwrap();
        nets.generator.forward_labelled_t(&z, Some(&l), true).unwrap()
    };
    let z_hat = nets.encoder.forward_t(&x, true).unwrap();
    let x_tilde = nets
        .generator
        .forward_labelled_t(&z_hat, Some(&labels), true)
        .unwrap();
    let reconstructed = cross_entropy(&x_tilde, &real_labels);
    let paired = [0u32, 1, 0, 1];
    let want = 0.5 * (cross_entropy(&generated(&paired), &paired) + reconstructed);
    let unpaired = 0.5 * (cross_entropy(&generated(&real_labels), &real_labels) + reconstructed);

    let objective = AeganObjective::new(&config);
    let g = objective
        .generator_loss(
            &nets,
            &x,
            Some(&labels),
            &z,
            &AdaptiveState::new(&config),
            &mut TrainRng::new(1),
        )
        .unwrap()
        .values()
        .unwrap();
    let got = f64::from(g.image_class);
    assert!(
        (got - want).abs() < 1e-5,
        "class term {got}, by hand with paired labels {want}"
    );
    assert!(
        (got - unpaired).abs() > 1e-5,
        "the real labels give the same {unpaired}"
    );
}
