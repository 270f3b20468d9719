//! The training options from the low-data GAN literature, each against values worked out by
//! hand: hinge loss, LeCam's term, the moving average's half-life, DiffAugment, ADA's
//! controller and Adam's per-parameter step counts.

mod common;

use std::collections::HashMap;

use aegan::candle_core::{DType, Device, Tensor, Var};
use aegan::config::{DiffAugmentConfig, GeneratorAverage};
use aegan::diffaug;
use aegan::objective::{hinge, lecam_term};
use aegan::optim::Adam;
use aegan::rng::TrainRng;

fn scalar(t: &Tensor) -> f64 {
    t.to_scalar::<f32>().unwrap() as f64
}

/// The gradient of `v` in `grads`, flattened.
fn gradient(grads: &aegan::candle_core::backprop::GradStore, v: &Var) -> Vec<f32> {
    grads
        .get(v.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

#[test]
fn hinge_loss_on_known_logits() {
    let logits = Tensor::new(&[-2f32, -0.5, 0.0, 0.5, 3.0], &Device::Cpu).unwrap();
    // Real: relu(1 - l) = 3, 1.5, 1, 0.5, 0 → mean 1.2.
    assert!((scalar(&hinge(&logits, 1.0).unwrap()) - 1.2).abs() < 1e-6);
    // Fake: relu(1 + l) = 0, 0.5, 1, 1.5, 4 → mean 1.4.
    assert!((scalar(&hinge(&logits, -1.0).unwrap()) - 1.4).abs() < 1e-6);
}

#[test]
fn lecam_term_on_known_logits() {
    let real = Tensor::new(&[1f32, 3.0], &Device::Cpu).unwrap();
    let fake_a = Tensor::new(&[-1f32, -3.0], &Device::Cpu).unwrap();
    let fake_b = Tensor::new(&[0f32, 0.0], &Device::Cpu).unwrap();
    // Anchors a_r = 2, a_f = -2: real part mean((3, 5)²) = 17; fakes mean((-3, -5)²) = 17 and
    // mean((-2, -2)²) = 4, averaged 10.5; total 27.5.
    let term = lecam_term(&real, &[&fake_a, &fake_b], 2.0, -2.0).unwrap();
    assert!((scalar(&term) - 27.5).abs() < 1e-5, "{}", scalar(&term));
}

#[test]
fn the_average_half_life_counts_images_and_ramps_up() {
    use aegan::controllers::average_decay;
    let average = GeneratorAverage::HalfLife {
        half_life_images: 10_000.0,
        ramp_up: 0.05,
    };
    // After 1,000,000 images the ramp (50,000) no longer binds: β = 0.5^(32 / 10,000).
    let late = average_decay(&average, 1_000_000 / 32, 32);
    assert!((late - 0.5f64.powf(32.0 / 10_000.0)).abs() < 1e-12);
    // After 32,000 images the half-life is 0.05 · 32,000 = 1,600 images.
    let early = average_decay(&average, 32_000 / 32, 32);
    assert!((early - 0.5f64.powf(32.0 / 1_600.0)).abs() < 1e-12);
    // A half-life of h images halves a past weight after h / batch updates.
    let updates: i32 = 10_000 / 32;
    assert!((late.powi(updates) - 0.5).abs() < 0.01);
    // Without ramp-up the half-life is fixed.
    let fixed = GeneratorAverage::HalfLife {
        half_life_images: 1_600.0,
        ramp_up: 0.0,
    };
    assert_eq!(average_decay(&fixed, 1, 32), early);
}

/// The discriminator step's losses on [`batch`] for the tiny 16×16 config changed by `edit`,
/// with fixed latents and stream: two configs differ only in what `edit` does.
fn discriminator_losses(edit: impl FnOnce(&mut aegan::AeganConfig)) -> aegan::objective::DiscriminatorLosses {
    let mut config = common::tiny(16);
    edit(&mut config);
    let nets = aegan::Networks::new(&config, &Device::Cpu).unwrap();
    let z = TrainRng::new(3)
        .normal((3, config.latent_dim), &Device::Cpu)
        .unwrap();
    let mut rng = TrainRng::new(4);
    aegan::objective::AeganObjective::new(&config)
        .discriminator_loss(
            &nets,
            &batch(),
            None,
            &z,
            &aegan::controllers::AdaptiveState::new(&config),
            &mut rng,
        )
        .unwrap()
        .values()
        .unwrap()
}

fn batch() -> Tensor {
    let mut rng = TrainRng::new(21);
    (rng.normal((3, 3, 16, 16), &Device::Cpu).unwrap() * 0.5).unwrap()
}

#[test]
fn diffaugment_is_the_identity_at_probability_zero() {
    let x = batch();
    let mut rng = TrainRng::new(3);
    let same = diffaug::augment(&x, &DiffAugmentConfig::all(), 0.0, &mut rng).unwrap();
    assert_eq!(common::max_abs_diff(&x, &same), 0.0);
}

#[test]
fn diffaugment_changes_images_and_is_differentiable() {
    let mut rng = TrainRng::new(22);
    let x = Var::from_tensor(&batch()).unwrap();
    let weights = rng.normal((3, 3, 16, 16), &Device::Cpu).unwrap();
    for (name, policy) in [
        (
            "color",
            DiffAugmentConfig {
                color: true,
                translation: false,
                cutout: false,
                ..DiffAugmentConfig::all()
            },
        ),
        (
            "translation",
            DiffAugmentConfig {
                color: false,
                translation: true,
                cutout: false,
                ..DiffAugmentConfig::all()
            },
        ),
        (
            "cutout",
            DiffAugmentConfig {
                color: false,
                translation: false,
                cutout: true,
                ..DiffAugmentConfig::all()
            },
        ),
        ("all", DiffAugmentConfig::all()),
    ] {
        // With its random draws fixed, each transform is affine in x, so a linear functional
        // of its output changes by exactly <gradient, δ> when x moves by δ.
        let f = |x: &Tensor| {
            let y = diffaug::augment(x, &policy, 1.0, &mut TrainRng::new(11)).unwrap();
            (y * &weights).unwrap().sum_all().unwrap()
        };
        let y = diffaug::augment(x.as_tensor(), &policy, 1.0, &mut TrainRng::new(11)).unwrap();
        assert!(
            common::max_abs_diff(x.as_tensor(), &y) > 0.01,
            "{name} changed nothing"
        );
        let grad = f(x.as_tensor())
            .backward()
            .unwrap()
            .get(x.as_tensor())
            .unwrap()
            .clone();
        let delta = (rng.normal((3, 3, 16, 16), &Device::Cpu).unwrap() * 0.01).unwrap();
        let moved = (x.as_tensor() + &delta).unwrap();
        let change = scalar(&f(&moved)) - scalar(&f(x.as_tensor()));
        let predicted = scalar(&(grad * &delta).unwrap().sum_all().unwrap());
        assert!(
            (change - predicted).abs() <= 1e-3 * (1.0 + predicted.abs()),
            "{name}: change {change} vs gradient prediction {predicted}"
        );
    }
}

#[test]
fn diffaugment_draws_depend_only_on_the_stream() {
    let x = batch();
    let a = diffaug::augment(&x, &DiffAugmentConfig::all(), 0.7, &mut TrainRng::new(5)).unwrap();
    let b = diffaug::augment(&x, &DiffAugmentConfig::all(), 0.7, &mut TrainRng::new(5)).unwrap();
    let c = diffaug::augment(&x, &DiffAugmentConfig::all(), 0.7, &mut TrainRng::new(6)).unwrap();
    assert_eq!(common::max_abs_diff(&a, &b), 0.0);
    assert!(common::max_abs_diff(&a, &c) > 0.0);
}

#[test]
fn translation_moves_whole_images_by_whole_pixels() {
    // A single bright pixel must land on exactly one pixel (or leave the image).
    let mut values = vec![0f32; 16 * 16];
    values[8 * 16 + 8] = 1.0;
    let x = Tensor::from_vec(values, (1, 1, 16, 16), &Device::Cpu).unwrap();
    for seed in 0..20 {
        let y = diffaug::translation(&x, 1.0, &mut TrainRng::new(seed)).unwrap();
        let v = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let lit: Vec<usize> = (0..v.len()).filter(|&i| v[i] != 0.0).collect();
        assert_eq!(lit.len(), 1, "seed {seed}");
        let (row, col) = (lit[0] / 16, lit[0] % 16);
        assert!(
            row.abs_diff(8) <= 2 && col.abs_diff(8) <= 2,
            "seed {seed}: moved to {row},{col}"
        );
    }
}

#[test]
fn the_ada_controller_moves_p_by_batch_over_images_to_full_each_step() {
    let mut config = common::tiny(16);
    let mut augment = DiffAugmentConfig::all();
    augment.probability = 0.5;
    augment.adaptive = Some(aegan::config::AdaptiveAugment {
        target: 0.6,
        images_to_full: 400.0,
    });
    config.diff_augment = Some(augment);
    let mut trainer = aegan::AeganTrainer::new(config, &Device::Cpu).unwrap();
    let data = aegan::data::synthetic::lesions(4, 16, 0)
        .to_tensor(&Device::Cpu)
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        trainer.step(&data).unwrap();
        seen.push(trainer.adaptive_state().augment_probability);
    }
    // Each discriminator step moves p by exactly batch / images_to_full = 0.01 either way.
    let mut before = 0.5;
    for p in seen {
        assert!(((p - before).abs() - 0.01).abs() < 1e-12, "{before} -> {p}");
        before = p;
    }
}

#[test]
fn a_parameter_that_joins_late_moves_by_about_the_learning_rate() {
    let early = Var::new(&[1f32], &Device::Cpu).unwrap();
    let late = Var::new(&[1f32], &Device::Cpu).unwrap();
    let lr = 1e-3;
    let mut adam = Adam::new(
        vec![("early".into(), early.clone()), ("late".into(), late.clone())],
        lr,
        (0.5, 0.999),
        1e-8,
    )
    .unwrap();
    for _ in 0..999 {
        let grads = (early.as_tensor() * 3.0)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        adam.step(&grads).unwrap();
    }
    let before = late.as_tensor().to_vec1::<f32>().unwrap()[0];
    let loss = ((early.as_tensor() * 3.0).unwrap() + (late.as_tensor() * 5.0).unwrap()).unwrap();
    adam.step(&loss.sum_all().unwrap().backward().unwrap()).unwrap();
    let moved = (before - late.as_tensor().to_vec1::<f32>().unwrap()[0]) as f64;
    // Bias-corrected by its own first step, Adam's first update is lr · g/|g| = lr.
    assert!(
        (moved - lr).abs() < 0.01 * lr,
        "moved {moved}, learning rate {lr}"
    );
    let counts: HashMap<String, u64> = adam.param_steps().into_iter().collect();
    assert_eq!(counts["early"], 1000);
    assert_eq!(counts["late"], 1);
    assert_eq!(adam.steps(), 1000);
}

#[test]
fn adam_matches_a_reference_computed_by_hand() {
    // Known gradients of a loss g·p (so ∂/∂p = g) fed to Adam, against Kingma & Ba's update
    // written out in f64.
    let gradients = [0.5f64, -1.0, 2.0, 0.25, -0.75];
    let (lr, b1, b2, eps) = (0.1, 0.9, 0.999, 1e-8);
    let p = Var::new(&[1f32], &Device::Cpu).unwrap();
    let mut adam = Adam::new(vec![("p".into(), p.clone())], lr, (b1, b2), eps).unwrap();
    let (mut want, mut m, mut v) = (1f64, 0f64, 0f64);
    for (t, &g) in gradients.iter().enumerate() {
        let loss = (p.as_tensor() * g).unwrap().sum_all().unwrap();
        adam.step(&loss.backward().unwrap()).unwrap();
        m = b1 * m + (1.0 - b1) * g;
        v = b2 * v + (1.0 - b2) * g * g;
        let t = (t + 1) as i32;
        want -= lr * (m / (1.0 - b1.powi(t))) / ((v / (1.0 - b2.powi(t))).sqrt() + eps);
        let got = p.as_tensor().to_vec1::<f32>().unwrap()[0] as f64;
        assert!((got - want).abs() < 1e-6, "step {t}: {got} vs {want}");
    }
}

#[test]
fn spectral_norm_keeps_one_saved_estimate_per_dx_layer_advanced_once_per_step() {
    use aegan::{AeganTrainer, NetworkKind};
    let mut config = common::tiny(16);
    config.image_discriminator.spectral_norm = true;
    let mut trainer = AeganTrainer::new(config, &Device::Cpu).unwrap();
    let estimates = |t: &AeganTrainer| -> Vec<(String, Vec<f32>)> {
        let store = t.networks().store(NetworkKind::ImageDiscriminator);
        store
            .buffers()
            .into_iter()
            .filter(|(name, _)| name.ends_with("spectral_u"))
            .map(|(name, v)| (name, v.as_tensor().to_vec1::<f32>().unwrap()))
            .collect()
    };
    let names: Vec<String> = estimates(&trainer).into_iter().map(|(n, _)| n).collect();
    // 16×16: the full-resolution conv, two stride-2 blocks (16→8→4) and the output layer.
    assert_eq!(
        names,
        [
            "down.0.conv.spectral_u",
            "down.1.conv.spectral_u",
            "from_image.spectral_u",
            "out.spectral_u"
        ]
    );
    let store = trainer.networks().store(NetworkKind::ImageDiscriminator);
    assert!(store.trainable().iter().all(|(n, _)| !n.ends_with("spectral_u")));
    // The other networks are untouched by the option.
    for kind in [
        NetworkKind::Generator,
        NetworkKind::Encoder,
        NetworkKind::LatentDiscriminator,
    ] {
        let store = trainer.networks().store(kind);
        assert!(store.all().iter().all(|(n, _)| !n.ends_with("spectral_u")));
    }

    let before = estimates(&trainer);
    let data = aegan::data::synthetic::lesions(8, 16, 0)
        .to_tensor(&Device::Cpu)
        .unwrap();
    let batch = data.narrow(0, 0, 4).unwrap();
    trainer.step(&batch).unwrap();
    let after = estimates(&trainer);
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        assert_ne!(a, b, "{name} advanced");
        let norm: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{name} is a unit vector: {norm}");
    }
    // A generator step alone leaves Dx's estimates where they were.
    trainer.generator_step(&batch, None).unwrap();
    assert_eq!(estimates(&trainer), after);
}

