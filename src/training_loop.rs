//! [`TrainingLoop`]: the long-running part of training, so that a program needs no code of its
//! own for progress, pictures, logs or checkpoints.
//!
//! Every `save_every` steps (and at the end, or when stopped) it writes into the output folder:
//! `samples.png` (G(z) for fixed z, also kept as `history/samples-<step>.png`; for a
//! class-conditional model one labelled row per class, the same latents in every row),
//! `reconstructions.png` (pairs x | G(E(x)) of fixed real images), `loss_curve.png`, and a
//! checkpoint under `checkpoint/`. Every step's losses are appended to `losses.jsonl`. With an
//! [`Evaluator`], every `evaluate_every` steps the image-quality metrics are appended to
//! `metrics.jsonl` and drawn in the loss-curve picture. A non-finite loss stops the loop with an
//! error before anything is saved, so the last checkpoint stays the last good one.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use candle_core::Tensor;

use crate::data::{batch, batch_pixels, Augment, BatchSampler, ClassBalancedSampler, Dataset};
use crate::error::{AeganError, Result};
use crate::metrics::Evaluator;
use crate::progress::{Measure, Progress};
use crate::run_folder::ExistingRun;
use crate::run_lock::RunLock;
use crate::trainer::{AeganTrainer, StepLosses};
use crate::viz;

/// What [`TrainingLoop::run`] does besides training.
#[derive(Debug, Clone)]
pub struct LoopOptions {
    /// Folder for pictures, the loss log and `checkpoint/`.
    pub out_dir: PathBuf,
    /// Train until the trainer has completed this many steps; [`u64::MAX`] (see
    /// [`LoopOptions::until_time_limit`]) means no step limit, only `time_limit`.
    pub total_steps: u64,
    /// Write pictures and a checkpoint every this many steps.
    pub save_every: u64,
    /// Print a line every this many steps when no progress bar is shown (not a terminal).
    pub log_every: u64,
    /// Augmentation drawn for each image of each batch.
    pub augment: Augment,
    /// Show a progress bar on a terminal.
    pub progress: bool,
    /// Seed of the sample latents shown in `samples.png`.
    pub sample_seed: u64,
    /// Stop (after saving) once this much wall time has passed in [`TrainingLoop::run`]:
    /// "train for an hour" rather than for a number of steps.
    pub time_limit: Option<std::time::Duration>,
    /// When `out_dir` holds another run (see [`ExistingRun`]): delete it (`true`) instead of
    /// refusing to start with [`AeganError::RunExists`] (`false`, the default).
    pub overwrite: bool,
}

impl LoopOptions {
    /// Defaults: save every 500 steps, log every 50, no augmentation, progress bar on, never
    /// overwrite another run.
    pub fn new(out_dir: impl Into<PathBuf>, total_steps: u64) -> Self {
        LoopOptions {
            out_dir: out_dir.into(),
            total_steps,
            save_every: 500,
            log_every: 50,
            augment: Augment::None,
            progress: true,
            sample_seed: 0x5eed,
            time_limit: None,
            overwrite: false,
        }
    }

    /// Options for a run that trains until `limit` has passed, however many steps that is.
    pub fn until_time_limit(out_dir: impl Into<PathBuf>, limit: std::time::Duration) -> Self {
        let mut options = Self::new(out_dir, u64::MAX);
        options.time_limit = Some(limit);
        options
    }

    /// Whether `total_steps` bounds the run (false when only the time limit does).
    fn has_step_limit(&self) -> bool {
        self.total_steps != u64::MAX
    }

    /// What the progress bar counts: seconds of the time limit when only the clock bounds the
    /// run, else steps.
    fn progress_measure(&self) -> Measure {
        match self.time_limit {
            Some(limit) if !self.has_step_limit() => Measure::Seconds {
                limit: limit.as_secs(),
            },
            _ => Measure::Steps {
                total: self.total_steps,
            },
        }
    }
}

/// How a [`TrainingLoop::run`] ended.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopSummary {
    /// Steps completed by the trainer in total.
    pub final_step: u64,
    /// Steps run in this call.
    pub steps_run: u64,
    /// Wall time of this call, seconds.
    pub seconds: f64,
    /// Real images per second over this call.
    pub images_per_second: f64,
    /// Whether the stop flag or the time limit ended it before `total_steps`.
    pub stopped_early: bool,
    /// The last checkpoint written.
    pub checkpoint: Option<PathBuf>,
    /// The last step's losses.
    pub last_losses: Option<StepLosses>,
}

