//! Configs validate every field, name the bad one, and round-trip through JSON.

use aegan::config::{DiffAugmentConfig, LossWeights};
use aegan::{AeganConfig, AeganError, AeganTrainer};

fn invalid_field(config: &AeganConfig) -> &'static str {
    match config.validate() {
        Err(AeganError::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn presets_are_valid_at_every_supported_size() {
    for size in [16, 32, 64, 128, 256] {
        AeganConfig::lean(size).validate().unwrap();
        AeganConfig::author(size).validate().unwrap();
    }
}

#[test]
fn the_lean_preset_averages_g_over_more_images_from_64_pixels_up() {
    let half_life = |size| match AeganConfig::lean(size).generator_average {
        Some(aegan::config::GeneratorAverage::HalfLife { half_life_images, .. }) => half_life_images,
        other => panic!("the lean preset samples from G's average with a half-life: {other:?}"),
    };
    assert_eq!(half_life(16), half_life(32));
    assert!(
        half_life(64) > half_life(32),
        "{} vs {}",
        half_life(64),
        half_life(32)
    );
    assert_eq!(half_life(64), half_life(256));
    assert_eq!(half_life(32), aegan::config::lean_half_life_images(32));
}

#[test]
fn the_lean_preset_has_pixel_noise_below_64_pixels_only() {
    for (size, noise) in [(16, true), (32, true), (64, false), (256, false)] {
        assert_eq!(AeganConfig::lean(size).generator.noise, noise, "lean({size})");
        assert_eq!(aegan::config::lean_pixel_noise(size), noise);
    }
}

#[test]
fn the_sprites_preset_is_the_lean_networks_with_diff_augment_and_mode_seeking() {
    for size in [16, 32, 64] {
        let (sprites, lean) = (AeganConfig::sprites(size), AeganConfig::lean(size));
        assert_eq!(
            sprites.diff_augment,
            Some(DiffAugmentConfig::all()),
            "sprites({size})"
        );
        assert_eq!(sprites.loss_weights.mode_seeking, 0.03, "sprites({size})");
        let back_to_lean = AeganConfig {
            diff_augment: None,
            loss_weights: LossWeights {
                mode_seeking: 0.0,
                ..sprites.loss_weights
            },
            ..sprites.clone()
        };
        assert_eq!(
            back_to_lean, lean,
            "sprites({size}) differs from lean({size}) in nothing else"
        );
        sprites.validate().unwrap();
    }
}

#[test]
fn each_bad_field_is_named_with_its_value() {
    let c = AeganConfig {
        image_size: 48,
        ..AeganConfig::default()
    };
    assert_eq!(invalid_field(&c), "image_size");
    assert!(c.validate().unwrap_err().to_string().contains("48"));

    type Breaker = Box<dyn Fn(&mut AeganConfig)>;
    let cases: Vec<(&str, Breaker)> = vec![
        ("image_size", Box::new(|c| c.image_size = 512)),
        ("channels", Box::new(|c| c.channels = 0)),
        ("latent_dim", Box::new(|c| c.latent_dim = 0)),
        ("generator.widths", Box::new(|c| c.generator.widths.min = 999)),
        // A typo of a few zeros is an error, not an allocation the machine cannot make.
        ("latent_dim", Box::new(|c| c.latent_dim = 1_000_000_000)),
        (
            "generator.widths",
            Box::new(|c| c.generator.widths.max = 1_000_000),
        ),
        ("encoder.kernel", Box::new(|c| c.encoder.kernel = 4)),
        ("real_target", Box::new(|c| c.real_target = 1.5)),
        ("fake_target", Box::new(|c| c.fake_target = 0.99)),
        ("output_zeroing", Box::new(|c| c.output_zeroing = 1.0)),
        (
            "generator_average.decay",
            Box::new(|c| {
                c.generator_average = Some(aegan::config::GeneratorAverage::FixedDecay { decay: 1.0 })
            }),
        ),
        (
            "learning_rates.image_discriminator",
            Box::new(|c| c.learning_rates.image_discriminator = f64::NAN),
        ),
        (
            "loss_weights.latent_reconstruction",
            Box::new(|c| c.loss_weights.latent_reconstruction = -1.0),
        ),
        (
            "loss_weights.reconstruction_adversarial",
            Box::new(|c| c.loss_weights.reconstruction_adversarial = Some(f64::INFINITY)),
        ),
        ("adam_betas", Box::new(|c| c.adam_betas = (0.5, 1.0))),
        ("batch_size", Box::new(|c| c.batch_size = 1)),
        ("leaky_slope", Box::new(|c| c.leaky_slope = 1.0)),
        (
            "generator_average.half_life_images",
            Box::new(|c| {
                c.generator_average = Some(aegan::config::GeneratorAverage::HalfLife {
                    half_life_images: 0.0,
                    ramp_up: 0.05,
                })
            }),
        ),
        (
            "lecam.decay",
            Box::new(|c| {
                c.lecam = Some(aegan::config::LeCamConfig {
                    weight: 0.3,
                    decay: 1.0,
                })
            }),
        ),
        (
            "diff_augment.probability",
            Box::new(|c| {
                let mut d = aegan::config::DiffAugmentConfig::all();
                d.probability = 1.5;
                c.diff_augment = Some(d);
            }),
        ),
        (
            "diff_augment.adaptive.images_to_full",
            Box::new(|c| {
                let mut d = aegan::config::DiffAugmentConfig::all();
                d.adaptive = Some(aegan::config::AdaptiveAugment {
                    target: 0.6,
                    images_to_full: 0.0,
                });
                c.diff_augment = Some(d);
            }),
        ),
        (
            "image_discriminator.minibatch_std",
            Box::new(|c| c.image_discriminator.minibatch_std = Some(1)),
        ),
        (
            "self_supervision.weight",
            Box::new(|c| c.self_supervision = Some(aegan::config::SelfSupervisionConfig { weight: 0.0 })),
        ),
        (
            "consistency.fake_weight",
            Box::new(|c| {
                c.consistency = Some(aegan::config::ConsistencyConfig {
                    fake_weight: -1.0,
                    ..Default::default()
                })
            }),
        ),
    ];
    for (field, break_it) in cases {
        let mut c = AeganConfig::default();
        break_it(&mut c);
        assert_eq!(invalid_field(&c), field);
    }
}

#[test]
fn trainer_refuses_an_invalid_config() {
    let c = AeganConfig {
        latent_dim: 0,
        ..AeganConfig::default()
    };
    let err = AeganTrainer::new(c, &aegan::candle_core::Device::Cpu)
        .err()
        .unwrap();
    assert!(matches!(
        err,
        AeganError::InvalidConfig {
            field: "latent_dim",
            ..
        }
    ));
}

#[test]
fn json_round_trip_and_unknown_fields_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let config = AeganConfig::author32();
    std::fs::write(&path, config.to_json()).unwrap();
    assert_eq!(AeganConfig::from_json_file(&path).unwrap(), config);

    let typo = config.to_json().replace("\"latent_dim\"", "\"latent_dims\"");
    std::fs::write(&path, typo).unwrap();
    let err = AeganConfig::from_json_file(&path).unwrap_err();
    assert!(matches!(err, AeganError::Json { .. }), "{err}");
    assert!(err.to_string().contains("latent_dims"), "{err}");
}

#[test]
fn unknown_preset_is_named() {
    let err = AeganConfig::preset("huge", 32).unwrap_err();
    assert!(err.to_string().contains("huge"));
}

#[test]
fn the_architecture_options_round_trip_and_old_configs_leave_them_off() {
    let mut config = AeganConfig::lean(64);
    config.generator.skip_outputs = true;
    config.generator.excitation = true;
    config.image_discriminator.residual = true;
    config.image_discriminator.minibatch_std = Some(4);
    config.consistency = Some(aegan::config::ConsistencyConfig::default());
    config.self_supervision = Some(aegan::config::SelfSupervisionConfig::default());
    config.loss_weights.reconstruction_adversarial = Some(0.0);
    let json = config.to_json();
    let back: AeganConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, config);
    // A config written before these options existed has none of their fields.
    let old = AeganConfig::lean(64).to_json();
    for field in [
        "skip_outputs",
        "excitation",
        "residual",
        "minibatch_std",
        "consistency",
        "self_supervision",
        "reconstruction_adversarial",
    ] {
        assert!(!old.contains(field), "{field} written for a config that is off");
    }
    let read: AeganConfig = serde_json::from_str(&old).unwrap();
    assert!(!read.generator.skip_outputs && read.image_discriminator.minibatch_std.is_none());
    // Unset, the reconstructions take the image adversarial weight.
    let w = read.loss_weights;
    assert!(w.reconstruction_adversarial.is_none());
    assert_eq!(w.reconstruction_adversarial_weight(), w.image_adversarial);
}

