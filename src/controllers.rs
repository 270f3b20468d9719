//! Training-time controllers: the numbers the trainer adjusts as training goes, from what the
//! steps measured or from how far training has come, as opposed to the losses themselves
//! ([`crate::objective`]):
//!
//! - ADA's augmentation probability (Karras et al. 2020), from Dx's confidence on real images;
//! - LeCam's anchors (Tseng et al. 2021), moving averages of Dx's mean logits;
//! - the decay of G's moving average, from the images shown (or a fixed one);
//! - the class condition's strength during a transition, from the images shown.
//!
//! The objective reports what the controllers need as a few numbers on the device
//! ([`DiscriminatorStatistics`]), which the trainer reads back together with the losses, in
//! the step's one read, and then hands to [`Controllers::observe`]: nothing here stalls a GPU.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::config::{AdaptiveAugment, AeganConfig, ConditioningConfig, GeneratorAverage, LeCamConfig};

/// What the controllers carry from step to step and checkpoints save: the augmentation
/// probability and the LeCam anchors. The objective reads it as it stands before a step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveState {
    /// Probability of each DiffAugment transform per image.
    pub augment_probability: f64,
    /// LeCam anchor a_r: moving average of Dx's mean logit on real images.
    pub lecam_real: f64,
    /// LeCam anchor a_f: moving average of Dx's mean logit on generated and reconstructed images.
    pub lecam_fake: f64,
}

impl AdaptiveState {
    /// The state before the first step: the configured probability, anchors at 0.
    pub fn new(config: &AeganConfig) -> Self {
        AdaptiveState {
            augment_probability: config.diff_augment.map(|d| d.probability).unwrap_or(0.0),
            lecam_real: 0.0,
            lecam_fake: 0.0,
        }
    }
}

/// What a discriminator step measured for the controllers, in the order of the objective's
/// statistics tensor ([`DiscriminatorStatistics::NAMES`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiscriminatorStatistics {
    /// Mean of Dx's logits on the real images.
    pub real_logit: f64,
    /// Mean of Dx's logits on the generated images.
    pub generated_logit: f64,
    /// Mean of Dx's logits on the reconstructed images.
    pub reconstructed_logit: f64,
    /// Mean sign of Dx's logits on the real images (ADA's r: near 1 when Dx overfits).
    pub real_sign: f64,
}

impl DiscriminatorStatistics {
    /// The statistics' names, in the order of the tensor.
    pub const NAMES: [&'static str; 4] = [
        "real_logit",
        "generated_logit",
        "reconstructed_logit",
        "real_sign",
    ];

    /// The statistics from the values read back, in the order of [`DiscriminatorStatistics::NAMES`].
    pub fn from_values(v: &[f32]) -> Option<Self> {
        match *v {
            [real, generated, reconstructed, sign] => Some(DiscriminatorStatistics {
                real_logit: f64::from(real),
                generated_logit: f64::from(generated),
                reconstructed_logit: f64::from(reconstructed),
                real_sign: f64::from(sign),
            }),
            _ => None,
        }
    }
}

/// The controllers of one training run, built from its config.
#[derive(Debug, Clone)]
pub struct Controllers {
    lecam: Option<LeCamConfig>,
    ada: Option<AdaptiveAugment>,
    average: Option<GeneratorAverage>,
    conditioning: Option<ConditioningConfig>,
    batch: usize,
    state: AdaptiveState,
}

impl Controllers {
    /// The controllers `config` asks for, at their starting values.
    pub fn new(config: &AeganConfig) -> Self {
        Controllers {
            lecam: config.lecam,
            ada: config.diff_augment.and_then(|d| d.adaptive),
            average: config.generator_average,
            conditioning: config.conditioning.clone(),
            batch: config.batch_size,
            state: AdaptiveState::new(config),
        }
    }

    /// The state the next step reads.
    pub fn state(&self) -> AdaptiveState {
        self.state
    }

    /// Puts back a state (a resumed checkpoint's, or the one before a step that failed).
    pub fn restore(&mut self, state: AdaptiveState) {
        self.state = state;
    }

    /// Whether any controller carries state between steps (ADA or LeCam): only then do
    /// checkpoints save it.
    pub fn has_state(&self) -> bool {
        self.lecam.is_some() || self.ada.is_some()
    }

    /// Moves the anchors and the augmentation probability by what a discriminator step on
    /// one batch measured.
    pub fn observe(&mut self, stats: &DiscriminatorStatistics) {
        if let Some(lecam) = &self.lecam {
            let d = lecam.decay;
            let fake = 0.5 * (stats.generated_logit + stats.reconstructed_logit);
            self.state.lecam_real = d * self.state.lecam_real + (1.0 - d) * stats.real_logit;
            self.state.lecam_fake = d * self.state.lecam_fake + (1.0 - d) * fake;
        }
        if let Some(ada) = &self.ada {
            self.state.augment_probability =
                augment_probability_after(self.state.augment_probability, stats.real_sign, self.batch, ada);
        }
    }

    /// The decay β of G's moving average for the update after G's `updates`-th step (this one
    /// included); `None` when no average is kept.
    pub fn average_decay(&self, updates: u64) -> Option<f64> {
        self.average
            .map(|average| average_decay(&average, updates, self.batch))
    }

    /// The class condition's strength λ after `steps` steps: 1 for a fully conditional model,
    /// rising from 0 during a transition; 0 for an unconditional one.
    pub fn condition_strength(&self, steps: u64) -> f64 {
        self.conditioning
            .as_ref()
            .map_or(0.0, |c| condition_strength(c, steps * self.batch as u64))
    }
}