/// Drives an [`AeganTrainer`] over a [`Dataset`] with progress, pictures, logs and checkpoints.
pub struct TrainingLoop {
    options: LoopOptions,
    stop: Arc<AtomicBool>,
    evaluator: Option<(Evaluator, u64)>,
}

/// One line of `metrics.jsonl` as kept for the quality panel: step, SWD mean, FID.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "plots"), allow(dead_code))]
pub(crate) struct QualityPoint {
    pub(crate) step: f64,
    pub(crate) swd: Option<f64>,
    pub(crate) fid: Option<f64>,
}

impl TrainingLoop {
    /// A loop with `options`; it also stops (after saving) when `stop` becomes true, e.g. from
    /// a Ctrl-C handler.
    pub fn new(options: LoopOptions, stop: Arc<AtomicBool>) -> Self {
        TrainingLoop {
            options,
            stop,
            evaluator: None,
        }
    }

    /// Also measures image quality with `evaluator` every `every` steps (and at the end).
    pub fn with_evaluator(mut self, evaluator: Evaluator, every: u64) -> Self {
        self.evaluator = Some((evaluator, every.max(1)));
        self
    }

    /// The checkpoint folder under the output folder.
    pub fn checkpoint_dir(out_dir: &Path) -> PathBuf {
        out_dir.join("checkpoint")
    }

    /// Trains until `total_steps`, or until stopped. Batches depend only on the config seed and
    /// the step, so a resumed trainer continues the same schedule.
    ///
    /// A class-conditional model trains on `data`'s labels, which must name its classes in its
    /// order (else [`AeganError::ConditioningMismatch`]), with class-balanced batches when its
    /// config asks for them.
    ///
    /// An output folder that holds another run (a checkpoint or loss log this trainer's run
    /// did not write) is refused with [`AeganError::RunExists`] before anything is written,
    /// unless [`LoopOptions::overwrite`] is set; so is a folder that another live process is
    /// training into ([`AeganError::RunInProgress`], see [`RunLock`]).
    pub fn run(&self, trainer: &mut AeganTrainer, data: &dyn Dataset) -> Result<LoopSummary> {
        let o = &self.options;
        let out = &o.out_dir;
        // Held until the run returns: a second run into this folder is refused, even one
        // started at the same moment that found it empty too.
        let _lock = RunLock::acquire(out)?;
        if let Some(existing) = ExistingRun::find(out).filter(|e| !e.is_run(trainer.run_id())) {
            if !o.overwrite {
                return Err(existing.refusal());
            }
            existing.delete()?;
        }
        std::fs::create_dir_all(out.join("history")).map_err(|e| AeganError::io(out, e))?;
        let config = trainer.config().clone();
        let device = trainer.device().clone();
        check_data_classes(trainer, data)?;
        let sampler = Sampler::new(data, &config)?;
        let shown = Shown::new(trainer, data, o.sample_seed)?;
        let log_path = out.join("losses.jsonl");
        let mut history: Vec<StepLosses> = truncate_jsonl(&log_path, trainer.step_count())?
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();
        let metrics_path = out.join("metrics.jsonl");
        let mut quality: Vec<QualityPoint> = truncate_jsonl(&metrics_path, trainer.step_count())?
            .iter()
            .map(quality_point)
            .collect();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| AeganError::io(&log_path, e))?;