/// The README's statement of what spectral normalisation covers: Dx's convolutions and output
/// layer, not a conditional Dx's class projection or auxiliary classifier head.
#[test]
fn spectral_norm_covers_the_convolutions_and_output_of_dx_but_not_its_class_layers() {
    use aegan::config::ConditioningConfig;
    use aegan::NetworkKind;
    let mut config = common::tiny(16);
    config.image_discriminator.spectral_norm = true;
    let mut conditioning = ConditioningConfig::new(vec!["a".into(), "b".into()]);
    conditioning.class_loss_weight = 0.5;
    config.conditioning = Some(conditioning);
    let nets = aegan::Networks::new(&config, &Device::Cpu).unwrap();
    let store = nets.store(NetworkKind::ImageDiscriminator);
    let weights: Vec<String> = store
        .trainable()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| !n.contains("norm") && !n.ends_with("bias"))
        .collect();
    let normalised: Vec<String> = store
        .buffers()
        .into_iter()
        .filter_map(|(n, _)| n.strip_suffix(".spectral_u").map(str::to_string))
        .collect();
    for weight in &weights {
        let layer = weight.trim_end_matches(".weight").trim_end_matches(".embeddings");
        let class_layer = layer.starts_with("class_projection") || layer.starts_with("class_head");
        assert_eq!(
            normalised.iter().any(|n| n == layer),
            !class_layer,
            "{weight}: normalised {normalised:?}"
        );
    }
    assert!(weights.iter().any(|w| w.starts_with("class_projection")));
    assert!(weights.iter().any(|w| w.starts_with("class_head")));
}

