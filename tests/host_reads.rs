//! A training step reads back from the device once: all its losses in one copy (on a GPU each
//! read waits for the queued work). Its own test binary, since the count is process-wide.

mod common;

use aegan::candle_core::Device;
use aegan::data::synthetic;
use aegan::{host_reads, AeganTrainer};

#[test]
fn a_training_step_reads_from_the_device_once_whatever_the_options() {
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
    // The default preset (lean below 64×64): per-pixel noise in G and G's moving average on.
    let config = common::tiny(16);
    assert!(config.generator.noise && config.generator_average.is_some());
    assert_eq!(reads_per_step(config.clone()), 1.0, "the default preset");
    let mut quiet = config.clone();
    quiet.generator.noise = false;
    assert_eq!(reads_per_step(quiet), 1.0, "without per-pixel noise");
    let mut unaveraged = config.clone();
    unaveraged.generator_average = None;
    assert_eq!(reads_per_step(unaveraged), 1.0, "without the moving average of G");
    // The controllers' statistics ride in the same read as the losses.
    let mut lecam = config.clone();
    lecam.lecam = Some(aegan::config::LeCamConfig::default());
    assert_eq!(reads_per_step(lecam), 1.0, "with LeCam");
    let mut ada = config;
    let mut augment = aegan::config::DiffAugmentConfig::all();
    augment.adaptive = Some(aegan::config::AdaptiveAugment::default());
    ada.diff_augment = Some(augment);
    assert_eq!(reads_per_step(ada), 1.0, "with ADA");
}
