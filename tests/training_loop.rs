//! The training loop keeps the last good checkpoint when training diverges.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use aegan::candle_core::Device;
use aegan::data::synthetic;
use aegan::{AeganError, AeganTrainer, LoopOptions, TrainingLoop};

#[test]
fn divergence_stops_with_an_error_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::tiny(16);
    config.norm = aegan::config::Norm::None;
    config.learning_rates.generator = 1e30;
    config.learning_rates.encoder = 1e30;
    let mut trainer = AeganTrainer::new(config, &Device::Cpu).unwrap();
    let data = synthetic::lesions(16, 16, 0);
    let mut options = LoopOptions::new(dir.path(), 50);
    options.save_every = 1;
    options.progress = false;
    let err = TrainingLoop::new(options, Arc::new(AtomicBool::new(false)))
        .run(&mut trainer, &data)
        .unwrap_err();
    let AeganError::NonFiniteLoss { step, .. } = err else {
        panic!("expected NonFiniteLoss, got {err}")
    };
    let resumed = AeganTrainer::resume(TrainingLoop::checkpoint_dir(dir.path()), &Device::Cpu).unwrap();
    assert_eq!(
        resumed.step_count(),
        step - 1,
        "the checkpoint is the one before the bad step"
    );
}

#[test]
fn a_stop_request_saves_and_returns_early() {
    let dir = tempfile::tempdir().unwrap();
    let mut trainer = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    let data = synthetic::sprites(16, 16, 0);
    let mut options = LoopOptions::new(dir.path(), 1000);
    options.progress = false;
    trainer
        .step(&data.batch(&[0, 1, 2, 3], &Device::Cpu).unwrap())
        .unwrap();
    let summary = TrainingLoop::new(options, Arc::new(AtomicBool::new(true)))
        .run(&mut trainer, &data)
        .unwrap();
    assert!(summary.stopped_early);
    assert_eq!(summary.steps_run, 0);
}

#[test]
fn a_time_limit_ends_the_run_early_and_saves() {
    let data = synthetic::lesions(16, 16, 0);
    // A limit already spent: nothing runs, nothing is written.
    let dir = tempfile::tempdir().unwrap();
    let mut trainer = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    let mut options = LoopOptions::new(dir.path(), 1_000);
    options.progress = false;
    options.time_limit = Some(std::time::Duration::ZERO);
    let summary = TrainingLoop::new(options, Arc::new(AtomicBool::new(false)))
        .run(&mut trainer, &data)
        .unwrap();
    assert!(summary.stopped_early);
    assert_eq!(summary.steps_run, 0);
    assert!(summary.checkpoint.is_none());

    // A limit that allows a few steps of 1,000: the run stops long before the end and saves.
    let mut options = LoopOptions::new(dir.path(), 1_000);
    options.progress = false;
    options.save_every = 1_000;
    options.time_limit = Some(std::time::Duration::from_millis(300));
    let summary = TrainingLoop::new(options, Arc::new(AtomicBool::new(false)))
        .run(&mut trainer, &data)
        .unwrap();
    assert!(summary.stopped_early);
    assert!(
        summary.steps_run >= 1 && summary.steps_run < 1_000,
        "{}",
        summary.steps_run
    );
    let saved = summary.checkpoint.expect("a checkpoint at the stop");
    assert!(saved.ends_with(format!("step-{:08}", summary.final_step)));
}
