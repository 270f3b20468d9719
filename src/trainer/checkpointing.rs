//! Saving a trainer as a checkpoint and resuming one exactly: the networks, the optimisers'
//! moments and step counts, and the run's state ([`super::state::RunState`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::AeganTrainer;
use crate::checkpoint::{self, Snapshot, TrainingState};
use crate::controllers::AdaptiveState;
use crate::error::{AeganError, Result};
use crate::nets::NetworkKind;
use crate::optim::Adam;
use crate::rng::TrainRng;

impl AeganTrainer {
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
            step: self.run.step,
            rng: self.run.rng.state(),
            optimizer_steps,
            optimizer_param_steps,
            adaptive: self
                .run
                .controllers
                .has_state()
                .then(|| self.run.controllers.state()),
            growth: self.growth(),
            run_id: Some(self.run.run_id.clone()),
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
        &self.run.run_id
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
        self.run.rng = rng;
        self.run.step = state.step;
        let adaptive = state.adaptive.unwrap_or_else(|| AdaptiveState::new(&self.config));
        self.run.controllers.restore(adaptive);
        self.run.run_id = state
            .run_id
            .unwrap_or_else(|| checkpoint::LEGACY_RUN_ID.to_string());
        self.sync_growth()
    }
}
