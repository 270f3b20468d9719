//! What the training examples share: command-line options, their checks, and the run itself.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aegan::candle_core::Device;
use aegan::config::ProgressiveConfig;
use aegan::data::{Augment, ImageSet};
use aegan::metrics::{self, Evaluator, FidInception};
use aegan::run_folder::ExistingRun;
use aegan::{AeganConfig, AeganError, AeganTrainer, DeviceChoice, LoopOptions, TrainingLoop};

/// Options common to the training examples.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Model preset: `lean` (CPU-friendly; the default of the ham10000 example), `sprites`
    /// (lean with DiffAugment and the mode-seeking term; the default of the sprites example) or
    /// `author` (the AEGAN author's layout; GPU work).
    #[arg(long)]
    pub preset: Option<String>,
    /// A JSON config (as written in every checkpoint) to use instead of --preset/--size; --seed
    /// and --batch beside it replace the file's values.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Image side in pixels, a power of two from 16 to 256 (default 32).
    #[arg(long)]
    pub size: Option<usize>,
    /// Train until this many steps in total (counting those of a resumed run).
    #[arg(long, conflicts_with = "epochs")]
    pub steps: Option<u64>,
    /// Train for this many passes over the data (instead of --steps).
    #[arg(long)]
    pub epochs: Option<f64>,
    /// Stop (saving a checkpoint) after this many minutes of training, whatever --steps says;
    /// given alone (no --steps or --epochs), train for exactly this long.
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Grow progressively from 4×4 to --size, fading each new resolution in (ProGAN); the
    /// default for a preset at --size 64 and above.
    #[arg(long)]
    pub progressive: bool,
    /// At --size 64 and above, train at full size from the first step instead of growing
    /// progressively (which measured better there: `docs/quality.md`).
    #[arg(long, conflicts_with = "progressive")]
    pub direct: bool,
    /// When growing progressively: real images shown per stable phase and per fade (default:
    /// the number of training images, one epoch each).
    #[arg(long)]
    pub phase_images: Option<u64>,
    /// When growing progressively: start at 2×2 instead of 4×4.
    #[arg(long)]
    pub start_at_2: bool,
    /// Images per step (default: the preset's, 32 for lean, 64 for author).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Seed of the model, the trainer, the batches and the synthetic data (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Compute device: auto, cpu, cuda[:N] or metal[:N].
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Output folder for pictures, the loss log and checkpoints.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in --out from its checkpoint, with its config and schedule.
    #[arg(long)]
    pub resume: bool,
    /// Start a new run even though --out holds one, deleting its checkpoint, history and logs.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Write pictures and a checkpoint every this many steps (default: once per epoch, at
    /// most every 50 steps).
    #[arg(long)]
    pub save_every: Option<u64>,
    /// Turn off the flips/rotations applied to training images.
    #[arg(long)]
    pub no_augment: bool,
    /// Measure image quality (SWD, checkerboard, duplicates, reconstruction) every this many
    /// steps (default: at every save, and with the default saves at most every 200 steps;
    /// also at the last step).
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Generated (and real) images per quality measurement.
    #[arg(long, default_value_t = 500)]
    pub eval_images: usize,
    /// FID Inception-v3 weights (`inception-2015-12-05-fid.safetensors`): adds FID and KID to
    /// the measurements (about 16 images per second on 2 CPU cores).
    #[arg(long)]
    pub inception: Option<PathBuf>,
    /// No quality measurements during training.
    #[arg(long, conflicts_with_all = ["eval_every", "inception"])]
    pub no_eval: bool,
    /// No progress bar; print a line every 50 steps instead.
    #[arg(long)]
    pub no_progress: bool,
}

/// The smallest --size at which a new run from a preset grows progressively unless --direct:
/// at 64×64 and equal compute, direct training gave saturated red fields with a worse SWD and
/// held-out PSNR (`docs/quality.md`, "Progressive versus direct at 64×64").
pub const PROGRESSIVE_FROM_SIZE: usize = 64;

impl TrainArgs {
    /// Whether a new run grows progressively: --progressive, or a preset (no --config, whose
    /// own schedule rules) at --size [`PROGRESSIVE_FROM_SIZE`] and above without --direct.
    pub fn grows_progressively(&self) -> bool {
        self.progressive
            || (self.config.is_none()
                && !self.direct
                && self.size.is_some_and(|s| s >= PROGRESSIVE_FROM_SIZE))
    }