/// β of G's moving average for the update after G's `updates`-th step at batch size `batch`.
///
/// - A half-life in images (StyleGAN2-ADA): `β = 0.5^(batch / h)` with
///   `h = min(half_life_images, ramp_up · images shown)` when `ramp_up > 0`, so the average
///   forgets the random initial weights quickly early on.
/// - A fixed decay d, ramped as `min(d, (1 + t) / (10 + t))` with t the G updates before this
///   one (the first average uses 0.1), so that it does not remember the initial weights long.
pub fn average_decay(average: &GeneratorAverage, updates: u64, batch: usize) -> f64 {
    match *average {
        GeneratorAverage::HalfLife {
            half_life_images,
            ramp_up,
        } => {
            let images_shown = updates * batch as u64;
            let mut half_life = half_life_images;
            if ramp_up > 0.0 {
                half_life = half_life.min(ramp_up * images_shown as f64);
            }
            0.5f64.powf(batch as f64 / half_life.max(1e-8))
        }
        GeneratorAverage::FixedDecay { decay } => {
            let t = updates.saturating_sub(1) as f64;
            decay.min((1.0 + t) / (10.0 + t))
        }
    }
}

/// The class condition's strength λ after `images_shown` images: 1 without a transition,
/// rising linearly from 0 to 1 over the transition's images.
pub fn condition_strength(conditioning: &ConditioningConfig, images_shown: u64) -> f64 {
    match conditioning.transition {
        None => 1.0,
        Some(t) => {
            let into = images_shown.saturating_sub(t.start_images) as f64;
            (into / t.length_images.max(1) as f64).min(1.0)
        }
    }
}

/// ADA's controller (Karras et al. 2020): the augmentation probability after a discriminator
/// step on `batch` real images whose Dx logits had mean sign `overfitting`:
/// `clamp(p + sign(overfitting − target) · batch / images_to_full, 0, 1)`. It rises when Dx is
/// surer of the real images than the target, falls when it is less sure, and stays where it is
/// when they are equal (where Rust's `f64::signum` would give 1).
pub fn augment_probability_after(p: f64, overfitting: f64, batch: usize, ada: &AdaptiveAugment) -> f64 {
    let direction = match overfitting.partial_cmp(&ada.target) {
        Some(Ordering::Greater) => 1.0,
        Some(Ordering::Less) => -1.0,
        Some(Ordering::Equal) | None => 0.0,
    };
    (p + direction * batch as f64 / ada.images_to_full).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADA: AdaptiveAugment = AdaptiveAugment {
        target: 0.6,
        images_to_full: 400.0,
    };

    /// Checkpoints keep the state as JSON text: it must read back bit for bit, or a resumed run
    /// departs from the run it continues. This anchor's shortest decimal form is one that
    /// serde_json's default float parser reads 1 ulp off (its `float_roundtrip` feature is on).
    #[test]
    fn the_state_reads_back_from_json_bit_for_bit() {
        let state = AdaptiveState {
            augment_probability: 0.20000000000000004,
            lecam_real: 0.023812199148774166,
            lecam_fake: 0.021935585125029106,
        };
        let text = serde_json::to_string(&state).unwrap();
        let back: AdaptiveState = serde_json::from_str(&text).unwrap();
        assert_eq!(back.lecam_real.to_bits(), state.lecam_real.to_bits(), "{text}");
        assert_eq!(back, state);
    }

    #[test]
    fn p_rises_when_dx_is_too_sure_of_real_images_falls_when_not_and_holds_at_the_target() {
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        close(augment_probability_after(0.5, 0.9, 4, &ADA), 0.51);
        close(augment_probability_after(0.5, 0.1, 4, &ADA), 0.49);
        assert_eq!(augment_probability_after(0.5, 0.6, 4, &ADA), 0.5);
        assert_eq!(augment_probability_after(0.5, f64::NAN, 4, &ADA), 0.5);
    }

    #[test]
    fn p_stays_a_probability() {
        assert_eq!(augment_probability_after(0.999, 1.0, 4, &ADA), 1.0);
        assert_eq!(augment_probability_after(0.001, -1.0, 4, &ADA), 0.0);
    }

    #[test]
    fn the_lecam_anchors_are_moving_averages_of_the_mean_logits() {
        let mut config = AeganConfig::lean(16);
        config.lecam = Some(LeCamConfig {
            weight: 0.3,
            decay: 0.9,
        });
        let mut controllers = Controllers::new(&config);
        let stats = DiscriminatorStatistics {
            real_logit: 2.0,
            generated_logit: -1.0,
            reconstructed_logit: -3.0,
            real_sign: 1.0,
        };
        controllers.observe(&stats);
        let state = controllers.state();
        assert!((state.lecam_real - 0.2).abs() < 1e-12, "{state:?}");
        assert!((state.lecam_fake + 0.2).abs() < 1e-12, "{state:?}");
        assert_eq!(state.augment_probability, 0.0, "no ADA: p stays");
    }

    #[test]
    fn the_average_decay_follows_its_half_life_or_its_ramped_fixed_value() {
        let half = GeneratorAverage::HalfLife {
            half_life_images: 64.0,
            ramp_up: 0.0,
        };
        assert!((average_decay(&half, 1, 32) - 0.5f64.sqrt()).abs() < 1e-12);
        let fixed = GeneratorAverage::FixedDecay { decay: 0.999 };
        assert!((average_decay(&fixed, 1, 32) - 0.1).abs() < 1e-12);
        assert!((average_decay(&fixed, 1_000_000, 32) - 0.999).abs() < 1e-12);
    }
}
