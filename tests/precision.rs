//! Mixed precision (bf16 activations, f32 weights): trains on the CPU to the extent candle's
//! CPU bf16 allows, keeps every saved and optimised tensor in f32, and stays close to f32.

mod common;

use aegan::candle_core::{DType, Device};
use aegan::config::Precision;
use aegan::data::synthetic;
use aegan::{AeganConfig, AeganTrainer};

fn config(precision: Precision) -> AeganConfig {
    let mut c = common::tiny(16);
    c.precision = precision;
    c
}

#[test]
fn a_bf16_model_computes_close_to_f32_and_keeps_f32_weights_outputs_and_checkpoints() {
    let x = synthetic::lesions(4, 16, 0).to_tensor(&Device::Cpu).unwrap();
    let mut full = AeganTrainer::new(config(Precision::F32), &Device::Cpu).unwrap();
    let mut mixed = AeganTrainer::new(config(Precision::Bf16), &Device::Cpu).unwrap();
    // Same seed, same initial weights: the forward passes differ only by rounding.
    let z = full.model().sample_latents(4, 1).unwrap();
    let (a, b) = (
        full.model().generate(&z).unwrap(),
        mixed.model().generate(&z).unwrap(),
    );
    assert_eq!(b.dtype(), DType::F32, "images come out in f32");
    let diff = common::max_abs_diff(&a, &b);
    assert!(diff > 0.0 && diff < 0.05, "bf16 G differs from f32 G by {diff}");
    let ze = mixed.model().encode(&x).unwrap();
    assert_eq!(ze.dtype(), DType::F32);
    assert!(common::max_abs_diff(&full.model().encode(&x).unwrap(), &ze) < 0.05);

    let (lf, lm) = (full.step(&x).unwrap(), mixed.step(&x).unwrap());
    for ((name, f), (_, m)) in lf.named().into_iter().zip(lm.named()) {
        let relative = (f - m).abs() / f.abs().max(1e-3);
        assert!(relative < 0.05, "{name}: f32 {f}, bf16 {m}");
    }
    for _ in 0..3 {
        let losses = mixed.step(&x).unwrap();
        assert!(losses.named().iter().all(|(_, v)| v.is_finite()));
    }
    for (stem, store) in mixed.networks().saved_stores() {
        for (name, var) in store.all() {
            assert_eq!(var.dtype(), DType::F32, "{stem}.{name} is kept in f32");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let snapshot = mixed.save_checkpoint(dir.path()).unwrap();
    for entry in std::fs::read_dir(&snapshot).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            for (name, t) in aegan::checkpoint::read_tensors(&path, &Device::Cpu).unwrap() {
                assert_eq!(t.dtype(), DType::F32, "{} {name}", path.display());
            }
        }
    }
    let resumed = AeganTrainer::resume(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(resumed.config().precision, Precision::Bf16);
}

#[test]
fn precision_is_left_out_of_the_json_when_f32_and_read_as_bf16() {
    let json = serde_json::to_string(&config(Precision::F32)).unwrap();
    assert!(!json.contains("precision"), "{json}");
    let json = serde_json::to_string(&config(Precision::Bf16)).unwrap();
    assert!(json.contains(r#""precision":"bf16""#), "{json}");
    let back: AeganConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back.precision, Precision::Bf16);
}