    /// The output folder: --out, else the example's default.
    pub fn out_dir(&self, default_out: &str) -> PathBuf {
        self.out.clone().unwrap_or_else(|| PathBuf::from(default_out))
    }

    /// Fails on the first option outside its range, naming it; run before any work.
    pub fn validate(&self) -> aegan::Result<()> {
        at_least_one("--steps", self.steps)?;
        at_least_one("--save-every", self.save_every)?;
        at_least_one("--eval-every", self.eval_every)?;
        at_least_one("--batch", self.batch.map(|b| b as u64))?;
        at_least_one("--phase-images", self.phase_images)?;
        positive("--epochs", self.epochs)?;
        positive("--minutes", self.minutes)?;
        if let Some(m) = self.minutes {
            if std::time::Duration::try_from_secs_f64(m * 60.0).is_err() {
                return Err(AeganError::option(
                    "--minutes",
                    m,
                    "is too long to be a time limit",
                ));
            }
        }
        if let Some(size) = self.size {
            if !size.is_power_of_two() || !(16..=256).contains(&size) {
                return Err(AeganError::option(
                    "--size",
                    size,
                    "must be a power of two from 16 to 256",
                ));
            }
        }
        let growing = self.grows_progressively() || (self.resume && !self.direct);
        for (option, given) in [
            ("--phase-images", self.phase_images.is_some()),
            ("--start-at-2", self.start_at_2),
        ] {
            if given && !growing {
                return Err(AeganError::option(
                    option,
                    "on",
                    format!(
                        "applies only when growing progressively: add --progressive (the default \
                         for a preset at --size {PROGRESSIVE_FROM_SIZE} and above)"
                    ),
                ));
            }
        }
        if self.direct && self.config.is_some() {
            return Err(AeganError::option(
                "--direct",
                "on",
                "a --config keeps its own progressive schedule: remove it from the file instead",
            ));
        }
        if !self.no_eval && self.eval_images < 2 {
            return Err(AeganError::option(
                "--eval-images",
                self.eval_images,
                "must be at least 2 (or --no-eval)",
            ));
        }
        Ok(())
    }
}

/// `Some(0)` is an error naming `option`.
pub fn at_least_one(option: &str, value: Option<u64>) -> aegan::Result<()> {
    match value {
        Some(0) => Err(AeganError::option(option, 0, "must be at least 1")),
        _ => Ok(()),
    }
}

/// A value that is NaN, infinite, zero or negative is an error naming `option`.
pub fn positive(option: &str, value: Option<f64>) -> aegan::Result<()> {
    match value {
        Some(v) if !(v.is_finite() && v > 0.0) => {
            Err(AeganError::option(option, v, "must be a number greater than 0"))
        }
        _ => Ok(()),
    }
}

/// How a run begins: the run in --out resumed, or the config of a new one.
pub enum Start {
    /// `--resume`: the trainer from the newest snapshot that loads.
    Resume(Box<AeganTrainer>),
    /// A new run; its progressive schedule, which may depend on the data, is added later.
    New(Box<AeganConfig>),
}

impl Start {
    /// Whether the run trains class-conditionally: `asked` (`--conditional`), or a resumed
    /// checkpoint or `--config` that is conditional. Asking a resumed unconditional run for it
    /// is an error: a resumed run keeps its config.
    pub fn is_conditional(&self, asked: bool) -> aegan::Result<bool> {
        let (config, resumed) = match self {
            Start::Resume(t) => (t.config(), true),
            Start::New(c) => (&**c, false),
        };
        let has = config.conditioning.is_some();
        if asked && resumed && !has {
            return Err(AeganError::option(
                "--conditional",
                "on",
                "the checkpoint is unconditional and a resumed run keeps its config; start a new run with another --out",
            ));
        }
        Ok(asked || has)
    }

    /// The image side the data must be loaded at.
    pub fn image_size(&self) -> usize {
        match self {
            Start::Resume(t) => t.config().image_size,
            Start::New(c) => c.image_size,
        }
    }
}

