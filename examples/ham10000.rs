//! Trains an AEGAN on skin-lesion images.
//!
//! This first version trains on aegan's built-in **synthetic** lesions (procedurally drawn, not
//! real dermoscopy), so it runs anywhere with no download:
//!
//! ```sh
//! cargo run --release --example ham10000
//! cargo run --release --example ham10000 -- --steps 2000 --out runs/lesions
//! cargo run --release --example ham10000 -- --resume --steps 4000 --out runs/lesions
//! ```
//!
//! It prints progress, and writes under `--out`: `samples.png` (G(z) for fixed z),
//! `reconstructions.png` (pairs x | G(E(x))), `losses.jsonl`, and `checkpoint/`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use aegan::candle_core::Tensor;
use aegan::data::{synthetic, BatchSampler};
use aegan::{viz, AeganConfig, AeganTrainer, DeviceChoice};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Train an AEGAN on lesion images (built-in synthetic lesions in this version)")]
struct Args {
    /// Model preset: `lean` (CPU-friendly default) or `author` (the AEGAN author's layout; GPU work).
    #[arg(long, default_value = "lean")]
    preset: String,
    /// Image side in pixels (a power of two from 16 to 256).
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Training steps to reach (counting steps of a resumed run).
    #[arg(long, default_value_t = 100)]
    steps: u64,
    /// Images per step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Number of synthetic lesion images to train on.
    #[arg(long, default_value_t = 2048)]
    images: usize,
    /// Seed of the model, the trainer and the synthetic data.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Compute device: auto, cpu, cuda[:N] or metal[:N].
    #[arg(long, default_value = "auto")]
    device: String,
    /// Output directory for pictures, logs and checkpoints.
    #[arg(long, default_value = "runs/ham10000")]
    out: PathBuf,
    /// Print progress every this many steps.
    #[arg(long, default_value_t = 10)]
    log_every: u64,
    /// Write pictures and a checkpoint every this many steps (and at the end).
    #[arg(long, default_value_t = 100)]
    save_every: u64,
    /// A JSON config file (as written in each checkpoint) to use instead of --preset/--size.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue from `<out>/checkpoint` (its config wins over --preset/--size/--batch/--seed).
    #[arg(long)]
    resume: bool,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> aegan::Result<()> {
    let device = aegan::select_device(args.device.parse::<DeviceChoice>()?)?;
    let checkpoint_dir = args.out.join("checkpoint");
    let mut trainer = if args.resume {
        let t = AeganTrainer::resume(&checkpoint_dir, &device)?;
        println!(
            "resumed from {} at step {}",
            checkpoint_dir.display(),
            t.step_count()
        );
        t
    } else {
        let mut config = match &args.config {
            Some(path) => AeganConfig::from_json_file(path)?,
            None => AeganConfig::preset(&args.preset, args.size)?,
        };
        config.batch_size = args.batch;
        config.seed = args.seed;
        AeganTrainer::new(config, &device)?
    };
    let config = trainer.config().clone();
    std::fs::create_dir_all(&args.out).map_err(|e| aegan::AeganError::Io {
        path: args.out.clone(),
        source: e,
    })?;

    let data = synthetic::lesions(args.images, config.image_size, config.seed);
    println!(
        "data: {} images of {}×{}: {}",
        data.len(),
        data.image_size(),
        data.image_size(),
        data.description()
    );
    println!(
        "model: preset {}, {:.2} GFLOP per image per step, device {:?}",
        args.preset,
        trainer.flops_per_image() as f64 / 1e9,
        device
    );
    println!("note: real HAM10000 loading arrives in the next version; these are synthetic images.");

    let sampler = BatchSampler::new(data.len(), config.batch_size, config.seed)?;
    // Fixed latents and real images, so that successive pictures are comparable.
    let fixed_z = trainer.sample_latents(32, config.seed ^ 0x5eed)?;
    let fixed_real = data.batch(&(0..8).collect::<Vec<_>>(), &device)?;
    let log_path = args.out.join("losses.jsonl");
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| aegan::AeganError::Io {
            path: log_path.clone(),
            source: e,
        })?;

    let started = Instant::now();
    let first_step = trainer.step_count();
    let mut window = Instant::now();
    while trainer.step_count() < args.steps {
        let step = trainer.step_count();
        let batch = data.batch(&sampler.batch(step), &device)?;
        let losses = trainer.step(&batch)?;
        let line = serde_json::to_string(&losses).unwrap_or_default();
        writeln!(log, "{line}").map_err(|e| aegan::AeganError::Io {
            path: log_path.clone(),
            source: e,
        })?;

        let done = trainer.step_count();
        if done % args.log_every == 0 || done == args.steps {
            let elapsed = window.elapsed().as_secs_f64();
            let steps_in_window = (done - first_step).min(args.log_every).max(1);
            let images_per_s = (steps_in_window as usize * config.batch_size) as f64 / elapsed;
            let epoch = done as f64 / sampler.batches_per_epoch() as f64;
            println!(
                "step {done:>6}/{} epoch {epoch:5.2} | D_x {:.3} D_z {:.3} | G_adv_x {:.3} G_adv_z {:.3} rec_x {:.3} rec_z {:.3} | {images_per_s:6.1} img/s {:6.0} ms/step",
                args.steps,
                losses.discriminator.image,
                losses.discriminator.latent,
                losses.generator.image_adversarial,
                losses.generator.latent_adversarial,
                losses.generator.image_reconstruction,
                losses.generator.latent_reconstruction,
                1e3 * elapsed / steps_in_window as f64,
            );
            window = Instant::now();
        }
        if done % args.save_every == 0 || done == args.steps {
            save_pictures(&trainer, &fixed_z, &fixed_real, &args.out)?;
            let snapshot = trainer.save_checkpoint(&checkpoint_dir)?;
            println!(
                "wrote samples.png, reconstructions.png and {}",
                snapshot.display()
            );
        }
    }
    println!(
        "trained {} steps in {:.1} s",
        trainer.step_count() - first_step,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn save_pictures(
    trainer: &AeganTrainer,
    fixed_z: &Tensor,
    fixed_real: &Tensor,
    out: &std::path::Path,
) -> aegan::Result<()> {
    let samples = trainer.generate(fixed_z)?;
    viz::save_grid(&samples, 8, 2, out.join("samples.png"))?;
    // Interleave each real image with its reconstruction: x, G(E(x)), x, G(E(x)), ...
    let recon = trainer.reconstruct(fixed_real)?;
    let pairs = Tensor::stack(&[fixed_real, &recon], 1)?.flatten_to(1)?;
    viz::save_grid(&pairs, 8, 2, out.join("reconstructions.png"))?;
    Ok(())
}