#[test]
fn the_consistency_term_is_the_mean_squared_difference_of_the_logits() {
    use aegan::objective::consistency_term;
    let a = Tensor::new(&[[1f32], [2.0]], &Device::Cpu).unwrap();
    let b = Tensor::new(&[[0f32], [4.0]], &Device::Cpu).unwrap();
    let term = consistency_term(&a, &b).unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(term, 2.5, "mean of 1² and 2²");
    // Differentiable in both: d/da = 2(a − b)/n, d/db = −2(a − b)/n.
    let (va, vb) = (Var::from_tensor(&a).unwrap(), Var::from_tensor(&b).unwrap());
    let grads = consistency_term(va.as_tensor(), vb.as_tensor())
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(gradient(&grads, &va), [1.0, -2.0]);
    assert_eq!(gradient(&grads, &vb), [-1.0, 2.0]);
}

#[test]
fn consistency_adds_nothing_for_the_identity_transform_and_a_penalty_for_a_real_one() {
    use aegan::config::ConsistencyConfig;
    let d_image = |consistency: Option<ConsistencyConfig>| {
        discriminator_losses(|config| config.consistency = consistency).image
    };
    let without = d_image(None);
    let mut identity = ConsistencyConfig::default();
    identity.transforms.probability = 0.0;
    assert_eq!(d_image(Some(identity)), without, "T = identity: Dx(T(x)) = Dx(x)");
    let with = d_image(Some(ConsistencyConfig::default()));
    assert!(with > without, "translation and cutout: {with} vs {without}");
}

