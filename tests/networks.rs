//! The four networks have the right shapes at every size and the presets the stated cost.

mod common;

use aegan::candle_core::{Device, Tensor};
use aegan::config::Upsample;
use aegan::{AeganConfig, AeganTrainer, Networks};

#[test]
fn every_network_has_the_right_shapes_at_every_size_from_16_to_256() {
    let device = Device::Cpu;
    for size in [16, 32, 64, 128, 256] {
        for upsample in [
            Upsample::NearestConv,
            Upsample::TransposedConv,
            Upsample::BilinearConv,
        ] {
            let mut config = common::tiny_full(size);
            config.upsample = upsample;
            let nets = Networks::new(&config, &device).unwrap();
            let z = Tensor::randn(0f32, 1.0, (2, config.latent_dim), &device).unwrap();
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
    let config = common::tiny(32);
    let nets = Networks::new(&config, &Device::Cpu).unwrap();
    let z = (Tensor::randn(0f32, 1.0, (8, config.latent_dim), &Device::Cpu).unwrap() * 50.0).unwrap();
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
fn lean_default_costs_at_most_one_gflop_and_author32_about_27_per_image_step() {
    let lean = AeganTrainer::new(AeganConfig::default(), &Device::Cpu).unwrap();
    let author = AeganTrainer::new(AeganConfig::author32(), &Device::Cpu).unwrap();
    let lean_gflop = lean.flops_per_image() as f64 / 1e9;
    let author_gflop = author.flops_per_image() as f64 / 1e9;
    assert!(
        lean_gflop <= 1.0,
        "lean default costs {lean_gflop} GFLOP per image step"
    );
    assert!(
        (25.0..29.0).contains(&author_gflop),
        "author32 costs {author_gflop} GFLOP"
    );
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
    let errors = [
        aegan::Generator::new(&config, vb()).err(),
        aegan::Encoder::new(&config, vb()).err(),
        aegan::ImageDiscriminator::new(&config, vb()).err(),
        aegan::LatentDiscriminator::new(&config, vb()).err(),
    ];
    for err in errors {
        let message = err.expect("an image size of 24 was accepted").to_string();
        assert!(
            message.contains("image_size") && message.contains("24"),
            "{message}"
        );
    }
}