/// Checks the options, then resumes the run in --out or builds a new run's config: every
/// option that can fail fails here, before any data is loaded. Whether --out may take a new
/// run is decided later, in [`train`], once the data has loaded: a user whose data cannot be
/// read hears about the data first, whatever the output folder holds.
pub fn start(args: &TrainArgs, default_out: &str, default_preset: &str) -> aegan::Result<(Start, Device)> {
    args.validate()?;
    // Before the first candle operation: candle sizes its elementwise pool once.
    aegan::serial_candle_elementwise();
    let device = aegan::select_device(args.device.parse::<DeviceChoice>()?)?;
    let out = args.out_dir(default_out);
    if args.resume {
        let checkpoint_dir = TrainingLoop::checkpoint_dir(&out);
        let resumed = AeganTrainer::resume_reporting(&checkpoint_dir, &device)?;
        for (snapshot, error) in &resumed.skipped {
            eprintln!("warning: skipped snapshot {}: {error}", snapshot.display());
        }
        println!(
            "resumed from {} at step {}",
            resumed.snapshot.display(),
            resumed.value.step_count()
        );
        check_resume_options(args, resumed.value.config())?;
        return Ok((Start::Resume(Box::new(resumed.value)), device));
    }
    // A --config keeps its progressive schedule (--progressive replaces it); a preset's
    // schedule is added in `run`, where the data's size is known.
    let config = match &args.config {
        Some(path) => config_file_with_options(path, args)?,
        None => {
            let preset = args.preset.as_deref().unwrap_or(default_preset);
            let mut c = AeganConfig::preset(preset, args.size.unwrap_or(32))?;
            if let Some(batch) = args.batch {
                c.batch_size = batch;
            }
            c.seed = args.seed.unwrap_or(0);
            c.progressive = None;
            c
        }
    };
    config.validate()?;
    Ok((Start::New(Box::new(config)), device))
}

/// The config of `--config path`, with the --seed and --batch given beside it; --preset, or a
/// --size other than the file's, is an error naming the option (the file decides both).
fn config_file_with_options(path: &Path, args: &TrainArgs) -> aegan::Result<AeganConfig> {
    let mut config = AeganConfig::from_json_file(path)?;
    let file = path.display();
    if let Some(preset) = &args.preset {
        return Err(AeganError::option(
            "--preset",
            preset,
            format!("--config {file} gives the whole config: drop one of the two"),
        ));
    }
    if let Some(size) = args.size.filter(|&s| s != config.image_size) {
        return Err(AeganError::option(
            "--size",
            size,
            format!(
                "--config {file} is for {0}×{0} images: drop --size or edit image_size there",
                config.image_size
            ),
        ));
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(batch) = args.batch {
        config.batch_size = batch;
    }
    Ok(config)
}

/// A resumed run keeps its checkpoint's config: an option that asks for something else is an
/// error saying the checkpoint's value, not silently ignored.
fn check_resume_options(args: &TrainArgs, config: &AeganConfig) -> aegan::Result<()> {
    let keeps =
        "a resumed run keeps its checkpoint's config: drop the option, or start a new run with another --out";
    let differs = |option: &str, given: String, has: String| {
        AeganError::option(option, given, format!("the checkpoint has {has}; {keeps}"))
    };
    if let Some(size) = args.size.filter(|&s| s != config.image_size) {
        return Err(differs("--size", size.to_string(), config.image_size.to_string()));
    }
    if let Some(batch) = args.batch.filter(|&b| b != config.batch_size) {
        return Err(differs(
            "--batch",
            batch.to_string(),
            config.batch_size.to_string(),
        ));
    }
    if let Some(seed) = args.seed.filter(|&s| s != config.seed) {
        return Err(differs("--seed", seed.to_string(), config.seed.to_string()));
    }
    let progressive = config.progressive.as_ref();
    if args.progressive && progressive.is_none() {
        return Err(differs(
            "--progressive",
            "on".into(),
            "no progressive schedule".into(),
        ));
    }
    if args.direct && progressive.is_some() {
        return Err(differs("--direct", "on".into(), "a progressive schedule".into()));
    }
    if let Some(images) = args.phase_images {
        let has = progressive.map(|p| p.images_per_phase).unwrap_or(0);
        if images != has {
            return Err(differs("--phase-images", images.to_string(), has.to_string()));
        }
    }
    if args.start_at_2 && progressive.is_some_and(|p| p.start_size != 2) {
        return Err(differs("--start-at-2", "on".into(), "start size 4".into()));
    }
    let saved = json(config);
    if let Some(name) = &args.preset {
        // The preset's layout at the checkpoint's size; batch, seed and schedule come from
        // their own options, compared above.
        let mut preset = AeganConfig::preset(name, config.image_size)?;
        preset.batch_size = config.batch_size;
        preset.seed = config.seed;
        preset.progressive = config.progressive;
        // Conditioning has its own option (--conditional), checked by the example.
        preset.conditioning = config.conditioning.clone();
        if let Some((field, has, given)) = first_difference(&saved, &json(&preset), "") {
            return Err(differs(
                "--preset",
                format!("{name} (whose `{field}` is {given})"),
                format!("`{field}` = {has}"),
            ));
        }
    }
    if let Some(path) = &args.config {
        let given = AeganConfig::from_json_file(path)?;
        if let Some((field, has, given)) = first_difference(&saved, &json(&given), "") {
            return Err(differs(
                "--config",
                format!("{} (whose `{field}` is {given})", path.display()),
                format!("`{field}` = {has}"),
            ));
        }
    }
    Ok(())
}

fn json(config: &AeganConfig) -> serde_json::Value {
    serde_json::to_value(config).unwrap_or_default()
}

/// The first field (dotted path) where two JSON values differ, with both values.
fn first_difference(
    a: &serde_json::Value,
    b: &serde_json::Value,
    prefix: &str,
) -> Option<(String, serde_json::Value, serde_json::Value)> {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let null = serde_json::Value::Null;
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                first_difference(x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null), &path)
            })
        }
        _ if a == b => None,
        _ => Some((prefix.to_string(), a.clone(), b.clone())),
    }
}