#[test]
fn the_smoothing_targets_enter_the_cross_entropy_as_given() {
    use aegan::objective::bce_with_logits;
    let logits = Tensor::new(&[0f32, 2.0], &Device::Cpu).unwrap();
    let at = |target: f64| {
        bce_with_logits(&logits, target)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    // −t·log σ(l) − (1 − t)·log(1 − σ(l)), averaged over the two logits.
    let by_hand = |t: f64| {
        let sigma = |l: f64| 1.0 / (1.0 + (-l).exp());
        [0.0, 2.0]
            .iter()
            .map(|&l| -t * sigma(l).ln() - (1.0 - t) * (1.0 - sigma(l)).ln())
            .sum::<f64>()
            / 2.0
    };
    // Real-side-only smoothing (Salimans et al. 2016): real 0.9, fake 0 (the hard label).
    for target in [0.9, 0.0, 0.95, 0.05, 1.0] {
        assert!(
            (f64::from(at(target)) - by_hand(target)).abs() < 1e-6,
            "target {target}"
        );
    }
    let mut config = common::tiny(16);
    config.fake_target = 0.0;
    config.validate().unwrap();
}

#[test]
fn the_self_supervision_term_on_known_tensors() {
    use aegan::objective::self_supervision_term;
    let cpu = Device::Cpu;
    // x = 0, 1/16, …, 15/16 row by row; a decoder that returns its input; features 0.
    let x = Tensor::arange(0f32, 16.0, &cpu)
        .unwrap()
        .affine(1.0 / 16.0, 0.0)
        .unwrap()
        .reshape((1, 1, 4, 4))
        .unwrap();
    let f = Tensor::zeros((1, 1, 4, 4), aegan::candle_core::DType::F32, &cpu).unwrap();
    let identity = |t: &Tensor| Ok(t.clone());
    // Whole: mean(x) = 7.5/16. Bottom-right quadrant {10, 11, 14, 15}/16, upsampled ×2 on both
    // sides: mean 12.5/16. Total 20/16.
    let term = self_supervision_term(identity, &f, &x, 3).unwrap();
    assert!((scalar(&term) - 1.25).abs() < 1e-6, "{}", scalar(&term));
    // Top-left quadrant {0, 1, 4, 5}/16: mean 2.5/16, total 10/16.
    let term = self_supervision_term(identity, &f, &x, 0).unwrap();
    assert!((scalar(&term) - 0.625).abs() < 1e-6, "{}", scalar(&term));
    // Images larger than the decoder's output are averaged down: 8×8 ones against a 4×4
    // decoder give 1 for the whole image and 1 for the quadrant.
    let ones = Tensor::ones((1, 1, 8, 8), aegan::candle_core::DType::F32, &cpu).unwrap();
    let term = self_supervision_term(identity, &f, &ones, 1).unwrap();
    assert!((scalar(&term) - 2.0).abs() < 1e-6, "{}", scalar(&term));
    assert!(self_supervision_term(identity, &f, &x, 4).is_err());
}

#[test]
fn the_self_supervised_decoder_s_gradient_reaches_dx() {
    use aegan::objective::self_supervision_term;
    use aegan::{NetworkKind, Networks};
    let mut config = common::tiny(16);
    config.self_supervision = Some(aegan::config::SelfSupervisionConfig::default());
    let nets = Networks::new(&config, &Device::Cpu).unwrap();
    let dx = &nets.image_discriminator;
    assert!(dx.has_decoder());
    let x = batch();
    let out = dx.forward_all_t(&x, None, true).unwrap();
    let features = out.features.expect("8×8 features of a Dx with a decoder");
    assert_eq!(features.dims()[2..], [8, 8]);
    let decoded = dx.decode(&features, true).unwrap();
    assert_eq!(decoded.dims(), [x.dim(0).unwrap(), 3, 32, 32]);
    let term = self_supervision_term(|f| Ok(dx.decode(f, true)?), &features, &x, 2).unwrap();
    let grads = term.backward().unwrap();
    let store = nets.store(NetworkKind::ImageDiscriminator);
    let gradient_of = |name: &str| {
        let (_, var) = store
            .trainable()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} not in Dx"));
        grads
            .get(var.as_tensor())
            .map(|g| g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap())
            .unwrap_or(0.0)
    };
    assert!(gradient_of("decoder.out.weight") > 0.0);
    assert!(
        gradient_of("from_image.weight") > 0.0,
        "the decoder's error reaches Dx's first layer"
    );
    // The logits do not read the decoder, and a Dx without one gives no features.
    let plain = Networks::new(&common::tiny(16), &Device::Cpu).unwrap();
    let plain_out = plain.image_discriminator.forward_all_t(&x, None, true).unwrap();
    assert!(plain_out.features.is_none() && !plain.image_discriminator.has_decoder());
    assert!(plain.image_discriminator.decode(&features, true).is_err());
}

