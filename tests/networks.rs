//! The four networks have the right shapes at every size and the presets the stated cost.

mod common;

use aegan::candle_core::{Device, Tensor};
use aegan::config::Upsample;
use aegan::rng::TrainRng;
use aegan::{AeganConfig, AeganTrainer, Networks};

#[test]
fn every_network_has_the_right_shapes_at_every_size_from_16_to_256() {
    let mut rng = TrainRng::new(21);
    let device = Device::Cpu;
    for size in [16, 32, 64, 128, 256] {
        for upsample in [
            Upsample::NearestConv,
            Upsample::TransposedConv,
            Upsample::BilinearConv,
            Upsample::SubPixelConv,
            Upsample::NearestPlusSubPixel,
        ] {
            let mut config = common::tiny_full(size);
            config.upsample = upsample;
            let nets = Networks::new(&config, &device).unwrap();
            let z = rng.normal((2, config.latent_dim), &device).unwrap();
            let x = nets.generator.forward_t(&z, true).unwrap();
            assert_eq!(x.dims(), &[2, 3, size, size], "G at {size} ({upsample:?})");
            let z_back = nets.encoder.forward_t(&x, true).unwrap();
            assert_eq!(z_back.dims(), &[2, config.latent_dim], "E at {size}");
            assert_eq!(
                nets.image_discriminator.forward_t(&x, true).unwrap().dims(),
                &[2, 1],
                "Dx at {size}"
            );
            assert_eq!(
                nets.latent_discriminator.forward_t(&z, true).unwrap().dims(),
                &[2, 1],
                "Dz at {size}"
            );
        }
    }
}

#[test]
fn generator_output_lies_in_minus_one_to_one() {
    let mut rng = TrainRng::new(22);
    let config = common::tiny(32);
    let nets = Networks::new(&config, &Device::Cpu).unwrap();
    let z = (rng.normal((8, config.latent_dim), &Device::Cpu).unwrap() * 50.0).unwrap();
    let x = nets
        .generator
        .forward_t(&z, false)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(x.iter().all(|v| (-1.0..=1.0).contains(v)));
}

#[test]
fn author32_has_the_reference_layout() {
    let nets = Networks::new(&AeganConfig::author32(), &Device::Cpu).unwrap();
    let g: Vec<(String, Vec<usize>)> = nets
        .store(aegan::NetworkKind::Generator)
        .trainable()
        .into_iter()
        .filter(|(n, _)| n.ends_with("weight") && !n.contains("norm"))
        .map(|(n, v)| (n, v.dims().to_vec()))
        .collect();
    let expect = [
        ("head.0.conv.weight", vec![64, 128, 4, 4]),
        ("head.1.conv.weight", vec![64, 64, 5, 5]),
        ("out.weight", vec![3, 64, 1, 1]),
        ("stages.0.conv.weight", vec![512, 512, 4, 4]),
        ("stages.1.conv.weight", vec![256, 512, 4, 4]),
        ("stages.2.conv.weight", vec![128, 256, 4, 4]),
        ("stem.linear.weight", vec![8192, 16]),
    ];
    let expect: Vec<(String, Vec<usize>)> = expect.into_iter().map(|(n, d)| (n.to_string(), d)).collect();
    assert_eq!(g, expect);
    let dx_out = nets.store(aegan::NetworkKind::ImageDiscriminator).all();
    let out = dx_out.iter().find(|(n, _)| n == "out.weight").unwrap();
    assert_eq!(out.1.dims(), &[1, 512 * 4 * 4]);
    let e = nets.store(aegan::NetworkKind::Encoder).all();
    let fc0 = e.iter().find(|(n, _)| n == "head.fc.0.weight").unwrap();
    assert_eq!(fc0.1.dims(), &[128, 256 * 4 * 4]);
}

