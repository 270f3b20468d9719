//! [`AeganTrainer`]: runs the two phases of the AEGAN objective with four Adam optimisers, and
//! saves and resumes exactly.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, Snapshot, TrainingState};
use crate::config::AeganConfig;
use crate::error::{AeganError, Result};
use crate::nets::{NetworkKind, Networks};
use crate::objective::{AdaptiveState, AeganObjective, DiscriminatorLosses, GeneratorLosses, LossValues};
use crate::optim::Adam;
use crate::progressive::{downsample_area, fade, upsample_nearest, Growth};
use crate::rng::TrainRng;

/// The losses of one [`AeganTrainer::step`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepLosses {
    /// The step these losses belong to (1 for the first).
    pub step: u64,
    /// Discriminator phase.
    pub discriminator: DiscriminatorLosses,
    /// Generator/encoder phase.
    pub generator: GeneratorLosses,
}

impl StepLosses {
    /// Every loss value with its name, in a fixed order (for logs and checks).
    pub fn named(&self) -> [(&'static str, f32); 9] {
        let d = &self.discriminator;
        let g = &self.generator;
        [
            ("d_image", d.image),
            ("d_latent", d.latent),
            ("d_class", d.class),
            ("g_image_adversarial", g.image_adversarial),
            ("g_latent_adversarial", g.latent_adversarial),
            ("g_image_reconstruction", g.image_reconstruction),
            ("g_latent_reconstruction", g.latent_reconstruction),
            ("g_image_class", g.image_class),
            ("g_total", g.total),
        ]
    }
}

/// Trains G, E, Dx and Dz with the objective in [`crate::objective`].
///
/// ```
/// use aegan::{AeganConfig, AeganTrainer, data::synthetic};
/// # fn main() -> aegan::Result<()> {
/// let mut config = AeganConfig::lean(16);
/// config.batch_size = 4;
/// let device = aegan::select_device(aegan::DeviceChoice::Cpu)?;
/// let mut trainer = AeganTrainer::new(config, &device)?;
/// let images = synthetic::lesions(8, 16, 7).to_tensor(&device)?;
/// let losses = trainer.step(&images.narrow(0, 0, 4)?)?;
/// assert!(losses.generator.total.is_finite());
/// # Ok(()) }
/// ```
pub struct AeganTrainer {
    config: AeganConfig,
    device: Device,
    networks: Networks,
    objective: AeganObjective,
    optimizers: [Adam; 4],
    rng: TrainRng,
    step: u64,
    run_id: String,
    adaptive: AdaptiveState,
}

impl AeganTrainer {
    /// A trainer with freshly initialised networks; the config is validated first.
    pub fn new(config: AeganConfig, device: &Device) -> Result<Self> {
        let networks = Networks::new(&config, device)?;
        let lr = &config.learning_rates;
        let rates = [
            lr.generator,
            lr.encoder,
            lr.image_discriminator,
            lr.latent_discriminator,
        ];
        let mut optimizers = Vec::with_capacity(4);
        for (kind, rate) in NetworkKind::ALL.into_iter().zip(rates) {
            optimizers.push(Adam::new(
                networks.store(kind).trainable(),
                rate,
                config.adam_betas,
                config.adam_eps,
            )?);
        }
        let optimizers: [Adam; 4] = optimizers
            .try_into()
            .unwrap_or_else(|_| unreachable!("four networks"));
        let mut trainer = AeganTrainer {
            objective: AeganObjective::new(&config),
            adaptive: AdaptiveState::new(&config),
            rng: TrainRng::new(config.seed),
            device: device.clone(),
            networks,
            optimizers,
            config,
            step: 0,
            run_id: new_run_id(),
        };
        trainer.sync_growth()?;
        Ok(trainer)
    }

    /// Where progressive growing stands before the next step (`None` without a progressive
    /// config): a function of the images shown so far, `step × batch_size`.
    pub fn growth(&self) -> Option<Growth> {
        self.growth_after(self.step)
    }

