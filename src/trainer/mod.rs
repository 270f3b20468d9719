//! [`AeganTrainer`]: the step engine that runs the two phases of the AEGAN objective with four
//! Adam optimisers, all or nothing. What a run carries besides networks and optimisers is in
//! [`state`] (step, random stream, controllers, run id); saving and resuming in
//! [`checkpointing`].

mod checkpointing;
mod state;

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::config::AeganConfig;
use crate::controllers::{AdaptiveState, DiscriminatorStatistics};
use crate::error::{AeganError, Result};
use crate::nets::{NetworkKind, Networks};
use crate::objective::{AeganObjective, DiscriminatorLosses, GeneratorLosses, LossValues};
use crate::optim::Adam;
use crate::progressive::{downsample_area, fade, upsample_nearest, Growth};
use state::RunState;

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
    pub fn named(&self) -> [(&'static str, f32); 10] {
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
            ("g_mode_seeking", g.mode_seeking),
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
    run: RunState,
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
            run: RunState::new(&config),
            device: device.clone(),
            networks,
            optimizers,
            config,
        };
        trainer.sync_growth()?;
        Ok(trainer)
    }

    /// Where progressive growing stands before the next step (`None` without a progressive
    /// config): a function of the images shown so far, `step × batch_size`.
    pub fn growth(&self) -> Option<Growth> {
        self.growth_after(self.run.step)
    }

    /// Where this config's schedule stands after `step` steps: `step × batch_size` images.
    fn growth_after(&self, step: u64) -> Option<Growth> {
        let images_shown = step.saturating_mul(self.config.batch_size as u64);
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
        self.run.controllers.condition_strength(self.run.step)
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
        self.run.step
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
            .and_then(|(d, statistics)| {
                let g = self.keeping_buffers(&DISCRIMINATOR_SIDE, |t| t.generator_phase(real, labels))?;
                // The losses and the controllers' statistics: one read for the whole step.
                let values = crate::host::read_f32(&Tensor::cat(&[&d, &g, &statistics], 0)?)?;
                let (d, rest) = values.split_at(DiscriminatorLosses::NAMES.len());
                let (g, statistics) = rest.split_at(GeneratorLosses::NAMES.len());
                Ok((self.checked(d)?, self.checked(g)?, statistics.to_vec()))
            })
            .and_then(|(d, g, statistics)| {
                self.observe(&statistics)?;
                Ok((d, g))
            });
        let (discriminator, generator) = match losses {
            Ok(losses) => losses,
            Err(e) => {
                self.restore_state(before)?;
                return Err(e);
            }
        };
        self.run.step += 1;
        // Keep the networks at the stage of the next step, which is what `growth()` reports
        // and what pictures and checkpoints taken now should show.
        self.sync_growth()?;
        Ok(StepLosses {
            step: self.run.step,
            discriminator,
            generator,
        })
    }

    /// Hands the discriminator step's statistics, read back with the losses, to the
    /// controllers (ADA, LeCam), which set what the next step reads.
    fn observe(&mut self, statistics: &[f32]) -> Result<()> {
        let statistics =
            DiscriminatorStatistics::from_values(statistics).ok_or_else(|| AeganError::BadInput {
                what: "discriminator statistics",
                expected: DiscriminatorStatistics::NAMES.join(", "),
                found: vec![statistics.len()],
            })?;
        self.run.controllers.observe(&statistics);
        Ok(())
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
            let (terms, statistics) = t.discriminator_phase(real, labels.as_ref())?;
            let values = crate::host::read_f32(&Tensor::cat(&[&terms, &statistics], 0)?)?;
            let (terms, statistics) = values.split_at(DiscriminatorLosses::NAMES.len());
            let losses = t.checked(terms)?;
            t.observe(statistics)?;
            Ok(losses)
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

    /// Updates Dx and Dz; returns the loss terms and the controllers' statistics, still on the
    /// device (the caller reads and checks them, and undoes the phase if a loss is not finite).
    fn discriminator_phase(&mut self, real: &Tensor, labels: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        self.sync_growth()?;
        // One power-iteration step per update of Dx (a no-op without spectral norm).
        self.networks.image_discriminator.power_iteration()?;
        let (x, z, state) = self.phase_inputs(real)?;
        let eval =
            self.objective
                .discriminator_loss(&self.networks, &x, labels, &z, &state, &mut self.run.rng)?;
        let grads = eval.loss.backward()?;
        self.optimizers[NetworkKind::ImageDiscriminator as usize].step(&grads)?;
        self.optimizers[NetworkKind::LatentDiscriminator as usize].step(&grads)?;
        Ok((eval.terms, eval.statistics))
    }

    /// What a phase's loss reads: the real batch as the current growth stage shows it, a batch
    /// of latents drawn from the run's stream, and the controllers' state before this step.
    fn phase_inputs(&mut self, real: &Tensor) -> Result<(Tensor, Tensor, AdaptiveState)> {
        let x = self.training_batch(real)?;
        let z = self
            .run
            .rng
            .normal((x.dim(0)?, self.config.latent_dim), &self.device)?;
        Ok((x, z, self.run.controllers.state()))
    }

    /// Updates G, E and the moving average of G; returns the loss terms, still on the device.
    fn generator_phase(&mut self, real: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        self.sync_growth()?;
        let (x, z, state) = self.phase_inputs(real)?;
        let eval =
            self.objective
                .generator_loss(&self.networks, &x, labels, &z, &state, &mut self.run.rng)?;
        let grads = eval.loss.backward()?;
        self.optimizers[NetworkKind::Generator as usize].step(&grads)?;
        self.optimizers[NetworkKind::Encoder as usize].step(&grads)?;
        let updates = self.optimizers[NetworkKind::Generator as usize].steps();
        if let Some(decay) = self.run.controllers.average_decay(updates) {
            self.networks.update_generator_ema(decay)?;
        }
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
            rng: self.run.rng.clone(),
            adaptive: self.run.controllers.state(),
        })
    }

    fn restore_state(&mut self, saved: SavedState) -> Result<()> {
        restore_values(saved.values)?;
        for (kind, optimizer) in saved.optimizers {
            self.optimizers[kind as usize] = optimizer;
        }
        self.run.rng = saved.rng;
        self.run.controllers.restore(saved.adaptive);
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

    /// The controllers' state (augmentation probability and LeCam anchors) that the next
    /// step reads.
    pub fn adaptive_state(&self) -> AdaptiveState {
        self.run.controllers.state()
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
                step: self.run.step + 1,
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
    rng: crate::rng::TrainRng,
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