#[test]
fn the_presets_cost_what_the_readme_says_per_image_step() {
    let gflop =
        |config: AeganConfig| AeganTrainer::new(config, &Device::Cpu).unwrap().flops_per_image() as f64 / 1e9;
    // The README: lean 0.75 GFLOP at 32×32 (the sprites preset's networks too), author32
    // about 27.
    let lean = gflop(AeganConfig::default());
    assert!((0.745..0.755).contains(&lean), "lean32 costs {lean} GFLOP");
    let sprites = gflop(AeganConfig::sprites(32));
    assert!(
        (0.745..0.755).contains(&sprites),
        "sprites32 costs {sprites} GFLOP"
    );
    let author = gflop(AeganConfig::author32());
    assert!((26.5..27.5).contains(&author), "author32 costs {author} GFLOP");
}

#[test]
fn same_seed_gives_same_initial_weights_and_another_seed_differs() {
    let config = common::tiny(16);
    let a = common::snapshot(&Networks::new(&config, &Device::Cpu).unwrap());
    let b = common::snapshot(&Networks::new(&config, &Device::Cpu).unwrap());
    assert_eq!(a, b);
    let mut other = config.clone();
    other.seed = 1;
    let c = common::snapshot(&Networks::new(&other, &Device::Cpu).unwrap());
    assert_ne!(a, c);
}

#[test]
fn a_network_built_on_its_own_refuses_an_invalid_config() {
    let mut config = aegan::AeganConfig::lean(32);
    config.image_size = 24;
    let store = aegan::params::ParamStore::new(0);
    let vb = || store.var_builder(&aegan::candle_core::Device::Cpu);
    // Dz reads latents only: the image size is not part of its config.
    let errors = [
        aegan::Generator::new(&config, vb()).err(),
        aegan::Encoder::new(&config, vb()).err(),
        aegan::ImageDiscriminator::new(&config, vb()).err(),
    ];
    for err in errors {
        let message = err.expect("an image size of 24 was accepted").to_string();
        assert!(
            message.contains("image_size") && message.contains("24"),
            "{message}"
        );
    }
    config.image_size = 32;
    config.latent_discriminator.hidden = vec![16, 0];
    let message = aegan::LatentDiscriminator::new(&config, vb())
        .expect_err("a zero width was accepted")
        .to_string();
    assert!(message.contains("latent_discriminator.hidden"), "{message}");
}

#[test]
fn each_network_builds_from_its_own_spec_without_an_aegan_config() {
    let mut rng = TrainRng::new(23);
    use aegan::config::{
        EncoderConfig, EncoderSpec, GeneratorConfig, GeneratorSpec, ImageDiscriminatorConfig,
        ImageDiscriminatorSpec, ImageSpec, LatentDiscriminatorConfig, LatentDiscriminatorSpec, Norm,
        WidthSchedule,
    };
    let device = Device::Cpu;
    let store = aegan::params::ParamStore::new(3);
    let vb = || store.var_builder(&device);
    let image = ImageSpec {
        image_size: 16,
        channels: 3,
        norm: Norm::Batch,
        leaky_slope: 0.2,
        progressive_start: None,
        precision: aegan::config::Precision::F32,
    };
    let widths = WidthSchedule {
        at_32: 8,
        min: 4,
        max: 16,
    };
    let generator = GeneratorSpec {
        image,
        latent_dim: 5,
        upsample: Upsample::NearestConv,
        layout: GeneratorConfig {
            widths,
            kernel: 3,
            head: vec![],
            out_kernel: 3,
            noise: false,
            skip_outputs: false,
            excitation: false,
        },
        label_embedding: None,
    };
    let g = aegan::Generator::from_spec(&generator, vb().pp("g")).unwrap();
    let e = aegan::Encoder::from_spec(
        &EncoderSpec {
            image,
            latent_dim: 5,
            layout: EncoderConfig {
                widths,
                kernel: 3,
                neck: vec![],
                hidden: vec![7],
            },
        },
        vb().pp("e"),
    )
    .unwrap();
    let dx = aegan::ImageDiscriminator::from_spec(
        &ImageDiscriminatorSpec {
            image,
            layout: ImageDiscriminatorConfig {
                widths,
                kernel: 3,
                spectral_norm: false,
                residual: false,
                minibatch_std: None,
            },
            classes: None,
            auxiliary_classifier: false,
            decoder: false,
        },
        vb().pp("dx"),
    )
    .unwrap();
    let dz = aegan::LatentDiscriminator::from_spec(
        &LatentDiscriminatorSpec {
            latent_dim: 5,
            leaky_slope: 0.2,
            layout: LatentDiscriminatorConfig { hidden: vec![6] },
        },
        vb().pp("dz"),
    )
    .unwrap();
    let z = rng.normal((2, 5), &device).unwrap();
    let x = g.forward_t(&z, true).unwrap();
    assert_eq!(x.dims(), &[2, 3, 16, 16]);
    assert_eq!(e.forward_t(&x, true).unwrap().dims(), &[2, 5]);
    assert_eq!(dx.forward_t(&x, true).unwrap().dims(), &[2, 1]);
    assert_eq!(dz.forward_t(&z, true).unwrap().dims(), &[2, 1]);

    // Checked where it is built: the same spec with an image size of 24 is refused by name.
    let bad = GeneratorSpec {
        image: ImageSpec {
            image_size: 24,
            ..image
        },
        ..generator
    };
    let message = aegan::Generator::from_spec(&bad, vb().pp("bad"))
        .expect_err("accepted 24")
        .to_string();
    assert!(
        message.contains("image_size") && message.contains("24"),
        "{message}"
    );
}