    /// Where this config's schedule stands after `step` steps: `step × batch_size` images.
    fn growth_after(&self, step: u64) -> Option<Growth> {
        let images_shown = step * self.config.batch_size as u64;
        self.config
            .progressive
            .map(|p| p.growth_at(images_shown, self.config.image_size))
    }

    /// Side of the images G produces and E and Dx take now: the image size, or the current
    /// resolution of a progressive run.
    pub fn resolution(&self) -> usize {
        self.growth().map_or(self.config.image_size, |g| g.resolution)
    }

    /// Real images `(n, channels, s, s)` area-downsampled to the current
    /// [`AeganTrainer::resolution`] (unchanged at the full size), on the trainer's device.
    pub fn at_current_resolution(&self, x: &Tensor) -> Result<Tensor> {
        self.check_batch(x)
    }

    /// Puts the networks at the growth stage and condition strength of the current step.
    fn sync_growth(&mut self) -> Result<()> {
        let growth = self.growth();
        if self.networks.growth() != growth {
            self.networks.set_growth(growth)?;
        }
        if self.config.conditioning.is_some() {
            let strength = self.condition_strength();
            self.networks.set_condition_strength(strength);
        }
        Ok(())
    }

    /// The class condition's strength λ at the current step (1 for a fully conditional
    /// model, rising from 0 during a transition; 0 for an unconditional one).
    pub fn condition_strength(&self) -> f64 {
        self.config
            .conditioning
            .as_ref()
            .map_or(0.0, |c| c.strength_at(self.step * self.config.batch_size as u64))
    }

    /// The config the trainer was built with.
    pub fn config(&self) -> &AeganConfig {
        &self.config
    }

    /// The device the networks live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The four networks.
    pub fn networks(&self) -> &Networks {
        &self.networks
    }

    /// Training steps completed.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The optimiser of one network (to read or change its learning rate).
    pub fn optimizer_mut(&mut self, kind: NetworkKind) -> &mut Adam {
        &mut self.optimizers[kind as usize]
    }

    /// One training step on a batch of real images `(batch, channels, size, size)` in [−1, 1]:
    /// the discriminator phase, then the generator/encoder phase.
    ///
    /// In a progressive run the images may come at the full image size or at any power-of-two
    /// size down to the current [`AeganTrainer::resolution`]; they are area-downsampled to it,
    /// and while a resolution fades in they are blended with their 2×-downsampled version by
    /// the same α as the networks (Karras et al. 2018), so that real and generated images
    /// carry the same detail.
    pub fn step(&mut self, real: &Tensor) -> Result<StepLosses> {
        self.step_with(real, None)
    }

    /// [`AeganTrainer::step`] for a class-conditional model: `labels` holds the class of each
    /// real image (indices into [`crate::config::ConditioningConfig::classes`]). Generated
    /// images of the step take the same labels. A label count other than the batch's, or a
    /// label beyond the classes, is an error and changes nothing.
    pub fn step_labelled(&mut self, real: &Tensor, labels: &[usize]) -> Result<StepLosses> {
        self.step_with(real, Some(labels))
    }

    fn step_with(&mut self, real: &Tensor, labels: Option<&[usize]>) -> Result<StepLosses> {
        let labels = self.networks.labels_for(labels, real.dim(0)?)?;
        let labels = labels.as_ref();
        // Both phases or neither: one copy of the state before the step puts back whatever
        // either phase changed if either fails. The losses stay on the device until both
        // phases are done and come back in one read (on a GPU each read waits for the queued
        // work); a non-finite one then undoes the step.
        let before = self.save_state(&NetworkKind::ALL)?;
        let losses = self
            .keeping_buffers(&GENERATOR_SIDE, |t| t.discriminator_phase(real, labels))
            .and_then(|d| {
                let g = self.keeping_buffers(&DISCRIMINATOR_SIDE, |t| t.generator_phase(real, labels))?;
                let values = crate::host::read_f32(&Tensor::cat(&[&d, &g], 0)?)?;
                let (d, g) = values.split_at(DiscriminatorLosses::NAMES.len());
                Ok((self.checked(d)?, self.checked(g)?))
            });
        let (discriminator, generator) = match losses {
            Ok(losses) => losses,
            Err(e) => {
                self.restore_state(before)?;
                return Err(e);
            }
        };
        self.step += 1;
        // Keep the networks at the stage of the next step, which is what `growth()` reports
        // and what pictures and checkpoints taken now should show.
        self.sync_growth()?;
        Ok(StepLosses {
            step: self.step,
            discriminator,
            generator,
        })
    }

