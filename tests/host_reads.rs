//! A training step reads back from the device once: all its losses in one copy (on a GPU each
//! read waits for the queued work). Its own test binary, since the count is process-wide.

mod common;

use aegan::candle_core::Device;
use aegan::data::synthetic;
use aegan::{host_reads, AeganTrainer};

#[test]
fn a_training_step_reads_from_the_device_once_and_each_adaptive_option_once_more() {
    let data = synthetic::lesions(8, 16, 0).to_tensor(&Device::Cpu).unwrap();
    let batch = data.narrow(0, 0, 4).unwrap();
    let reads_per_step = |config: aegan::AeganConfig| {
        let mut trainer = AeganTrainer::new(config, &Device::Cpu).unwrap();
        trainer.step(&batch).unwrap();
        let before = host_reads();
        trainer.step(&batch).unwrap();
        trainer.step(&batch).unwrap();
        (host_reads() - before) as f64 / 2.0
    };
    let mut config = common::tiny(16);
    config.generator_average = None;
    config.generator.noise = false;
    assert_eq!(reads_per_step(config.clone()), 1.0, "the default objective");
    // The per-pixel noise is seeded by a hash of each latent's bits, which G reads from the
    // device at each forward pass: G(z) and G(E(x)) in each of the two phases.
    let mut noisy = config.clone();
    noisy.generator.noise = true;
    assert_eq!(
        reads_per_step(noisy),
        5.0,
        "per-pixel noise reads each pass's latents"
    );
    let mut averaged = config.clone();
    averaged.generator_average = Some(aegan::config::GeneratorAverage::new());
    assert_eq!(reads_per_step(averaged), 1.0, "with the moving average of G");
    let mut lecam = config.clone();
    lecam.lecam = Some(aegan::config::LeCamConfig::default());
    assert_eq!(
        reads_per_step(lecam),
        2.0,
        "LeCam reads its three means in one copy"
    );
    let mut ada = config;
    let mut augment = aegan::config::DiffAugmentConfig::all();
    augment.adaptive = Some(aegan::config::AdaptiveAugment::default());
    ada.diff_augment = Some(augment);
    assert_eq!(reads_per_step(ada), 2.0, "ADA reads Dx's sign on real images");
}
