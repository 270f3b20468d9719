//! Uses a trained checkpoint: writes N generated images, a grid, and, given real images, a
//! reconstruction grid (x beside G(E(x))) and an interpolation strip between two real images
//! through the encoder.
//!
//! ```sh
//! cargo run --release --example generate -- --checkpoint runs/ham10000/checkpoint --n 64 --out runs/generated
//! cargo run --release --example generate -- --checkpoint runs/ham10000/checkpoint --real ~/HAM10000/HAM10000_images_part_1
//! ```

use std::path::PathBuf;

use aegan::candle_core::Tensor;
use aegan::data::{load_folder, synthetic, LoadOptions};
use aegan::rng::TrainRng;
use aegan::{checkpoint, viz, AeganError, DeviceChoice};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser, Debug)]
#[command(about = "Generate, reconstruct and interpolate images with a trained AEGAN checkpoint")]
struct Args {
    /// Checkpoint folder (a training run's `checkpoint/`, or one `step-*` snapshot in it).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Number of images to generate.
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Output folder.
    #[arg(long, default_value = "runs/generated")]
    out: PathBuf,
    /// A folder of real images for reconstructions and interpolation (default: built-in
    /// synthetic lesions, labelled as such).
    #[arg(long)]
    real: Option<PathBuf>,
    /// Seed of the latents.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Steps of the interpolation strip between two real images.
    #[arg(long, default_value_t = 10)]
    interpolation_steps: usize,
    /// Compute device: auto, cpu, cuda[:N] or metal[:N].
    #[arg(long, default_value = "auto")]
    device: String,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Images generated and written per batch: memory stays bounded whatever --n is.
const CHUNK: usize = 64;

fn run(args: Args) -> aegan::Result<()> {
    if args.n == 0 {
        return Err(AeganError::option("--n", 0, "must be at least 1"));
    }
    if args.interpolation_steps < 2 {
        return Err(AeganError::option(
            "--interpolation-steps",
            args.interpolation_steps,
            "must be at least 2",
        ));
    }
    let device = aegan::select_device(args.device.parse::<DeviceChoice>()?)?;
    let loaded = checkpoint::load_networks_reporting(&args.checkpoint, &device)?;
    for (snapshot, error) in &loaded.skipped {
        eprintln!("warning: skipped snapshot {}: {error}", snapshot.display());
    }
    let (config, nets) = loaded.value;
    let images_dir = args.out.join("images");
    std::fs::create_dir_all(&images_dir).map_err(|e| AeganError::io(&images_dir, e))?;

    // Latents are drawn in order from one stream, so image i is the same whatever --n is.
    let mut latents = TrainRng::new(args.seed);
    let bar = ProgressBar::new(args.n as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {pos}/{len} images [{elapsed_precise}<{eta_precise}] {wide_bar}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let digits = args.n.saturating_sub(1).to_string().len().max(5);
    for first in (0..args.n).step_by(CHUNK) {
        let count = CHUNK.min(args.n - first);
        let z = latents.normal((count, config.latent_dim), &device)?;
        let generated = aegan::metrics::generate(&nets, &z)?;
        for (i, image) in viz::to_rgb_images(&generated)?.iter().enumerate() {
            let name = format!("{:0digits$}.png", first + i);
            viz::save_png(image, images_dir.join(name))?;
        }
        if first == 0 {
            viz::save_grid(&generated, 8, 2, args.out.join("grid.png"))?;
        }
        bar.inc(count as u64);
    }
    bar.finish_and_clear();
    println!(
        "wrote {} images to {} and grid.png (the first {})",
        args.n,
        images_dir.display(),
        args.n.min(CHUNK)
    );

    let real = match &args.real {
        Some(dir) => {
            let mut options = LoadOptions::new(config.image_size);
            options.cache_dir = None;
            let loaded = load_folder(dir, &options)?;
            let count = loaded.images.len().min(16);
            loaded
                .to_image_set(format!("images from {}", dir.display()))?
                .batch(&(0..count).collect::<Vec<_>>(), &device)?
        }
        None => {
            println!("no --real given: reconstructing built-in SYNTHETIC lesions (not real data)");
            synthetic::lesions(16, config.image_size, args.seed).to_tensor(&device)?
        }
    };
    // A progressive checkpoint taken before full size works at a lower resolution.
    let real = aegan::progressive::downsample_area(&real, config.image_size / nets.resolution())?;
    if nets.resolution() != config.image_size {
        println!(
            "the checkpoint is at {0}×{0} of a progressive run growing to {1}×{1}",
            nets.resolution(),
            config.image_size
        );
    }
    let recon = nets
        .generator
        .forward_t(&nets.encoder.forward_t(&real, false)?, false)?;
    let pairs = Tensor::stack(&[&real, &recon], 1)?.flatten_to(1)?;
    viz::save_grid(&pairs, 8, 2, args.out.join("reconstructions.png"))?;
    let l1 = (&recon - &real)?.abs()?.mean_all()?.to_scalar::<f32>()?;
    println!(
        "wrote reconstructions.png (pairs x | G(E(x)); mean |G(E(x)) - x| = {l1:.4} on the [-1, 1] scale)"
    );

    if real.dim(0)? >= 2 {
        let ends = nets.encoder.forward_t(&real.narrow(0, 0, 2)?, false)?;
        let (z0, z1) = (ends.get(0)?, ends.get(1)?);
        let steps = args.interpolation_steps;
        let path: Vec<Tensor> = (0..steps)
            .map(|i| {
                let t = i as f64 / (steps - 1) as f64;
                (&z0 * (1.0 - t))? + (&z1 * t)?
            })
            .collect::<Result<_, _>>()?;
        let between = nets.generator.forward_t(&Tensor::stack(&path, 0)?, false)?;
        let strip = Tensor::cat(&[&real.narrow(0, 0, 1)?, &between, &real.narrow(0, 1, 1)?], 0)?;
        viz::save_grid(&strip, steps + 2, 3, args.out.join("interpolation.png"))?;
        println!(
            "wrote interpolation.png (real x0 | G((1-t)E(x0) + tE(x1)) for {steps} values of t | real x1)"
        );
    }
    Ok(())
}