#[test]
fn a_network_built_from_the_config_is_the_one_built_from_its_spec() {
    let mut rng = TrainRng::new(24);
    let config = common::tiny(16);
    let device = Device::Cpu;
    let z = rng.normal((3, config.latent_dim), &device).unwrap();
    let from_config = aegan::params::ParamStore::new(9);
    let from_spec = aegan::params::ParamStore::new(9);
    let a = aegan::Generator::new(&config, from_config.var_builder(&device)).unwrap();
    let b = aegan::Generator::from_spec(&config.generator_spec(), from_spec.var_builder(&device)).unwrap();
    let diff = common::max_abs_diff(&a.forward_t(&z, false).unwrap(), &b.forward_t(&z, false).unwrap());
    assert_eq!(diff, 0.0);
}

#[test]
fn nearest_plus_sub_pixel_starts_as_nearest_and_training_moves_its_phases() {
    let mut rng = TrainRng::new(25);
    let device = Device::Cpu;
    let nearest = common::tiny(16);
    let mut corrected = nearest.clone();
    corrected.upsample = Upsample::NearestPlusSubPixel;
    let a = Networks::new(&nearest, &device).unwrap();
    let b = Networks::new(&corrected, &device).unwrap();
    let z = rng.normal((4, nearest.latent_dim), &device).unwrap();
    let gap = common::max_abs_diff(
        &a.generator.forward_t(&z, false).unwrap(),
        &b.generator.forward_t(&z, false).unwrap(),
    );
    assert_eq!(
        gap, 0.0,
        "the zero correction changed G's initial output by {gap}"
    );

    let phases = |trainer: &AeganTrainer| -> f32 {
        let found = generator_weights(trainer.networks(), "phases");
        assert_eq!(found.len(), 2, "one phase convolution per stage at 16×16");
        largest_abs(&found)
    };
    let mut trainer = AeganTrainer::new(corrected, &device).unwrap();
    assert_eq!(phases(&trainer), 0.0);
    let real = (rng.normal((4, 3, 16, 16), &device).unwrap() * 0.5)
        .unwrap()
        .tanh()
        .unwrap();
    trainer.step(&real).unwrap();
    assert!(
        phases(&trainer) > 0.0,
        "one step left the phase convolutions at zero"
    );
}

/// G's trainable tensors whose names contain `part`, by name.
fn generator_weights(networks: &Networks, part: &str) -> Vec<(String, aegan::candle_core::Var)> {
    networks
        .store(aegan::NetworkKind::Generator)
        .trainable()
        .into_iter()
        .filter(|(n, _)| n.contains(part))
        .collect()
}

/// The largest absolute value among `weights`.
fn largest_abs(weights: &[(String, aegan::candle_core::Var)]) -> f32 {
    weights
        .iter()
        .map(|(_, v)| common::max_abs(v.as_tensor()))
        .fold(0.0, f32::max)
}