/// A new run may write into `out` when it holds no other run, or when --overwrite says to
/// delete that run (whose files are listed here and deleted by the training loop).
fn claim_output_folder(args: &TrainArgs, out: &std::path::Path) -> aegan::Result<()> {
    let Some(existing) = ExistingRun::find(out) else {
        return Ok(());
    };
    if !args.overwrite {
        return Err(existing.refusal());
    }
    let paths: Vec<String> = existing
        .deleted_paths()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    println!(
        "--overwrite: deleting the run in {} ({}): {}",
        out.display(),
        existing.describe(),
        paths.join(", ")
    );
    Ok(())
}

/// What a run trains on, recorded in its output folder so that `--resume` continues on the same
/// images: without the record, a resumed run given no `--data` would go on training on the
/// built-in synthetic images.
pub enum DataSource {
    /// The example's built-in synthetic images.
    Synthetic,
    /// A folder of images (as given to `--data`).
    Folder(PathBuf),
}

impl DataSource {
    /// The record's file in an output folder.
    fn record_path(out: &std::path::Path) -> PathBuf {
        out.join("data-source.txt")
    }

    /// One line: `synthetic`, or `folder <absolute path>`.
    fn line(&self) -> String {
        match self {
            DataSource::Synthetic => "synthetic".into(),
            DataSource::Folder(dir) => {
                let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
                format!("folder {}", dir.display())
            }
        }
    }

    /// Writes the record of a new run into `out`.
    fn record(&self, out: &std::path::Path) -> aegan::Result<()> {
        let path = Self::record_path(out);
        std::fs::create_dir_all(out)
            .and_then(|_| std::fs::write(&path, self.line() + "\n"))
            .map_err(|e| AeganError::io(&path, e))
    }

    /// For a resumed run in `out`: an error naming `--data` when the run trained on other
    /// images (its folder or the synthetic ones); runs from before the record pass.
    fn check_resumed(&self, out: &std::path::Path) -> aegan::Result<()> {
        let Ok(recorded) = std::fs::read_to_string(Self::record_path(out)) else {
            return Ok(());
        };
        let recorded = recorded.trim();
        if recorded == self.line() {
            return Ok(());
        }
        let trained_on = match recorded.strip_prefix("folder ") {
            Some(dir) => format!("the images in {dir}: resume it with --data {dir}"),
            None => "the built-in synthetic images: resume it without --data".into(),
        };
        let given = match self {
            DataSource::Synthetic => "none (the built-in synthetic images)".into(),
            DataSource::Folder(dir) => dir.display().to_string(),
        };
        Err(AeganError::option(
            "--data",
            given,
            format!("the run in {} trained on {trained_on}", out.display()),
        ))
    }
}

/// Steps to train when neither --steps nor --epochs is given.
pub enum DefaultLength {
    Steps(u64),
    Epochs(f64),
}