    /// The discriminator phase alone: updates Dx and Dz (weights, batch-norm statistics,
    /// optimiser state) and nothing else. G and E run in training mode to make the fakes,
    /// with batch statistics, but their running statistics are left as they were. On any
    /// error (a non-finite loss included) every change is undone. `labels`: the class of
    /// each image for a conditional model, `None` otherwise.
    pub fn discriminator_step(
        &mut self,
        real: &Tensor,
        labels: Option<&[usize]>,
    ) -> Result<DiscriminatorLosses> {
        let labels = self.networks.labels_for(labels, real.dim(0)?)?;
        self.in_phase(&DISCRIMINATOR_SIDE, &GENERATOR_SIDE, |t| {
            let terms = crate::host::read_f32(&t.discriminator_phase(real, labels.as_ref())?)?;
            t.checked(&terms)
        })
    }

    /// The generator/encoder phase alone: updates G and E (weights, batch-norm statistics,
    /// optimiser state, the moving average of G) and nothing else; Dx's running statistics
    /// are left as they were. On any error every change is undone. `labels` as for
    /// [`AeganTrainer::discriminator_step`].
    pub fn generator_step(&mut self, real: &Tensor, labels: Option<&[usize]>) -> Result<GeneratorLosses> {
        let labels = self.networks.labels_for(labels, real.dim(0)?)?;
        self.in_phase(&GENERATOR_SIDE, &DISCRIMINATOR_SIDE, |t| {
            let terms = crate::host::read_f32(&t.generator_phase(real, labels.as_ref())?)?;
            t.checked(&terms)
        })
    }

    /// Runs `phase`, which updates the networks `mine`, keeping the batch-norm statistics of
    /// `others` (see [`AeganTrainer::keeping_buffers`]); on failure puts back everything
    /// `phase` may have changed.
    fn in_phase<T>(
        &mut self,
        mine: &[NetworkKind],
        others: &[NetworkKind],
        phase: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let before = self.save_state(mine)?;
        let result = self.keeping_buffers(others, phase);
        if result.is_err() {
            self.restore_state(before)?;
        }
        result
    }

    /// Runs `phase` and then puts back the batch-norm statistics of `others`, which its
    /// forward passes in training mode moved.
    fn keeping_buffers<T>(
        &mut self,
        others: &[NetworkKind],
        phase: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let saved = self.save_buffers(others)?;
        let result = phase(self);
        restore_values(saved)?;
        result
    }

    /// Updates Dx and Dz; returns the loss terms, still on the device (the caller reads and
    /// checks them, and undoes the phase if one is not finite).
    fn discriminator_phase(&mut self, real: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        self.sync_growth()?;
        // One power-iteration step per update of Dx (a no-op without spectral norm).
        self.networks.image_discriminator.power_iteration()?;
        let x = self.training_batch(real)?;
        let z = self
            .rng
            .normal((x.dim(0)?, self.config.latent_dim), &self.device)?;
        let eval = self.objective.discriminator_loss(
            &self.networks,
            &x,
            labels,
            &z,
            &self.adaptive,
            &mut self.rng,
        )?;
        let grads = eval.loss.backward()?;
        self.optimizers[NetworkKind::ImageDiscriminator as usize].step(&grads)?;
        self.optimizers[NetworkKind::LatentDiscriminator as usize].step(&grads)?;
        self.adaptive = eval.next_state;
        Ok(eval.terms)
    }