#[test]
fn self_supervision_adds_the_decoder_s_error_to_dx_s_loss() {
    let d_losses = |self_supervision: Option<aegan::config::SelfSupervisionConfig>| {
        discriminator_losses(|config| config.self_supervision = self_supervision)
    };
    let without = d_losses(None);
    let with = d_losses(Some(aegan::config::SelfSupervisionConfig { weight: 2.0 }));
    // The decoder is new weights in Dx, drawn after the others: the logits are the same.
    assert_eq!(with.latent, without.latent);
    // A fresh decoder draws far from the images: a positive error, twice weighted.
    assert!(
        with.image > without.image + 0.1,
        "{} vs {}",
        with.image,
        without.image
    );
}

#[test]
fn a_growing_self_supervised_dx_keeps_its_8x8_features_from_8x8_images_on() {
    use aegan::progressive::{downsample_area, Growth};
    use aegan::Networks;
    let mut config = common::tiny(32);
    config.progressive = Some(aegan::config::ProgressiveConfig::new(8));
    config.self_supervision = Some(aegan::config::SelfSupervisionConfig::default());
    let mut nets = Networks::new(&config, &Device::Cpu).unwrap();
    let x = TrainRng::new(5).normal((2, 3, 32, 32), &Device::Cpu).unwrap();
    for (resolution, alpha, has_features) in
        [(4, 1.0, false), (8, 0.5, true), (16, 0.5, true), (32, 1.0, true)]
    {
        nets.set_growth(Some(Growth { resolution, alpha })).unwrap();
        let seen = downsample_area(&x, 32 / resolution).unwrap();
        let out = nets.image_discriminator.forward_all_t(&seen, None, true).unwrap();
        assert_eq!(
            out.features.is_some(),
            has_features,
            "at {resolution}×{resolution}"
        );
        if let Some(f) = out.features {
            assert_eq!(f.dims()[2..], [8, 8], "at {resolution}×{resolution}");
        }
    }
}

