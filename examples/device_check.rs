//! Trains a few steps from a fixed seed on built-in synthetic lesions and writes every step's
//! losses as JSON, so that two devices can be compared: the same run on the CPU and on a GPU
//! must give the same losses up to floating-point differences (`bench/gpu.sh` checks 1e-3).
//!
//! ```sh
//! cargo run --release --example device_check -- --device cpu --steps 20 --json cpu.json
//! cargo run --release --features cuda --example device_check -- --device cuda --steps 20 --json cuda.json
//! ```

use std::path::PathBuf;

use aegan::data::{synthetic, BatchSampler};
use aegan::{AeganConfig, AeganError, AeganTrainer, DeviceChoice};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Train a few steps from a fixed seed and write the losses, to compare devices")]
struct Args {
    /// Compute device: cpu, cuda[:N] or metal[:N].
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Model preset (lean, sprites or author).
    #[arg(long, default_value = "lean")]
    preset: String,
    /// Image side in pixels.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Images per step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Training steps.
    #[arg(long, default_value_t = 20)]
    steps: u64,
    /// Where to write the losses (a JSON array, one object per step).
    #[arg(long)]
    json: PathBuf,
    /// Keep the preset's per-pixel noise in G (off by default). A training step draws the
    /// noise's seeds from the trainer's stream, so both devices add the same noise.
    #[arg(long)]
    pixel_noise: bool,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> aegan::Result<()> {
    if args.steps == 0 || args.batch < 2 {
        return Err(AeganError::option(
            "--steps/--batch",
            format!("{}/{}", args.steps, args.batch),
            "need at least 1 step and 2 images per batch",
        ));
    }
    let device = aegan::select_device(args.device.parse::<DeviceChoice>()?)?;
    let mut config = AeganConfig::preset(&args.preset, args.size)?;
    config.batch_size = args.batch;
    config.generator.noise &= args.pixel_noise;
    let data = synthetic::lesions(4 * args.batch, args.size, 0);
    let sampler = BatchSampler::new(data.len(), config.batch_size, config.seed)?;
    let mut trainer = AeganTrainer::new(config, &device)?;
    let started = std::time::Instant::now();
    let mut steps = Vec::new();
    for step in 0..args.steps {
        steps.push(trainer.step(&data.batch(&sampler.batch(step), &device)?)?);
    }
    let text = serde_json::to_string_pretty(&steps).map_err(|source| AeganError::Json {
        path: args.json.clone(),
        source,
    })?;
    std::fs::write(&args.json, text).map_err(|e| AeganError::io(&args.json, e))?;
    println!(
        "{} steps of {}{} at batch {} on {:?} in {:.1} s; losses in {}",
        args.steps,
        args.preset,
        args.size,
        args.batch,
        device,
        started.elapsed().as_secs_f64(),
        args.json.display()
    );
    Ok(())
}