    /// Updates G, E and the moving average of G; returns the loss terms, still on the device.
    fn generator_phase(&mut self, real: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        self.sync_growth()?;
        let x = self.training_batch(real)?;
        let z = self
            .rng
            .normal((x.dim(0)?, self.config.latent_dim), &self.device)?;
        let eval =
            self.objective
                .generator_loss(&self.networks, &x, labels, &z, &self.adaptive, &mut self.rng)?;
        let grads = eval.loss.backward()?;
        self.optimizers[NetworkKind::Generator as usize].step(&grads)?;
        self.optimizers[NetworkKind::Encoder as usize].step(&grads)?;
        self.networks
            .update_generator_ema(self.generator_average_decay())?;
        Ok(eval.terms)
    }

    /// Copies of everything a phase updating `kinds` may change: their tensors (weights and
    /// statistics; with G, its moving average), their optimisers, the random stream and the
    /// adaptive state.
    fn save_state(&self, kinds: &[NetworkKind]) -> Result<SavedState> {
        let mut vars: Vec<Var> = Vec::new();
        for &kind in kinds {
            vars.extend(self.networks.store(kind).all().into_iter().map(|(_, v)| v));
            if kind == NetworkKind::Generator {
                if let Some(ema) = self.networks.ema_store() {
                    vars.extend(ema.all().into_iter().map(|(_, v)| v));
                }
            }
        }
        Ok(SavedState {
            values: copy_values(vars)?,
            optimizers: kinds
                .iter()
                .map(|&k| (k, self.optimizers[k as usize].clone()))
                .collect(),
            rng: self.rng.clone(),
            adaptive: self.adaptive,
        })
    }

    fn restore_state(&mut self, saved: SavedState) -> Result<()> {
        restore_values(saved.values)?;
        for (kind, optimizer) in saved.optimizers {
            self.optimizers[kind as usize] = optimizer;
        }
        self.rng = saved.rng;
        self.adaptive = saved.adaptive;
        Ok(())
    }

    /// Copies of the batch-norm statistics of `kinds`.
    fn save_buffers(&self, kinds: &[NetworkKind]) -> Result<Vec<(Var, Tensor)>> {
        let mut vars = Vec::new();
        for &kind in kinds {
            vars.extend(self.networks.store(kind).buffers().into_iter().map(|(_, v)| v));
        }
        copy_values(vars)
    }

    /// Whether the config has parts that carry state between steps (ADA, LeCam).
    fn uses_adaptive_state(&self) -> bool {
        self.config.lecam.is_some() || self.config.diff_augment.is_some_and(|d| d.adaptive.is_some())
    }

    /// The objective's adaptive state: augmentation probability and LeCam anchors.
    pub fn adaptive_state(&self) -> AdaptiveState {
        self.adaptive
    }

    /// β of the moving average of G for the update after the current G step.
    fn generator_average_decay(&self) -> f64 {
        let updates = self.optimizers[NetworkKind::Generator as usize].steps();
        match &self.config.generator_average {
            Some(average) => average.decay(updates * self.config.batch_size as u64, self.config.batch_size),
            None => {
                // t counts the G updates before this one, so the first average uses decay 0.1.
                let t = updates.saturating_sub(1) as f64;
                self.config.generator_ema.min((1.0 + t) / (10.0 + t))
            }
        }
    }

    /// `n` latents drawn from N(0, I) by a stream seeded with `seed` (not the training stream,
    /// so sampling never changes how training continues).
    pub fn sample_latents(&self, n: usize, seed: u64) -> Result<Tensor> {
        crate::model::sample_latents(n, self.config.latent_dim, seed, &self.device)
    }