/// G's per-pixel noise weights.
fn noise_weights(networks: &Networks) -> Vec<(String, aegan::candle_core::Var)> {
    generator_weights(networks, ".noise")
}

#[test]
fn pixel_noise_starts_silent_and_keeps_g_a_function_of_each_latent() {
    let mut rng = TrainRng::new(26);
    let device = Device::Cpu;
    let mut plain = common::tiny(16);
    plain.generator.noise = false;
    let mut noisy = plain.clone();
    noisy.generator.noise = true;
    let a = Networks::new(&plain, &device).unwrap();
    let b = Networks::new(&noisy, &device).unwrap();
    assert!(noise_weights(&a).is_empty());
    let weights = noise_weights(&b);
    assert_eq!(weights.len(), 2, "one noise input per stage at 16×16");

    let z = rng.normal((4, plain.latent_dim), &device).unwrap();
    let image = |nets: &Networks, z: &Tensor| nets.generator.forward_t(z, false).unwrap();
    assert_eq!(common::max_abs_diff(&image(&a, &z), &image(&b, &z)), 0.0);

    for (_, w) in &weights {
        w.set(&w.as_tensor().ones_like().unwrap()).unwrap();
    }
    let batch = image(&b, &z);
    assert!(
        common::max_abs_diff(&image(&a, &z), &batch) > 0.05,
        "noise weighted 1 left the images as they were"
    );
    assert_eq!(common::max_abs_diff(&image(&b, &z), &batch), 0.0);
    let last = z.narrow(0, 3, 1).unwrap();
    let alone = image(&b, &last);
    let in_batch = batch.narrow(0, 3, 1).unwrap();
    assert!(
        common::max_abs_diff(&alone, &in_batch) < 1e-5,
        "a latent's noise depends on its place in the batch"
    );
    let twin = image(&b, &Tensor::cat(&[&last, &last], 0).unwrap());
    let twins_gap = common::max_abs_diff(&twin.narrow(0, 0, 1).unwrap(), &twin.narrow(0, 1, 1).unwrap());
    assert!(twins_gap < 1e-5, "the same latent twice drew different noise");

    // The trainer's form: the caller's seeds instead of the latents' hash (no read:
    // `host_reads.rs` counts a step's).
    let seeded = |seeds: &[u64]| b.generator.forward_seeded_t(&z, None, seeds, false).unwrap();
    let first = seeded(&[1, 2, 3, 4]);
    assert_eq!(common::max_abs_diff(&seeded(&[1, 2, 3, 4]), &first), 0.0);
    let other = seeded(&[1, 2, 3, 5]);
    assert_eq!(
        common::max_abs_diff(&other.narrow(0, 0, 3).unwrap(), &first.narrow(0, 0, 3).unwrap()),
        0.0,
        "a sample's noise depends on another sample's seed"
    );
    assert!(
        common::max_abs_diff(&other.narrow(0, 3, 1).unwrap(), &first.narrow(0, 3, 1).unwrap()) > 0.05,
        "another seed drew the same noise"
    );
    let plain_seeded = a.generator.forward_seeded_t(&z, None, &[], false).unwrap();
    assert_eq!(common::max_abs_diff(&plain_seeded, &image(&a, &z)), 0.0);
    assert!(
        b.generator.forward_seeded_t(&z, None, &[1, 2], false).is_err(),
        "two seeds for four latents"
    );
}

#[test]
fn training_moves_the_noise_weights_off_zero() {
    let mut rng = TrainRng::new(27);
    let device = Device::Cpu;
    let mut config = common::tiny(16);
    config.generator.noise = true;
    let mut trainer = AeganTrainer::new(config, &device).unwrap();
    let largest = |trainer: &AeganTrainer| largest_abs(&noise_weights(trainer.networks()));
    assert_eq!(largest(&trainer), 0.0);
    let real = (rng.normal((4, 3, 16, 16), &device).unwrap() * 0.5)
        .unwrap()
        .tanh()
        .unwrap();
    trainer.step(&real).unwrap();
    assert!(largest(&trainer) > 0.0, "one step left the noise weights at zero");
}