        let start_step = trainer.step_count();
        let mut bar = Progress::new(o.progress_measure(), start_step, o.progress);
        let started = Instant::now();
        let mut summary = LoopSummary {
            final_step: start_step,
            steps_run: 0,
            seconds: 0.0,
            images_per_second: 0.0,
            stopped_early: false,
            checkpoint: None,
            last_losses: None,
        };
        let mut resolution = trainer.resolution();
        // The next step's batch is read, augmented and converted on another thread while a
        // step runs (a folder dataset decodes there). It is a function of the step alone, so
        // prefetching changes no result.
        let prepare = |step: u64| -> Result<Prepared> {
            let indices = sampler.batch(step);
            Ok(Prepared {
                count: indices.len(),
                pixels: batch_pixels(data, &indices, o.augment, config.seed, step)?,
                labels: data
                    .labels_of(&indices)?
                    .filter(|_| config.conditioning.is_some()),
            })
        };
        std::thread::scope(|scope| -> Result<()> {
            let mut next_batch =
                (start_step < o.total_steps).then(|| scope.spawn(move || prepare(start_step)));
            while trainer.step_count() < o.total_steps {
                let out_of_time = o.time_limit.is_some_and(|limit| started.elapsed() >= limit);
                if self.stop.load(Ordering::SeqCst) || out_of_time {
                    summary.stopped_early = true;
                    break;
                }
                if trainer.resolution() != resolution {
                    resolution = trainer.resolution();
                    bar.say(format!(
                        "step {}: growing to {resolution}×{resolution}",
                        trainer.step_count()
                    ));
                }
                let step = trainer.step_count();
                // A panic there is a bug: passed on as it is.
                let prepared = match next_batch.take() {
                    Some(handle) => handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?,
                    None => prepare(step)?,
                };
                // Nothing is prepared past the last step.
                if step + 1 < o.total_steps {
                    next_batch = Some(scope.spawn(move || prepare(step + 1)));
                }
                let side = data.image_size();
                let batch = Tensor::from_vec(prepared.pixels, (prepared.count, 3, side, side), &device)?;
                let stepped = match &prepared.labels {
                    Some(labels) => trainer.step_labelled(&batch, labels),
                    None => trainer.step(&batch),
                };
                let losses = match stepped {
                    Ok(l) => l,
                    Err(e) => {
                        bar.abandon();
                        return Err(e);
                    }
                };
                let line = serde_json::to_string(&losses).map_err(|source| AeganError::Json {
                    path: log_path.clone(),
                    source,
                })?;
                writeln!(log, "{line}").map_err(|e| AeganError::io(&log_path, e))?;
                history.push(losses);
                summary.last_losses = Some(losses);

                let done = trainer.step_count();
                let elapsed = started.elapsed().as_secs_f64();
                let images_per_second =
                    ((done - start_step) as usize * config.batch_size) as f64 / elapsed.max(1e-9);
                let epoch = done as f64 / sampler.batches_per_epoch() as f64;
                bar.advance(
                    done,
                    started.elapsed().as_secs(),
                    format!(
                        "epoch {epoch:.2} | {images_per_second:.1} img/s | D_x {:.3} D_z {:.3} | rec_x {:.3} rec_z {:.3}",
                        losses.discriminator.image,
                        losses.discriminator.latent,
                        losses.generator.image_reconstruction,
                        losses.generator.latent_reconstruction
                    ),
                );
                if bar.is_hidden() && (done.is_multiple_of(o.log_every) || done == o.total_steps) {
                    println!("{}", bar.status_line(done));
                }
                if let Some((evaluator, every)) = &self.evaluator {
                    // A progressive run is measured once it works at the full image size.
                    let full_size = trainer.resolution() == config.image_size;
                    if full_size && (done.is_multiple_of(*every) || done == o.total_steps) {
                        let point = evaluate_and_log(evaluator, trainer, &metrics_path)?;
                        bar.say(format!(
                            "step {done}: SWD {:.1}{}",
                            point.swd.unwrap_or(f64::NAN),
                            point.fid.map(|f| format!(", FID {f:.1}")).unwrap_or_default()
                        ));
                        quality.push(point);
                    }
                }
                if done.is_multiple_of(o.save_every) || done == o.total_steps {
                    summary.checkpoint = Some(self.save(trainer, &shown, &history, &quality)?);
                }
            }
            Ok(())
        })?;
        // Saved at the stop, unless the last step already was (a second snapshot of the same
        // step would only take disk and time).
        let saved_last_step = summary
            .checkpoint
            .as_ref()
            .is_some_and(|_| trainer.step_count().is_multiple_of(o.save_every));
        if summary.stopped_early && trainer.step_count() > start_step && !saved_last_step {
            summary.checkpoint = Some(self.save(trainer, &shown, &history, &quality)?);
        }
        bar.finish();
        summary.final_step = trainer.step_count();
        summary.steps_run = summary.final_step - start_step;
        summary.seconds = started.elapsed().as_secs_f64();
        summary.images_per_second =
            (summary.steps_run as usize * config.batch_size) as f64 / summary.seconds.max(1e-9);
        Ok(summary)
    }

    /// Pictures, loss curve and checkpoint; returns the checkpoint directory.
    #[cfg_attr(not(feature = "plots"), allow(unused_variables))]
    fn save(
        &self,
        trainer: &AeganTrainer,
        shown: &Shown,
        history: &[StepLosses],
        quality: &[QualityPoint],
    ) -> Result<PathBuf> {
        let out = &self.options.out_dir;
        let model = trainer.model();
        let samples = match &shown.z_labels {
            Some(labels) => model.generate_labelled(&shown.z, labels)?,
            None => model.generate(&shown.z)?,
        };
        let step = trainer.step_count();
        let class_names = trainer.config().class_names();
        match trainer.growth() {
            #[cfg(feature = "plots")]
            _ if !class_names.is_empty() => {
                // One row per class, the same latents in every row.
                let zoom = (2 * trainer.config().image_size / trainer.resolution()).max(1);
                viz::save_class_rows(
                    &samples,
                    class_names,
                    SHOWN_PER_CLASS,
                    zoom,
                    out.join("samples.png"),
                )?;
                viz::save_class_rows(
                    &samples,
                    class_names,
                    SHOWN_PER_CLASS,
                    zoom,
                    out.join("history").join(format!("samples-{step:08}.png")),
                )?;
            }
            None => {
                let columns = if class_names.is_empty() {
                    8
                } else {
                    SHOWN_PER_CLASS
                };
                viz::save_grid(&samples, columns, 2, out.join("samples.png"))?;
                viz::save_grid(
                    &samples,
                    columns,
                    2,
                    out.join("history").join(format!("samples-{step:08}.png")),
                )?;
            }
            Some(growth) => {
                // Shown at the current resolution, enlarged to the final display size.
                let r = growth.resolution;
                let zoom = (2 * trainer.config().image_size / r).max(1);
                // Captioned with the resolution and the fade with the `plots` feature (which
                // draws text); without it the grid goes alone.
                #[cfg(feature = "plots")]
                let save = |path| {
                    let fade = if growth.is_fading() {
                        format!(", fading in: α = {:.2}", growth.alpha)
                    } else {
                        String::new()
                    };
                    let label = format!("{r}×{r} at step {step}{fade}");
                    viz::save_labelled_grid(&samples, 8, zoom, &label, path)
                };
                #[cfg(not(feature = "plots"))]
                let save = |path| viz::save_grid(&samples, 8, zoom, path);
                save(out.join("samples.png"))?;
                save(out.join("history").join(format!("samples-{step:08}-{r}px.png")))?;
            }
        }
        let shown_real = trainer.at_current_resolution(&shown.real)?;
        let reconstructed = match &shown.real_labels {
            Some(labels) => model.reconstruct_labelled(&shown_real, labels)?,
            None => model.reconstruct(&shown_real)?,
        };
        let pairs = Tensor::stack(&[&shown_real, &reconstructed], 1)?.flatten_to(1)?;
        let zoom = (2 * trainer.config().image_size / trainer.resolution()).max(1);
        viz::save_grid(&pairs, 8, zoom, out.join("reconstructions.png"))?;
        #[cfg(feature = "plots")]
        crate::curves::save_loss_curve(history, quality, &out.join("loss_curve.png"))?;
        trainer.save_checkpoint(Self::checkpoint_dir(out))
    }
}