    /// Samples G(z) in evaluation mode (running batch-norm statistics), detached from the
    /// graph, from the moving average of G when the config keeps one
    /// ([`AeganConfig::generator_ema`]).
    pub fn generate(&self, z: &Tensor) -> Result<Tensor> {
        crate::model::generate(&self.networks, z, None)
    }

    /// [`AeganTrainer::generate`] for a class-conditional model, `labels[i]` the class of
    /// image i.
    pub fn generate_labelled(&self, z: &Tensor, labels: &[usize]) -> Result<Tensor> {
        crate::model::generate(&self.networks, z, Some(labels))
    }

    /// E(x) in evaluation mode, detached from the graph.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        crate::model::encode(&self.networks, &self.check_batch(x)?)
    }

    /// G(E(x)) in evaluation mode, through G itself (the G that E is trained with, never the
    /// moving average).
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        crate::model::reconstruct(&self.networks, &self.check_batch(x)?, None)
    }

    /// [`AeganTrainer::reconstruct`] for a class-conditional model: G(E(x), y), `labels[i]`
    /// the class of image i.
    pub fn reconstruct_labelled(&self, x: &Tensor, labels: &[usize]) -> Result<Tensor> {
        crate::model::reconstruct(&self.networks, &self.check_batch(x)?, Some(labels))
    }

    /// The trained networks for inference ([`crate::Model`]: sampling, encoding,
    /// reconstruction, interpolation), sharing this trainer's tensors.
    pub fn model(&self) -> crate::Model {
        crate::Model::new(self.config.clone(), self.networks.clone())
    }

    /// Floating-point operations of one training step per real image, counting convolutions
    /// and linear layers (2 per multiply-accumulate, backward ≈ 2× forward). Per step G and E
    /// run forward 4 times and backward twice; Dx and Dz forward 5 times and backward 5 times.
    pub fn flops_per_image(&self) -> u64 {
        let n = &self.networks;
        let ge = n.generator.macs_per_image() + n.encoder.macs_per_image();
        let d = n.image_discriminator.macs_per_image() + n.latent_discriminator.macs_per_image();
        2 * (8 * ge + 15 * d)
    }

    /// Saves a checkpoint snapshot under `root` (see [`crate::checkpoint`]); returns its directory.
    pub fn save_checkpoint(&self, root: impl AsRef<Path>) -> Result<PathBuf> {
        // The average of G is saved with statistics measured for its current weights.
        self.networks.sampler()?;
        let mut optimizer_tensors = Vec::new();
        let mut optimizer_steps = BTreeMap::new();
        let mut optimizer_param_steps = BTreeMap::new();
        for kind in NetworkKind::ALL {
            let opt = &self.optimizers[kind as usize];
            optimizer_steps.insert(kind.name().to_string(), opt.steps());
            optimizer_param_steps.insert(kind.name().to_string(), opt.param_steps().into_iter().collect());
            for (name, t) in opt.state_tensors() {
                optimizer_tensors.push((format!("{}.{name}", kind.name()), t));
            }
        }
        let state = TrainingState {
            format: checkpoint::FORMAT_VERSION,
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            step: self.step,
            rng: self.rng.state(),
            optimizer_steps,
            optimizer_param_steps,
            adaptive: self.uses_adaptive_state().then_some(self.adaptive),
            growth: self.growth(),
            run_id: Some(self.run_id.clone()),
        };
        checkpoint::save(
            root.as_ref(),
            Snapshot {
                config: &self.config,
                state,
                networks: &self.networks,
                optimizer_tensors,
            },
        )
    }

    /// A trainer continuing from the checkpoint `dir` designates (a root or a snapshot
    /// directory), with the checkpoint's config.
    ///
    /// When `dir` is a checkpoint root whose `latest` is missing, dangling or names a damaged
    /// snapshot, the newest `step-*` snapshot that loads is used; [`AeganTrainer::resume_reporting`]
    /// says which one and why the newer ones were skipped.
    pub fn resume(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        Ok(Self::resume_reporting(dir, device)?.value)
    }

    /// [`AeganTrainer::resume`], also returning the snapshot used and the newer snapshots that
    /// failed to load (with their errors).
    pub fn resume_reporting(dir: impl AsRef<Path>, device: &Device) -> Result<checkpoint::Fallback<Self>> {
        checkpoint::load_with_fallback(dir.as_ref(), |snapshot| {
            let config = checkpoint::read_config(snapshot)?;
            let mut trainer = AeganTrainer::new(config, device)?;
            trainer.load_checkpoint(snapshot)?;
            Ok(trainer)
        })
    }

    /// Identifies this training run in its checkpoints: new for a new trainer, kept across
    /// resumes. Checkpoint pruning and [`crate::TrainingLoop`]'s guard against overwriting
    /// another run use it.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Loads weights, optimiser state, step and random stream from the checkpoint `dir`
    /// designates into this trainer, keeping this trainer's config. Every tensor is checked
    /// before anything changes: a checkpoint of another layout fails with
    /// [`AeganError::ShapeMismatch`] or [`AeganError::TensorSetMismatch`], and one with other
    /// class conditioning (conditional against unconditional, or other class names) with
    /// [`AeganError::ConditioningMismatch`], naming both.
    pub fn load_checkpoint(&mut self, dir: impl AsRef<Path>) -> Result<()> {
        let snapshot = checkpoint::resolve(dir.as_ref())?;
        let saved_classes = checkpoint::read_config(&snapshot)?.class_names().to_vec();
        if saved_classes != self.config.class_names() {
            return Err(AeganError::ConditioningMismatch {
                first: format!("the checkpoint {}", snapshot.display()),
                first_classes: AeganError::describe_classes(&saved_classes),
                second: "the config it is loaded into".into(),
                second_classes: AeganError::describe_classes(self.config.class_names()),
            });
        }
        let state = checkpoint::read_state(&snapshot)?;
        let rng = TrainRng::from_state(&state.rng).ok_or_else(|| AeganError::CorruptCheckpoint {
            path: snapshot.join(checkpoint::STATE_FILE),
            reason: format!("random stream position {:?} is not a number", state.rng.word_pos),
        })?;
        let weights = checkpoint::read_network_weights(&snapshot, &self.networks)?;
        let opt_path = snapshot.join(checkpoint::OPTIMIZER_FILE);
        let opt_tensors = checkpoint::read_tensors(&opt_path, &self.device)?;
        let mut per_network: [HashMap<String, Tensor>; 4] = Default::default();
        for (key, t) in opt_tensors {
            let kind = NetworkKind::ALL
                .into_iter()
                .find(|k| key.starts_with(&format!("{}.", k.name())));
            match kind {
                Some(kind) => {
                    per_network[kind as usize].insert(key[kind.name().len() + 1..].to_string(), t);
                }
                None => {
                    return Err(AeganError::TensorSetMismatch {
                        path: opt_path,
                        tensor: key,
                        problem: "is not part of this network",
                    })
                }
            }
        }
        // Validate the optimiser state on copies, so that a failure leaves this trainer as it was.
        let mut optimizers = Vec::with_capacity(4);
        for kind in NetworkKind::ALL {
            let steps = state
                .optimizer_steps
                .get(kind.name())
                .copied()
                .unwrap_or(state.step);
            let lr = self.optimizers[kind as usize].learning_rate();
            let mut opt = Adam::new(
                self.networks.store(kind).trainable(),
                lr,
                self.config.adam_betas,
                self.config.adam_eps,
            )?;
            let param_steps = state.optimizer_param_steps.get(kind.name());
            opt.load_state(&per_network[kind as usize], steps, param_steps, &opt_path)?;
            optimizers.push(opt);
        }
        let expected_growth = self.growth_after(state.step);
        if state.growth != expected_growth {
            return Err(AeganError::CorruptCheckpoint {
                path: snapshot.join(checkpoint::STATE_FILE),
                reason: format!(
                    "it records growth {:?} at step {}, but this config's schedule gives {:?}",
                    state.growth, state.step, expected_growth
                ),
            });
        }
        weights.apply(&self.networks)?;
        self.optimizers = optimizers
            .try_into()
            .unwrap_or_else(|_| unreachable!("four networks"));
        self.rng = rng;
        self.step = state.step;
        self.adaptive = state.adaptive.unwrap_or_else(|| AdaptiveState::new(&self.config));
        self.run_id = state
            .run_id
            .unwrap_or_else(|| checkpoint::LEGACY_RUN_ID.to_string());
        self.sync_growth()
    }

    /// Moves a batch to the trainer's device as f32, checks its shape, and area-downsamples
    /// it to the current resolution.
    fn check_batch(&self, x: &Tensor) -> Result<Tensor> {
        let c = &self.config;
        let r = self.resolution();
        let dims = x.dims();
        let side_ok = |side: usize| side >= r && side <= c.image_size && side.is_power_of_two();
        if dims.len() != 4 || dims[0] < 2 || dims[1] != c.channels || !side_ok(dims[2]) || dims[3] != dims[2]
        {
            let sizes = if r == c.image_size {
                format!("{r}, {r}")
            } else {
                format!("{r}..={0}, {r}..={0} (a power of two)", c.image_size)
            };
            return Err(AeganError::BadInput {
                what: "real images",
                expected: format!("(batch >= 2, {}, {sizes})", c.channels),
                found: dims.to_vec(),
            });
        }
        let x = x.to_device(&self.device)?.to_dtype(DType::F32)?;
        Ok(downsample_area(&x, dims[2] / r)?)
    }

    /// [`Self::check_batch`], then the fade of real images while a resolution fades in.
    fn training_batch(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.check_batch(x)?;
        match self.growth() {
            Some(g) if g.is_fading() && g.resolution > 2 => {
                let coarse = upsample_nearest(&downsample_area(&x, 2)?, 2)?;
                Ok(fade(&coarse, &x, g.alpha)?)
            }
            _ => Ok(x),
        }
    }

    /// The loss values read back as `terms`, or the first that is not finite as an error
    /// naming it and the step.
    fn checked<L: LossValues>(&self, terms: &[f32]) -> Result<L> {
        match L::NAMES.iter().zip(terms).find(|(_, v)| !v.is_finite()) {
            Some((&name, &value)) => Err(AeganError::NonFiniteLoss {
                name,
                value,
                step: self.step + 1,
            }),
            None => Ok(L::from_terms(terms)),
        }
    }
}