#[test]
fn the_mode_seeking_term_on_known_tensors() {
    use aegan::objective::{mode_seeking_term, MODE_SEEKING_EPSILON};
    let device = Device::Cpu;
    // Four 16×16 images, each one value everywhere (0, 1, 2, 3), paired 0–2 and 1–3:
    // d = 2 and 2 at 8×8; latents paired |Δz| = (1, 1) → 1 and (2, 2) → 2; ratios 2 and 1.
    let flat = |v: f32| Tensor::full(v, (1, 1, 16, 16), &device).unwrap();
    let images = Tensor::cat(&[flat(0.0), flat(1.0), flat(2.0), flat(3.0)], 0).unwrap();
    let z = Tensor::new(&[[0f32, 0.0], [0.0, 0.0], [1.0, 1.0], [2.0, -2.0]], &device).unwrap();
    let eps = MODE_SEEKING_EPSILON;
    let ratio = 0.5 * (2.0 / (1.0 + eps) + 2.0 / (2.0 + eps));
    let want = 1.0 / (ratio + eps);
    let got = scalar(&mode_seeking_term(&images, &z).unwrap());
    assert!((got - want).abs() < 1e-6, "{got} against {want}");
    // An odd batch's last image is in no pair (h = 2: pairs 0–2 and 1–3 as before), so a
    // fifth image changes nothing.
    let five = Tensor::cat(&[&images, &images.narrow(0, 0, 1).unwrap()], 0).unwrap();
    let z5 = Tensor::cat(&[&z, &z.narrow(0, 3, 1).unwrap()], 0).unwrap();
    assert!((scalar(&mode_seeking_term(&five, &z5).unwrap()) - want).abs() < 1e-6);
    // The gradient pushes each pair apart: ∂/∂x of 1/(r + ε) is −(1/(r + ε))²·∂r/∂x; a pixel
    // of image 0 is a quarter of one of 64 cells, so ∂r/∂x = ½·(1/256)·sign(x_0 − x_2)/(|Δz_0| + ε).
    let v = Var::from_tensor(&images).unwrap();
    let grads = mode_seeking_term(v.as_tensor(), &z).unwrap().backward().unwrap();
    let g = grads.get(v.as_tensor()).unwrap();
    let at = |i: usize| g.get(i).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let expected = want * want / (512.0 * (1.0 + eps));
    assert!(
        at(0).iter().all(|&d| (d as f64 - expected).abs() < 1e-7),
        "{:?}",
        at(0)
    );
    assert!(
        at(2).iter().all(|&d| (d as f64 + expected).abs() < 1e-7),
        "{:?}",
        at(2)
    );
    // A batch of one has no pair; latents of another count do not fit.
    assert!(mode_seeking_term(&images.narrow(0, 0, 1).unwrap(), &z.narrow(0, 0, 1).unwrap()).is_err());
    assert!(mode_seeking_term(&images, &z.narrow(0, 0, 3).unwrap()).is_err());
    // Images larger than 8×8 of a side that 8 does not divide, or not square, are refused.
    let odd_side = Tensor::zeros((4, 1, 12, 12), DType::F32, &device).unwrap();
    assert!(mode_seeking_term(&odd_side, &z).is_err());
    let oblong = Tensor::zeros((4, 1, 8, 16), DType::F32, &device).unwrap();
    assert!(mode_seeking_term(&oblong, &z).is_err());
    // Two equal latents: the term and its gradient stay finite.
    let same = Tensor::zeros((4, 2), DType::F32, &device).unwrap();
    let v = Var::from_tensor(&images).unwrap();
    let term = mode_seeking_term(v.as_tensor(), &same).unwrap();
    assert!(scalar(&term).is_finite());
    let grads = term.backward().unwrap();
    assert!(gradient(&grads, &v).iter().all(|x| x.is_finite()));
}