/// Samples per class in the pictures of a class-conditional run (one row per class).
const SHOWN_PER_CLASS: usize = 8;

/// One prepared training batch.
struct Prepared {
    count: usize,
    pixels: Vec<f32>,
    /// The images' classes, for a conditional model.
    labels: Option<Vec<usize>>,
}

/// How batches are drawn: shuffled epochs, or class-balanced for a conditional config that
/// asks for it.
enum Sampler {
    Shuffled(BatchSampler),
    Balanced {
        sampler: ClassBalancedSampler,
        per_epoch: usize,
    },
}

impl Sampler {
    fn new(data: &dyn Dataset, config: &crate::AeganConfig) -> Result<Self> {
        let shuffled = BatchSampler::new(data.len(), config.batch_size, config.seed)?;
        if !config.conditioning.as_ref().is_some_and(|c| c.balanced_batches) {
            return Ok(Sampler::Shuffled(shuffled));
        }
        let all: Vec<usize> = (0..data.len()).collect();
        let labels = data.labels_of(&all)?.unwrap_or_default();
        Ok(Sampler::Balanced {
            sampler: ClassBalancedSampler::new(&labels, config.batch_size, config.seed)?,
            per_epoch: shuffled.batches_per_epoch(),
        })
    }

    fn batch(&self, step: u64) -> Vec<usize> {
        match self {
            Sampler::Shuffled(s) => s.batch(step),
            Sampler::Balanced { sampler, .. } => sampler.batch(step),
        }
    }