#[test]
fn a_config_with_the_older_generator_ema_field_loads_as_a_fixed_decay_average() {
    let mut json: serde_json::Value = serde_json::from_str(&AeganConfig::lean(32).to_json()).unwrap();
    let object = json.as_object_mut().unwrap();
    object.remove("generator_average");
    object.insert("generator_ema".into(), serde_json::json!(0.999));
    let config = AeganConfig::from_json(&json.to_string()).unwrap();
    assert_eq!(
        config.generator_average,
        Some(aegan::config::GeneratorAverage::FixedDecay { decay: 0.999 })
    );
    // 0 was "no average".
    let object = json.as_object_mut().unwrap();
    object.insert("generator_ema".into(), serde_json::json!(0.0));
    assert_eq!(
        AeganConfig::from_json(&json.to_string())
            .unwrap()
            .generator_average,
        None
    );
    // Both forms at once, as before, is refused.
    let object = json.as_object_mut().unwrap();
    object.insert("generator_ema".into(), serde_json::json!(0.9));
    object.insert(
        "generator_average".into(),
        serde_json::json!({"half_life_images": 4000.0, "ramp_up": 0.05}),
    );
    assert!(AeganConfig::from_json(&json.to_string()).is_err());
    // The new forms round-trip.
    let mut fixed = AeganConfig::lean(32);
    fixed.generator_average = Some(aegan::config::GeneratorAverage::FixedDecay { decay: 0.99 });
    assert_eq!(AeganConfig::from_json(&fixed.to_json()).unwrap(), fixed);
}
