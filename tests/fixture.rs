//! Checkpoints written by aegan 0.1 keep loading: a small checkpoint committed in
//! `tests/fixtures/checkpoint-0.1` (tiny networks, two training steps) must load, sample the
//! images recorded beside it, and resume training.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use aegan::candle_core::{Device, Tensor};
use aegan::data::synthetic;
use aegan::{AeganTrainer, Model};

const SAMPLE_SEED: u64 = 7;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoint-0.1")
}

fn expected_file() -> PathBuf {
    fixture().join("expected_samples.safetensors")
}

#[test]
#[ignore = "rewrites the fixture: run only when the checkpoint format changes on purpose"]
fn write_the_fixture() {
    let dir = fixture();
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = common::tiny_full(16);
    config.image_discriminator.spectral_norm = true;
    let data = synthetic::lesions(8, 16, 3).to_tensor(&Device::Cpu).unwrap();
    let mut trainer = AeganTrainer::new(config, &Device::Cpu).unwrap();
    for step in 0..2 {
        trainer.step(&data.narrow(0, step * 4, 4).unwrap()).unwrap();
    }
    trainer.save_checkpoint(&dir).unwrap();
    let samples = trainer.model().sample(4, SAMPLE_SEED).unwrap();
    let tensors = HashMap::from([("samples".to_string(), samples)]);
    aegan::candle_core::safetensors::save(&tensors, expected_file()).unwrap();
}

#[test]
fn a_checkpoint_written_by_version_0_1_loads_samples_the_same_images_and_resumes() {
    let model = Model::load(fixture(), &Device::Cpu).unwrap();
    let expected = aegan::candle_core::safetensors::load(expected_file(), &Device::Cpu).unwrap();
    let expected: &Tensor = &expected["samples"];
    let samples = model.sample(4, SAMPLE_SEED).unwrap();
    let diff = common::max_abs_diff(&samples, expected);
    assert!(diff < 1e-4, "samples differ from those recorded by {diff}");

    // Training continues from it (into a copy: the fixture itself is never written).
    let copy = tempfile::tempdir().unwrap();
    for entry in walk(&fixture()) {
        let to = copy.path().join(entry.strip_prefix(fixture()).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &to).unwrap();
    }
    std::fs::remove_file(copy.path().join("expected_samples.safetensors")).unwrap();
    let mut trainer = AeganTrainer::resume(copy.path(), &Device::Cpu).unwrap();
    assert_eq!(trainer.step_count(), 2);
    let data = synthetic::lesions(4, 16, 4).to_tensor(&Device::Cpu).unwrap();
    trainer.step(&data).unwrap();
    assert_eq!(trainer.step_count(), 3);
}

/// Every file under `dir`, recursively (symbolic links followed as files).
fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
