//! What the training examples share: command-line options and the run itself.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aegan::config::ProgressiveConfig;
use aegan::data::{Augment, ImageSet};
use aegan::metrics::{self, Evaluator, FidInception};
use aegan::{AeganConfig, AeganTrainer, DeviceChoice, LoopOptions, TrainingLoop};

/// Options common to the training examples.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Model preset: `lean` (CPU-friendly default) or `author` (the AEGAN author's layout; GPU work).
    #[arg(long, default_value = "lean")]
    pub preset: String,
    /// A JSON config (as written in every checkpoint) to use instead of --preset/--size.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Image side in pixels (a power of two from 16 to 256).
    #[arg(long, default_value_t = 32)]
    pub size: usize,
    /// Train until this many steps in total (counting those of a resumed run).
    #[arg(long, conflicts_with = "epochs")]
    pub steps: Option<u64>,
    /// Train for this many passes over the data (instead of --steps).
    #[arg(long)]
    pub epochs: Option<f64>,
    /// Stop (saving a checkpoint) after this many minutes of training, whatever --steps says.
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Grow progressively from 4×4 to --size, fading each new resolution in (ProGAN).
    #[arg(long)]
    pub progressive: bool,
    /// With --progressive: real images shown per stable phase and per fade (default: the
    /// number of training images, one epoch each).
    #[arg(long, requires = "progressive")]
    pub phase_images: Option<u64>,
    /// With --progressive: start at 2×2 instead of 4×4.
    #[arg(long, requires = "progressive")]
    pub start_at_2: bool,
    /// Images per step (default: the preset's, 32 for lean, 64 for author).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Seed of the model, the trainer, the batches and the synthetic data.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Compute device: auto, cpu, cuda[:N] or metal[:N].
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Output folder for pictures, the loss log and checkpoints.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from <out>/checkpoint with its config and schedule.
    #[arg(long)]
    pub resume: bool,
    /// Write pictures and a checkpoint every this many steps (default: once per epoch).
    #[arg(long)]
    pub save_every: Option<u64>,
    /// Turn off the flips/rotations applied to training images.
    #[arg(long)]
    pub no_augment: bool,
    /// Measure image quality (SWD, checkerboard, duplicates, reconstruction) every this many
    /// steps (default: at every save).
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Generated (and real) images per quality measurement.
    #[arg(long, default_value_t = 500)]
    pub eval_images: usize,
    /// FID Inception-v3 weights (`inception-2015-12-05-fid.safetensors`): adds FID and KID to
    /// the measurements (slow on a CPU: about half a second per image).
    #[arg(long)]
    pub inception: Option<PathBuf>,
    /// No quality measurements during training.
    #[arg(long, conflicts_with_all = ["eval_every", "inception"])]
    pub no_eval: bool,
    /// No progress bar; print a line every 50 steps instead.
    #[arg(long)]
    pub no_progress: bool,
}

/// The image size the run will use: from --config, from the checkpoint when resuming, else
/// --size. Data must be loaded at this size before training.
pub fn model_size(args: &TrainArgs, default_out: &str) -> aegan::Result<usize> {
    Ok(match &args.config {
        Some(path) => AeganConfig::from_json_file(path)?.image_size,
        None if args.resume => {
            let out = args.out.clone().unwrap_or_else(|| PathBuf::from(default_out));
            aegan::checkpoint::read_config(&TrainingLoop::checkpoint_dir(&out))?.image_size
        }
        None => args.size,
    })
}

/// Steps to train when neither --steps nor --epochs is given.
pub enum DefaultLength {
    Steps(u64),
    Epochs(f64),
}