/// The networks the discriminator phase updates.
const DISCRIMINATOR_SIDE: [NetworkKind; 2] =
    [NetworkKind::ImageDiscriminator, NetworkKind::LatentDiscriminator];
/// The networks the generator/encoder phase updates.
const GENERATOR_SIDE: [NetworkKind; 2] = [NetworkKind::Generator, NetworkKind::Encoder];

/// What [`AeganTrainer::save_state`] copies.
struct SavedState {
    values: Vec<(Var, Tensor)>,
    optimizers: Vec<(NetworkKind, Adam)>,
    rng: TrainRng,
    adaptive: AdaptiveState,
}

/// Each variable with a copy of its current value (not sharing its storage).
fn copy_values(vars: Vec<Var>) -> Result<Vec<(Var, Tensor)>> {
    vars.into_iter()
        .map(|v| {
            let value = v.as_tensor().copy()?;
            Ok((v, value))
        })
        .collect()
}

/// Puts copied values back into their variables.
fn restore_values(values: Vec<(Var, Tensor)>) -> Result<()> {
    for (var, value) in values {
        var.set(&value)?;
    }
    Ok(())
}

/// A run id that does not repeat: wall-clock nanoseconds, the process id and a per-process
/// counter. It never feeds any computation, so it does not affect reproducibility.
fn new_run_id() -> String {
    static CREATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{nanos:x}-{:x}-{n}", std::process::id())
}