    /// Batches in one pass's worth of images (for the epoch count shown).
    fn batches_per_epoch(&self) -> usize {
        match self {
            Sampler::Shuffled(s) => s.batches_per_epoch(),
            Sampler::Balanced { per_epoch, .. } => *per_epoch,
        }
    }
}

/// What the saved pictures show: fixed latents (one row per class for a conditional model,
/// the same latents in each row) and eight real images for the reconstructions.
struct Shown {
    z: Tensor,
    z_labels: Option<Vec<usize>>,
    real: Tensor,
    real_labels: Option<Vec<usize>>,
}

impl Shown {
    fn new(trainer: &AeganTrainer, data: &dyn Dataset, seed: u64) -> Result<Self> {
        let classes = trainer.config().class_names().len();
        let indices: Vec<usize> = (0..8.min(data.len()))
            .map(|i| i * data.len() / 8.min(data.len()))
            .collect();
        let real = batch(data, &indices, Augment::None, 0, 0, trainer.device())?;
        if classes == 0 {
            return Ok(Shown {
                z: trainer.model().sample_latents(32, seed)?,
                z_labels: None,
                real,
                real_labels: None,
            });
        }
        let row = trainer.model().sample_latents(SHOWN_PER_CLASS, seed)?;
        let rows: Vec<&Tensor> = (0..classes).map(|_| &row).collect();
        Ok(Shown {
            z: Tensor::cat(&rows, 0)?,
            z_labels: Some(
                (0..classes * SHOWN_PER_CLASS)
                    .map(|i| i / SHOWN_PER_CLASS)
                    .collect(),
            ),
            real,
            real_labels: data.labels_of(&indices)?,
        })
    }
}

/// A conditional model must train on data labelled with its classes, in its order; an
/// unconditional one takes any data (labels are then not used).
fn check_data_classes(trainer: &AeganTrainer, data: &dyn Dataset) -> Result<()> {
    let model = trainer.config().class_names();
    if !model.is_empty() && data.class_names() != model {
        return Err(AeganError::ConditioningMismatch {
            first: "the model".into(),
            first_classes: AeganError::describe_classes(model),
            second: format!("the training data ({})", data.description()),
            second_classes: match data.class_names() {
                [] => "unlabelled".into(),
                names => AeganError::describe_classes(names),
            },
        });
    }
    Ok(())
}

/// Keeps the lines of an existing JSON-lines log whose `step` is at most `step` (a resumed
/// run re-does later steps) and returns them.
fn truncate_jsonl(path: &Path, step: u64) -> Result<Vec<serde_json::Value>> {
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(Vec::new());
    };
    let mut kept_lines = Vec::new();
    let mut kept = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| AeganError::io(path, e))?;
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) {
            if value
                .get("step")
                .and_then(|s| s.as_u64())
                .is_some_and(|s| s <= step)
            {
                kept.push(value);
                kept_lines.push(line);
            }
        }
    }
    let mut text = kept_lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    crate::io::write_atomic(path, text.as_bytes())?;
    Ok(kept)
}

/// Runs the evaluator on the trainer's networks and appends `{"step": .., <report>}` to the log.
fn evaluate_and_log(evaluator: &Evaluator, trainer: &AeganTrainer, path: &Path) -> Result<QualityPoint> {
    let report = evaluator.evaluate(trainer.networks(), trainer.device())?;
    let mut value = serde_json::to_value(&report).map_err(|source| AeganError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(map) = value.as_object_mut() {
        map.insert("step".into(), trainer.step_count().into());
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| AeganError::io(path, e))?;
    writeln!(file, "{value}").map_err(|e| AeganError::io(path, e))?;
    Ok(quality_point(&value))
}

fn quality_point(value: &serde_json::Value) -> QualityPoint {
    QualityPoint {
        step: value.get("step").and_then(|s| s.as_f64()).unwrap_or(0.0),
        swd: value.pointer("/swd/mean").and_then(|v| v.as_f64()),
        fid: value.get("fid").and_then(|v| v.as_f64()),
    }
}