/// Builds the new run's trainer (or takes the resumed one), then trains on `data` with
/// pictures, logs, checkpoints and a progress bar; Ctrl-C, SIGTERM and SIGHUP save a
/// checkpoint and end the program normally.
#[allow(clippy::too_many_arguments)]
pub fn train(
    args: &TrainArgs,
    start: Start,
    device: &Device,
    data: (&ImageSet, DataSource),
    held_out: Option<&ImageSet>,
    augment: Augment,
    default_out: &str,
    default_length: DefaultLength,
) -> aegan::Result<()> {
    aegan::keep_freed_memory();
    let out = args.out_dir(default_out);
    let (data, source) = data;
    let mut trainer = match start {
        Start::Resume(trainer) => {
            source.check_resumed(&out)?;
            *trainer
        }
        Start::New(mut config) => {
            claim_output_folder(args, &out)?;
            source.record(&out)?;
            if args.grows_progressively() {
                let images = args.phase_images.unwrap_or(data.len() as u64).max(1);
                let mut schedule = ProgressiveConfig::new(images);
                if args.start_at_2 {
                    schedule.start_size = 2;
                }
                config.progressive = Some(schedule);
            }
            AeganTrainer::new(*config, device)?
        }
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
        // `--minutes` alone: the clock is the only limit.
        (None, None, _) if args.minutes.is_some() => u64::MAX,
        (None, Some(e), _) | (None, None, DefaultLength::Epochs(e)) => (e * per_epoch as f64).round() as u64,
        (None, None, DefaultLength::Steps(s)) => s,
    };
    if total_steps <= trainer.step_count() {
        let (option, value) = match (args.steps, args.epochs) {
            (Some(s), _) => ("--steps", s.to_string()),
            (None, Some(e)) => ("--epochs", e.to_string()),
            (None, None) => ("--steps", format!("{total_steps} (the default)")),
        };
        return Err(AeganError::option(
            option,
            value,
            format!(
                "must be more than the {} steps already trained ({per_epoch} steps per epoch), or there is nothing to train",
                trainer.step_count()
            ),
        ));
    }
    println!(
        "data: {} images of {}×{}: {}",
        data.len(),
        data.image_size(),
        data.image_size(),
        data.description()
    );
    let length = match args.minutes {
        Some(minutes) if total_steps == u64::MAX => format!("for {minutes} minutes"),
        _ => format!(
            "{} steps ({:.2} epochs)",
            total_steps,
            total_steps as f64 / per_epoch as f64
        ),
    };
    println!(
        "model: {} GFLOP per image per step, batch {}, {length}, device {:?}, output {}",
        format_args!("{:.2}", trainer.flops_per_image() as f64 / 1e9),
        config.batch_size,
        device,
        out.display()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // With ctrlc's `termination` feature the handler also runs on SIGTERM (kill, docker stop,
    // Slurm, Kubernetes, systemd) and SIGHUP (a closed terminal): all of them save first.
    if let Err(e) = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping: saving a checkpoint (signal again to quit at once)");
    }) {
        eprintln!(
            "warning: no signal handler ({e}); an interrupt will lose the steps since the last checkpoint"
        );
    }
    let mut options = LoopOptions::new(&out, total_steps);
    // Once per epoch, but not more often than every 50 steps: a set of 80 images (one
    // diagnosis) has an epoch of 2 steps, and saving pictures and a checkpoint that often
    // took much of its time.
    options.save_every = args.save_every.unwrap_or(per_epoch.max(50)).max(1);
    options.augment = if args.no_augment { Augment::None } else { augment };
    options.progress = !args.no_progress;
    options.overwrite = args.overwrite;
    options.time_limit = args
        .minutes
        .and_then(|m| std::time::Duration::try_from_secs_f64(m * 60.0).ok());
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
    // At every save; with the default saves, not more often than every 200 steps: a small
    // set (1,334 sprites: 41 steps an epoch) would otherwise spend a visible share of its
    // time measuring.
    let eval_every = args.eval_every.unwrap_or(match args.save_every {
        Some(_) => options.save_every,
        None => options.save_every.max(200),
    });
    let mut training = TrainingLoop::new(options, stop);
    if !args.no_eval {
        let mut evaluator = Evaluator::new(data, args.eval_images, args.eval_images, config.seed)?;
        if let Some(held) = held_out.filter(|h| !h.is_empty()) {
            let labels = metrics::evenly_spaced_labels(held, args.eval_images);
            evaluator = evaluator.with_held_out(metrics::evenly_spaced(held, args.eval_images)?, labels);
        }
        if let Some(path) = &args.inception {
            println!(
                "computing (or reading cached) Inception features of {} real images...",
                args.eval_images.min(data.len())
            );
            let net = FidInception::load(path, device)?;
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
