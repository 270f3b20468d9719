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

#[test]
fn a_run_bounded_only_by_time_trains_past_any_epoch_count_until_the_clock_stops_it() {
    let data = synthetic::lesions(16, 16, 0); // 4 steps per epoch at batch 4
    let run_for = |limit: std::time::Duration| {
        let dir = tempfile::tempdir().unwrap();
        let mut trainer = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
        let mut options = LoopOptions::until_time_limit(dir.path(), limit);
        options.progress = false;
        options.log_every = 1;
        options.save_every = 1_000_000;
        TrainingLoop::new(options, Arc::new(AtomicBool::new(false)))
            .run(&mut trainer, &data)
            .unwrap()
    };
    let mut limit = std::time::Duration::from_millis(1500);
    let mut summary = run_for(limit);
    if summary.steps_run <= 4 {
        // A machine busy with other work fits fewer steps in the time: give the clock room
        // for a dozen of this machine's steps, so that several epochs can pass before it.
        let step = summary.seconds / summary.steps_run.max(1) as f64;
        limit = std::time::Duration::from_secs_f64((12.0 * step).min(120.0));
        summary = run_for(limit);
    }
    assert!(summary.stopped_early);
    assert!(summary.seconds >= limit.as_secs_f64(), "{}", summary.seconds);
    assert!(summary.steps_run > 4, "several epochs: {}", summary.steps_run);
    assert!(summary.checkpoint.is_some(), "saved at the stop");
}

#[test]
fn a_new_trainer_is_refused_a_folder_that_holds_another_run_unless_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic::sprites(16, 16, 0);
    let options = |overwrite: bool| {
        let mut o = LoopOptions::new(dir.path(), 2);
        o.progress = false;
        o.overwrite = overwrite;
        o
    };
    let stop = || Arc::new(AtomicBool::new(false));
    let mut first = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    TrainingLoop::new(options(false), stop())
        .run(&mut first, &data)
        .unwrap();
    let log = std::fs::read_to_string(dir.path().join("losses.jsonl")).unwrap();

    let mut second = AeganTrainer::new(common::tiny(16), &Device::Cpu).unwrap();
    let err = TrainingLoop::new(options(false), stop())
        .run(&mut second, &data)
        .unwrap_err();
    assert!(matches!(err, AeganError::RunExists { .. }), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("losses.jsonl")).unwrap(),
        log
    );
    assert_eq!(second.step_count(), 0);

    // The same run may continue in its folder.
    let mut options_more = options(false);
    options_more.total_steps = 3;
    TrainingLoop::new(options_more, stop())
        .run(&mut first, &data)
        .unwrap();

    let summary = TrainingLoop::new(options(true), stop())
        .run(&mut second, &data)
        .unwrap();
    assert_eq!(summary.final_step, 2);
    let snapshots: Vec<String> = std::fs::read_dir(dir.path().join("checkpoint"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step-"))
        .collect();
    assert_eq!(snapshots, ["step-00000002"], "overwrite deleted the first run");
}