#[test]
fn the_mode_seeking_term_does_not_count_texture_finer_than_its_side() {
    use aegan::objective::{mode_seeking_term, MODE_SEEKING_EPSILON};
    let device = Device::Cpu;
    // A one-pixel checkerboard and its negative differ by 2 at every pixel and not at all
    // once averaged over 2×2 blocks: the term is at its bound 1/ε.
    let checker: Vec<f32> = (0..256)
        .map(|p| if (p / 16 + p % 16) % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let a = Tensor::from_vec(checker, (1, 1, 16, 16), &device).unwrap();
    let images = Tensor::cat(&[&a, &a.neg().unwrap()], 0).unwrap();
    let z = Tensor::new(&[[0f32], [1.0]], &device).unwrap();
    let got = scalar(&mode_seeking_term(&images, &z).unwrap());
    assert!((got - 1.0 / MODE_SEEKING_EPSILON).abs() < 1.0, "{got}");
    // 8×8 images are compared as they are: the same pair differs by 2 (|Δz| = 1).
    let small = images.narrow(2, 0, 8).unwrap().narrow(3, 0, 8).unwrap();
    let got = scalar(&mode_seeking_term(&small, &z).unwrap());
    let eps = MODE_SEEKING_EPSILON;
    assert!((got - 1.0 / (2.0 / (1.0 + eps) + eps)).abs() < 1e-6, "{got}");
}

#[test]
fn paired_labels_repeat_the_first_half_and_keep_an_odd_last_label() {
    use aegan::objective::paired_labels;
    let labels = |v: &[u32]| Tensor::new(v, &Device::Cpu).unwrap();
    let even = paired_labels(&labels(&[3, 1, 4, 1, 5, 9])).unwrap();
    assert_eq!(even.to_vec1::<u32>().unwrap(), [3, 1, 4, 3, 1, 4]);
    let odd = paired_labels(&labels(&[2, 7, 1, 8, 6])).unwrap();
    assert_eq!(odd.to_vec1::<u32>().unwrap(), [2, 7, 2, 7, 6]);
}