/// Builds or resumes the trainer, then trains on `data` with pictures, logs, checkpoints and a
/// progress bar; Ctrl-C saves a checkpoint and exits cleanly.
pub fn train(
    args: &TrainArgs,
    data: &ImageSet,
    held_out: Option<&ImageSet>,
    augment: Augment,
    default_out: &str,
    default_length: DefaultLength,
) -> aegan::Result<()> {
    aegan::keep_freed_memory();
    let device = aegan::select_device(args.device.parse::<DeviceChoice>()?)?;
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from(default_out));
    let checkpoint_dir = TrainingLoop::checkpoint_dir(&out);
    let mut trainer = if args.resume {
        let t = AeganTrainer::resume(&checkpoint_dir, &device)?;
        println!(
            "resumed from {} at step {}",
            checkpoint_dir.display(),
            t.step_count()
        );
        t
    } else {
        let config = match &args.config {
            Some(path) => AeganConfig::from_json_file(path)?,
            None => {
                let mut c = AeganConfig::preset(&args.preset, args.size)?;
                if let Some(batch) = args.batch {
                    c.batch_size = batch;
                }
                if args.progressive {
                    let mut schedule =
                        ProgressiveConfig::new(args.phase_images.unwrap_or(data.len() as u64).max(1));
                    if args.start_at_2 {
                        schedule.start_size = 2;
                    }
                    c.progressive = Some(schedule);
                }
                c.seed = args.seed;
                c
            }
        };
        AeganTrainer::new(config, &device)?
    };
    let config = trainer.config().clone();
    if data.image_size() != config.image_size {
        return Err(aegan::AeganError::BadInput {
            what: "data image size",
            expected: format!("{0}×{0} as the model's config says", config.image_size),
            found: vec![data.image_size(), data.image_size()],
        });
    }
    let per_epoch = (data.len() / config.batch_size).max(1) as u64;
    let total_steps = match (args.steps, args.epochs, default_length) {
        (Some(s), _, _) => s,
        (None, Some(e), _) | (None, None, DefaultLength::Epochs(e)) => (e * per_epoch as f64).round() as u64,
        (None, None, DefaultLength::Steps(s)) => s,
    };
    println!(
        "data: {} images of {}×{}: {}",
        data.len(),
        data.image_size(),
        data.image_size(),
        data.description()
    );
    println!(
        "model: {} GFLOP per image per step, batch {}, {} steps ({:.2} epochs), device {:?}, output {}",
        format_args!("{:.2}", trainer.flops_per_image() as f64 / 1e9),
        config.batch_size,
        total_steps,
        total_steps as f64 / per_epoch as f64,
        device,
        out.display()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    if let Err(e) = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping: saving a checkpoint (Ctrl-C again to quit at once)");
    }) {
        eprintln!(
            "warning: no Ctrl-C handler ({e}); an interrupt will lose the steps since the last checkpoint"
        );
    }
    let mut options = LoopOptions::new(&out, total_steps);
    options.save_every = args.save_every.unwrap_or(per_epoch).max(1);
    options.augment = if args.no_augment { Augment::None } else { augment };
    options.progress = !args.no_progress;
    options.time_limit = args
        .minutes
        .map(|m| std::time::Duration::from_secs_f64((m * 60.0).max(0.0)));
    if let Some(p) = &config.progressive {
        println!(
            "progressive: {0}×{0} first, {1} images per phase and {2} per fade; full size {3}×{3} after {4} images (step {5})",
            p.start_size,
            p.images_per_phase,
            p.images_per_fade,
            config.image_size,
            p.images_until_full_size(config.image_size),
            p.images_until_full_size(config.image_size).div_ceil(config.batch_size as u64)
        );
    }
    let eval_every = args.eval_every.unwrap_or(options.save_every);
    let mut training = TrainingLoop::new(options, stop);
    if !args.no_eval {
        let mut evaluator = Evaluator::new(data, args.eval_images, args.eval_images, config.seed)?;
        if let Some(held) = held_out.filter(|h| !h.is_empty()) {
            evaluator = evaluator.with_held_out(metrics::evenly_spaced(held, args.eval_images)?);
        }
        if let Some(path) = &args.inception {
            println!(
                "computing (or reading cached) Inception features of {} real images...",
                args.eval_images.min(data.len())
            );
            let net = FidInception::load(path, &device)?;
            evaluator = evaluator.with_inception(net, aegan::data::folder::default_cache_dir().as_deref())?;
        }
        training = training.with_evaluator(evaluator, eval_every);
    }
    let summary = training.run(&mut trainer, data)?;
    println!(
        "{} {} steps in {:.1} s ({:.1} images/s); now at step {}{}",
        if summary.stopped_early {
            "stopped after"
        } else {
            "trained"
        },
        summary.steps_run,
        summary.seconds,
        summary.images_per_second,
        summary.final_step,
        summary
            .checkpoint
            .map(|c| format!("; checkpoint {}", c.display()))
            .unwrap_or_default()
    );
    println!(
        "pictures: {}/samples.png, reconstructions.png, loss_curve.png; logs: losses.jsonl, metrics.jsonl",
        out.display()
    );
    Ok(())
}
