//! The AEGAN objective (Lazarou 2020, arXiv 2004.05472), written down once.
//!
//! With x a batch of real images, z ~ N(0, I) a batch of latents, G the generator, E the
//! encoder, Dx and Dz the image and latent discriminators (returning logits), σ the logistic
//! function and `BCE(l, t) = −t·log σ(l) − (1 − t)·log(1 − σ(l))` averaged over the batch:
//!
//! **Four fakes.** x̂ = G(z) (generated image), ẑ = E(x) (encoded latent),
//! x̃ = G(E(x)) (reconstructed image), z̃ = E(G(z)) (reconstructed latent).
//!
//! **Discriminator step** (fakes detached; t_r, t_f the soft targets, default 0.95 / 0.05):
//!
//! ```text
//! L_Dx = BCE(Dx(x), t_r) + ½·[BCE(Dx(x̂), t_f) + BCE(Dx(x̃), t_f)]
//! L_Dz = BCE(Dz(z), t_r) + ½·[BCE(Dz(ẑ), t_f) + BCE(Dz(z̃), t_f)]
//! ```
//! Dx is updated on ∇L_Dx and Dz on ∇L_Dz, each with its own Adam. With output zeroing p > 0
//! every logit in this step is multiplied by an independent Bernoulli(1 − p) mask: a zeroed
//! sample contributes the constant log 2 and no gradient, which slows the discriminators.
//!
//! **Generator/encoder step** (non-saturating adversarial terms with hard target 1):
//!
//! ```text
//! L_GE = ½·[α_dx·BCE(Dx(x̂), 1) + α_dx̃·BCE(Dx(x̃), 1)]
//!      + α_dz·½·[BCE(Dz(ẑ), 1) + BCE(Dz(z̃), 1)]
//!      + α_rx·mean|x̃ − x|
//!      + α_rz·mean (z̃ − z)²
//! ```
//! G and E are updated on ∇L_GE, each with its own Adam; the discriminators are not updated.
//! α_dx̃ is α_dx unless set apart (`loss_weights.reconstruction_adversarial`).
//!
//! **Options** (each off in the default `lean` preset, see [`crate::config`]):
//! - *Hinge loss* for Dx ([`ImageLoss::Hinge`]): `L_Dx = mean relu(1 − Dx(x)) +
//!   ½·[mean relu(1 + Dx(x̂)) + mean relu(1 + Dx(x̃))]` and the image term of L_GE becomes
//!   `½·[−α_dx·mean Dx(x̂) − α_dx̃·mean Dx(x̃)]`; targets and output zeroing do not apply to it.
//! - *LeCam* ([`LeCamConfig`]): with anchors a_r and a_f, moving averages of Dx's mean logits
//!   on real and on generated and reconstructed images up to the step before
//!   ([`crate::controllers`]), L_Dx gains
//!   `λ·(mean (Dx(x) − a_f)² + ½·[mean (Dx(x̂) − a_r)² + mean (Dx(x̃) − a_r)²])`.
//! - *DiffAugment* ([`DiffAugmentConfig`]): every Dx(·) above, in both steps, is Dx(T(·))
//!   with T a random differentiable augmentation drawn afresh for each batch
//!   ([`crate::diffaug`]), applied per image with probability p (fixed, or set by ADA's
//!   controller in [`crate::controllers`]).
//! - *Consistency regularisation* (bCR, [`ConsistencyConfig`]): with T a random transform
//!   drawn afresh per batch, L_Dx gains `λ_r·mean (Dx(x) − Dx(T(x)))² + λ_f·mean (Dx(x̂) −
//!   Dx(T(x̂)))²` ([`consistency_term`]); with DiffAugment on, each side is also augmented as
//!   every Dx(·) is.
//! - *Self-supervised Dx* ([`crate::config::SelfSupervisionConfig`]): with f the 8×8 features
//!   Dx computed on the real images x′ it was shown (x, augmented when DiffAugment is on), D
//!   its decoder, q a quadrant drawn afresh per batch, f_q that quadrant of f upsampled to 8×8,
//!   x′_q that quadrant of x′ and R(·) resizing to D's 32×32, L_Dx gains
//!   `λ·(mean |D(f) − R(x′)| + mean |D(f_q) − R(x′_q)|)` ([`self_supervision_term`]).
//! - *Class conditioning* ([`crate::config::ConditioningConfig`]): with y the labels of the
//!   real batch, every G(·) above is G(·, y) and every Dx(·) is the projection
//!   discriminator Dx(·, y): generated images x̂ = G(z, y) take the labels of the real batch
//!   beside them, reconstructions x̃ = G(E(x), y) their own image's label. E and Dz, and the
//!   formulas, are unchanged.
//! - *Auxiliary classifier* (`conditioning.class_loss_weight` w > 0): Dx also gives class
//!   logits C(·) from the features its output reads, and with CE the mean cross-entropy
//!   against the labels and λ the condition's strength,
//!   `L_Dx += w·CE(C(x), y)` (the classifier learns from real images only) and
//!   `L_GE += w·λ·½[CE(C(x̂), y) + CE(C(x̃), y)]`.
//! - *Mode seeking* (`loss_weights.mode_seeking` λ_ms > 0, Mao et al. 2019): with h = ⌊B/2⌋,
//!   the generated batch is paired, x̂_i with x̂_{i+h} for i < h, and in a conditional model
//!   x̂_{i+h} takes x̂_i's label (in both steps, so Dx sees the batch G is trained on); with
//!   d(a, b) = mean |a − b|, of images area-downsampled to 8×8 when larger (pixel by pixel G
//!   wins the term with speckle), and ε = 10⁻⁵,
//!   `L_GE += λ_ms / (mean_i d(x̂_i, x̂_{i+h}) / (d(z_i, z_{i+h}) + ε) + ε)` ([`mode_seeking_term`]):
//!   two latents of one class that G maps to one image cost much, different images little.
//! - *Spectral normalisation* of Dx changes the network, not these formulas: every Dx above
//!   computes with its weights divided by their largest singular values
//!   ([`crate::config::ImageDiscriminatorConfig::spectral_norm`]).
//!
//! **Your own loop.** [`AeganObjective`] gives both losses as differentiable tensors with
//! their terms (kept on the device; [`Evaluated::values`] reads them); [`crate::AeganTrainer::step`] is built on exactly these two functions. A
//! loop with its own optimisers (here aegan's Adam; gradient accumulation or extra penalties
//! fit in the same place):
//!
//! ```
//! # fn main() -> aegan::Result<()> {
//! use aegan::candle_core::Device;
//! use aegan::controllers::AdaptiveState;
//! use aegan::objective::AeganObjective;
//! use aegan::optim::Adam;
//! use aegan::rng::TrainRng;
//! use aegan::{data::synthetic, AeganConfig, NetworkKind, Networks};
//!
//! let device = Device::Cpu;
//! let config = AeganConfig::lean(16);
//! let nets = Networks::new(&config, &device)?;
//! let objective = AeganObjective::new(&config);
//! let adam = |kind: NetworkKind, lr: f64| {
//!     Adam::new(nets.store(kind).trainable(), lr, config.adam_betas, config.adam_eps)
//! };
//! let lr = config.learning_rates;
//! let mut discriminators = [
//!     adam(NetworkKind::ImageDiscriminator, lr.image_discriminator)?,
//!     adam(NetworkKind::LatentDiscriminator, lr.latent_discriminator)?,
//! ];
//! let mut generator_side = [
//!     adam(NetworkKind::Generator, lr.generator)?,
//!     adam(NetworkKind::Encoder, lr.encoder)?,
//! ];
//! let mut rng = TrainRng::new(config.seed);
//! let state = AdaptiveState::new(&config);
//! let x = synthetic::lesions(8, 16, 0).to_tensor(&device)?; // synthetic, not real data
//! for _ in 0..2 {
//!     let z = rng.normal((x.dim(0)?, config.latent_dim), &device)?;
//!     let d = objective.discriminator_loss(&nets, &x, None, &z, &state, &mut rng)?;
//!     let grads = d.loss.backward()?;
//!     for opt in &mut discriminators {
//!         opt.step(&grads)?;
//!     }
//!     let g = objective.generator_loss(&nets, &x, None, &z, &state, &mut rng)?;
//!     let grads = g.loss.backward()?;
//!     for opt in &mut generator_side {
//!         opt.step(&grads)?;
//!     }
//!     assert!(d.values()?.image.is_finite() && g.values()?.total.is_finite());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The binary cross-entropy is evaluated in the stable form
//! `max(l, 0) − l·t + log(1 + e^(−|l|))`: candle's `binary_cross_entropy_with_logit` returns
//! NaN for large logits.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::config::{
    AeganConfig, ConsistencyConfig, DiffAugmentConfig, ImageLoss, LeCamConfig, LossWeights,
    SelfSupervisionConfig,
};
use crate::controllers::AdaptiveState;
use crate::diffaug;
use crate::error::Result;
use crate::nets::{DiscriminatorOutput, Networks};
use crate::rng::TrainRng;

/// Mean binary cross-entropy of `logits` against the constant `target`, stable for any logit.
pub fn bce_with_logits(logits: &Tensor, target: f64) -> Result<Tensor> {
    let softplus_neg_abs = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    let loss = ((logits.relu()? - logits.affine(target, 0.0)?)? + softplus_neg_abs)?;
    Ok(loss.mean_all()?)
}

/// Mean hinge loss `relu(1 − sign·l)` of `logits`: `sign` 1 for real, −1 for fake.
pub fn hinge(logits: &Tensor, sign: f64) -> Result<Tensor> {
    Ok(logits.affine(-sign, 1.0)?.relu()?.mean_all()?)
}

/// The discriminator step's loss values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DiscriminatorLosses {
    /// L_Dx.
    pub image: f32,
    /// L_Dz.
    pub latent: f32,
    /// CE(C(x), y), the auxiliary classifier's loss on real images, unweighted (included in
    /// `image`); 0 without a classifier.
    #[serde(default)]
    pub class: f32,
}

/// The generator/encoder step's loss values (unweighted terms, and the weighted total).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeneratorLosses {
    /// ½·[BCE(Dx(x̂), 1) + BCE(Dx(x̃), 1)].
    pub image_adversarial: f32,
    /// ½·[BCE(Dz(ẑ), 1) + BCE(Dz(z̃), 1)].
    pub latent_adversarial: f32,
    /// mean|x̃ − x| (images in [−1, 1]).
    pub image_reconstruction: f32,
    /// mean (z̃ − z)².
    pub latent_reconstruction: f32,
    /// ½·[CE(C(x̂), y) + CE(C(x̃), y)], the auxiliary classifier's loss on generated and
    /// reconstructed images; 0 without a classifier.
    #[serde(default)]
    pub image_class: f32,
    /// 1 / (mean_i d(x̂_i, x̂_{i+h}) / (d(z_i, z_{i+h}) + ε) + ε), the mode-seeking term
    /// unweighted; 0 when its weight is 0.
    #[serde(default)]
    pub mode_seeking: f32,
    /// L_GE, the weighted sum.
    pub total: f32,
}

/// Loss values that come back from the device as one 1-D tensor of their terms.
pub trait LossValues: Sized {
    /// The terms' names, in the order of the tensor (as [`crate::AeganError::NonFiniteLoss`]
    /// names them).
    const NAMES: &'static [&'static str];
    /// The values from the terms, in the order of [`LossValues::NAMES`].
    fn from_terms(terms: &[f32]) -> Self;
}

impl LossValues for DiscriminatorLosses {
    const NAMES: &'static [&'static str] = &["d_image", "d_latent", "d_class"];
    fn from_terms(t: &[f32]) -> Self {
        DiscriminatorLosses {
            image: t[0],
            latent: t[1],
            class: t[2],
        }
    }
}

impl LossValues for GeneratorLosses {
    const NAMES: &'static [&'static str] = &[
        "g_image_adversarial",
        "g_latent_adversarial",
        "g_image_reconstruction",
        "g_latent_reconstruction",
        "g_image_class",
        "g_mode_seeking",
        "g_total",
    ];
    fn from_terms(t: &[f32]) -> Self {
        GeneratorLosses {
            image_adversarial: t[0],
            latent_adversarial: t[1],
            image_reconstruction: t[2],
            latent_reconstruction: t[3],
            image_class: t[4],
            mode_seeking: t[5],
            total: t[6],
        }
    }
}

/// A loss to differentiate, with its terms, still on the device.
#[derive(Debug)]
pub struct Evaluated<L> {
    /// The scalar tensor to call `backward` on.
    pub loss: Tensor,
    /// Its terms as a 1-D tensor in the order of [`LossValues::NAMES`], detached. Nothing is
    /// read back to the host until [`Evaluated::values`] (on a GPU, a read waits for the
    /// queued work): a loop can read several losses in one copy.
    pub terms: Tensor,
    /// What the training-time controllers need from this step, detached, in the order of
    /// [`crate::controllers::DiscriminatorStatistics::NAMES`]: Dx's mean logits and the mean
    /// sign of its real logits (discriminator step); empty for the generator step.
    pub statistics: Tensor,
    values: std::marker::PhantomData<L>,
}

impl<L: LossValues> Evaluated<L> {
    /// The terms as numbers: one device→host read. Terms of another length than
    /// [`LossValues::NAMES`] are an error.
    pub fn values(&self) -> Result<L> {
        let terms = crate::host::read_f32(&self.terms)?;
        if terms.len() != L::NAMES.len() {
            return Err(crate::AeganError::BadInput {
                what: "loss terms",
                expected: format!("{} values ({})", L::NAMES.len(), L::NAMES.join(", ")),
                found: self.terms.dims().to_vec(),
            });
        }
        Ok(L::from_terms(&terms))
    }
}

/// The AEGAN objective with its weights, targets and options from an [`AeganConfig`].
#[derive(Debug, Clone)]
pub struct AeganObjective {
    weights: LossWeights,
    real_target: f64,
    fake_target: f64,
    output_zeroing: f64,
    image_loss: ImageLoss,
    lecam: Option<LeCamConfig>,
    diff_augment: Option<DiffAugmentConfig>,
    consistency: Option<ConsistencyConfig>,
    self_supervision: Option<SelfSupervisionConfig>,
    class_loss_weight: f64,
}

impl AeganObjective {
    /// The objective configured by `config`.
    pub fn new(config: &AeganConfig) -> Self {
        AeganObjective {
            weights: config.loss_weights,
            real_target: config.real_target,
            fake_target: config.fake_target,
            output_zeroing: config.output_zeroing,
            image_loss: config.image_loss,
            lecam: config.lecam,
            diff_augment: config.diff_augment,
            consistency: config.consistency,
            self_supervision: config.self_supervision,
            class_loss_weight: config.conditioning.as_ref().map_or(0.0, |c| c.class_loss_weight),
        }
    }

    /// Dx's logits on `images` (with their class `labels` for a conditional Dx), augmented
    /// first when DiffAugment is on, and the auxiliary classifier's class logits when Dx has
    /// a classifier.
    fn image_logits(
        &self,
        nets: &Networks,
        images: &Tensor,
        labels: Option<&Tensor>,
        state: &AdaptiveState,
        rng: &mut TrainRng,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (out, _) = self.image_pass(nets, images, labels, state, rng)?;
        Ok((out.logits, out.class_logits))
    }

    /// [`AeganObjective::image_logits`] with everything Dx gives (its 8×8 features when it has
    /// a decoder) and the images it was shown.
    fn image_pass(
        &self,
        nets: &Networks,
        images: &Tensor,
        labels: Option<&Tensor>,
        state: &AdaptiveState,
        rng: &mut TrainRng,
    ) -> Result<(DiscriminatorOutput, Tensor)> {
        let seen = match &self.diff_augment {
            Some(policy) => diffaug::augment(images, policy, state.augment_probability, rng)?,
            None => images.clone(),
        };
        let out = nets.image_discriminator.forward_all_t(&seen, labels, true)?;
        Ok((out, seen))
    }

    /// The classifier's cross-entropy of each batch of class logits against its labels,
    /// averaged over the batches given; `None` without a classifier (or without labels).
    fn class_loss(batches: &[(Option<Tensor>, Option<&Tensor>)]) -> Result<Option<Tensor>> {
        let mut sum: Option<Tensor> = None;
        for (logits, labels) in batches {
            let (Some(logits), Some(labels)) = (logits, labels) else {
                return Ok(None);
            };
            let loss = candle_nn::loss::cross_entropy(logits, labels)?;
            sum = Some(match sum {
                Some(sum) => (sum + loss)?,
                None => loss,
            });
        }
        Ok(match sum {
            Some(sum) => Some((sum / batches.len() as f64)?),
            None => None,
        })
    }

    /// `w·loss` for the classifier's weight w, and the unweighted loss to report (0 without a
    /// classifier).
    fn weighted_class_loss(
        &self,
        loss: Option<Tensor>,
        like: &Tensor,
        scale: f64,
    ) -> Result<(Tensor, Tensor)> {
        match loss {
            Some(loss) => Ok(((&loss * (self.class_loss_weight * scale))?, loss)),
            None => {
                let zero = like.zeros_like()?;
                Ok((zero.clone(), zero))
            }
        }
    }

    /// The labels of the generated batch: the real batch's, or with mode seeking on, the
    /// first half's repeated in the second ([`paired_labels`]).
    fn generated_labels(&self, labels: Option<&Tensor>) -> Result<Option<Tensor>> {
        match labels {
            Some(labels) if self.weights.mode_seeking > 0.0 => Ok(Some(paired_labels(labels)?)),
            Some(labels) => Ok(Some(labels.clone())),
            None => Ok(None),
        }
    }

    /// L_Dx + L_Dz on real images `x` (with their class `labels`, u32 `(batch,)`, for a
    /// conditional model; `None` otherwise) and prior samples `z`; `rng` draws G's noise seeds,
    /// the zeroing masks and augmentations; `state` is the adaptive state before this step. The fakes are detached:
    /// the loss's gradient reaches Dx and Dz only. The networks run in training mode (batch
    /// statistics; their running statistics move).
    pub fn discriminator_loss(
        &self,
        nets: &Networks,
        x: &Tensor,
        labels: Option<&Tensor>,
        z: &Tensor,
        state: &AdaptiveState,
        rng: &mut TrainRng,
    ) -> Result<Evaluated<DiscriminatorLosses>> {
        let g = &nets.generator;
        let generated_noise = g.draw_noise_seeds(z.dim(0)?, rng);
        let reconstructed_noise = g.draw_noise_seeds(x.dim(0)?, rng);
        let generated_labels = self.generated_labels(labels)?;
        let x_hat = g
            .forward_seeded_t(z, generated_labels.as_ref(), &generated_noise, true)?
            .detach();
        let z_hat = nets.encoder.forward_t(x, true)?.detach();
        let x_tilde = g
            .forward_seeded_t(&z_hat, labels, &reconstructed_noise, true)?
            .detach();
        let z_tilde = nets.encoder.forward_t(&x_hat, true)?.detach();

        let (real, real_seen) = self.image_pass(nets, x, labels, state, rng)?;
        let (real_logits, real_class) = (real.logits, real.class_logits);
        let (generated_logits, _) = self.image_logits(nets, &x_hat, generated_labels.as_ref(), state, rng)?;
        let (reconstructed_logits, _) = self.image_logits(nets, &x_tilde, labels, state, rng)?;

        let zeroing = self.output_zeroing;
        let mut zeroed = |logits: Tensor| -> Result<Tensor> {
            if zeroing > 0.0 {
                let mask = rng.keep_mask(logits.dim(0)?, zeroing, logits.device())?;
                Ok(logits.mul(&mask)?)
            } else {
                Ok(logits)
            }
        };
        let (tr, tf) = (self.real_target, self.fake_target);
        let mut image = match self.image_loss {
            ImageLoss::NonSaturating => {
                (bce_with_logits(&zeroed(real_logits.clone())?, tr)?
                    + ((bce_with_logits(&zeroed(generated_logits.clone())?, tf)?
                        + bce_with_logits(&zeroed(reconstructed_logits.clone())?, tf)?)?
                        * 0.5)?)?
            }
            ImageLoss::Hinge => {
                (hinge(&real_logits, 1.0)?
                    + ((hinge(&generated_logits, -1.0)? + hinge(&reconstructed_logits, -1.0)?)? * 0.5)?)?
            }
        };
        let dz = &nets.latent_discriminator;
        let latent = (bce_with_logits(&zeroed(dz.forward_t(z, true)?)?, tr)?
            + ((bce_with_logits(&zeroed(dz.forward_t(&z_hat, true)?)?, tf)?
                + bce_with_logits(&zeroed(dz.forward_t(&z_tilde, true)?)?, tf)?)?
                * 0.5)?)?;

        if let Some(lecam) = &self.lecam {
            let term = lecam_term(
                &real_logits,
                &[&generated_logits, &reconstructed_logits],
                state.lecam_real,
                state.lecam_fake,
            )?;
            image = (image + (term * lecam.weight)?)?;
        }
        if let Some(cr) = &self.consistency {
            let mut transformed = |images: &Tensor, labels: Option<&Tensor>| -> Result<Tensor> {
                let t = diffaug::augment(images, &cr.transforms, cr.transforms.probability, rng)?;
                Ok(self.image_logits(nets, &t, labels, state, rng)?.0)
            };
            let real_term = consistency_term(&real_logits, &transformed(x, labels)?)?;
            let fake_term = consistency_term(
                &generated_logits,
                &transformed(&x_hat, generated_labels.as_ref())?,
            )?;
            image = ((image + (real_term * cr.real_weight)?)? + (fake_term * cr.fake_weight)?)?;
        }
        if let (Some(ss), Some(features)) = (&self.self_supervision, &real.features) {
            let quadrant = ((rng.uniform() * 4.0) as usize).min(3);
            let decode = |f: &Tensor| Ok(nets.image_discriminator.decode(f, true)?);
            let term = self_supervision_term(decode, features, &real_seen, quadrant)?;
            image = (image + (term * ss.weight)?)?;
        }
        // The classifier learns from real images only: no cross-entropy on the fakes here.
        let real_class = Self::class_loss(&[(real_class, labels)])?;
        let (weighted_class, class) = self.weighted_class_loss(real_class, &latent, 1.0)?;
        let image = (image + weighted_class)?;
        let terms = Tensor::stack(&[&image, &latent, &class], 0)?.detach();
        let statistics = Tensor::stack(
            &[
                real_logits.mean_all()?,
                generated_logits.mean_all()?,
                reconstructed_logits.mean_all()?,
                real_logits.sign()?.mean_all()?,
            ],
            0,
        )?
        .detach();
        Ok(Evaluated {
            loss: (image + latent)?,
            terms,
            statistics,
            values: std::marker::PhantomData,
        })
    }

    /// L_GE on real images `x` (with their class `labels` for a conditional model) and prior
    /// samples `z`; `rng` draws G's noise seeds and the augmentations. The
    /// gradient reaches G and E, and Dx and Dz too: a loop that updates only G and E (as
    /// [`crate::AeganTrainer`] does) steps only their optimisers.
    pub fn generator_loss(
        &self,
        nets: &Networks,
        x: &Tensor,
        labels: Option<&Tensor>,
        z: &Tensor,
        state: &AdaptiveState,
        rng: &mut TrainRng,
    ) -> Result<Evaluated<GeneratorLosses>> {
        let g = &nets.generator;
        let generated_noise = g.draw_noise_seeds(z.dim(0)?, rng);
        let reconstructed_noise = g.draw_noise_seeds(x.dim(0)?, rng);
        let generated_labels = self.generated_labels(labels)?;
        let x_hat = g.forward_seeded_t(z, generated_labels.as_ref(), &generated_noise, true)?;
        let z_hat = nets.encoder.forward_t(x, true)?;
        let x_tilde = g.forward_seeded_t(&z_hat, labels, &reconstructed_noise, true)?;
        let z_tilde = nets.encoder.forward_t(&x_hat, true)?;

        let (generated_logits, generated_class) =
            self.image_logits(nets, &x_hat, generated_labels.as_ref(), state, rng)?;
        let (reconstructed_logits, reconstructed_class) =
            self.image_logits(nets, &x_tilde, labels, state, rng)?;
        let class_loss = Self::class_loss(&[
            (generated_class, generated_labels.as_ref()),
            (reconstructed_class, labels),
        ])?;
        // Each side's half of the image adversarial term, weighted apart (α_dx and α_dx̃).
        let (generated_adversarial, reconstructed_adversarial) = match self.image_loss {
            ImageLoss::NonSaturating => (
                (bce_with_logits(&generated_logits, 1.0)? * 0.5)?,
                (bce_with_logits(&reconstructed_logits, 1.0)? * 0.5)?,
            ),
            ImageLoss::Hinge => (
                (generated_logits.mean_all()? * -0.5)?,
                (reconstructed_logits.mean_all()? * -0.5)?,
            ),
        };
        let image_adversarial = (&generated_adversarial + &reconstructed_adversarial)?;
        let dz = &nets.latent_discriminator;
        let latent_adversarial = ((bce_with_logits(&dz.forward_t(&z_hat, true)?, 1.0)?
            + bce_with_logits(&dz.forward_t(&z_tilde, true)?, 1.0)?)?
            * 0.5)?;
        let image_reconstruction = (&x_tilde - x)?.abs()?.mean_all()?;
        let latent_reconstruction = (&z_tilde - z)?.sqr()?.mean_all()?;

        let strength = nets.generator.condition_strength();
        let (weighted_class, image_class) =
            self.weighted_class_loss(class_loss, &image_reconstruction, strength)?;
        let w = &self.weights;
        let mode_seeking = if w.mode_seeking > 0.0 {
            mode_seeking_term(&x_hat, z)?
        } else {
            image_reconstruction.zeros_like()?
        };
        let total = ((&generated_adversarial * w.image_adversarial)?
            + (&reconstructed_adversarial * w.reconstruction_adversarial_weight())?
            + (&latent_adversarial * w.latent_adversarial)?
            + (&image_reconstruction * w.image_reconstruction)?
            + (&latent_reconstruction * w.latent_reconstruction)?
            + weighted_class
            + (&mode_seeking * w.mode_seeking)?)?;
        let terms = Tensor::stack(
            &[
                &image_adversarial,
                &latent_adversarial,
                &image_reconstruction,
                &latent_reconstruction,
                &image_class,
                &mode_seeking,
                &total,
            ],
            0,
        )?
        .detach();
        Ok(Evaluated {
            loss: total,
            terms,
            statistics: Tensor::zeros(0, candle_core::DType::F32, x.device())?,
            values: std::marker::PhantomData,
        })
    }
}

/// The mode-seeking term's ε, which bounds it when two latents give the same image.
pub const MODE_SEEKING_EPSILON: f64 = 1e-5;

/// The side at which the mode-seeking term compares images: larger images are averaged over
/// blocks down to it. Compared pixel by pixel, G wins the term with speckle (per-pixel noise
/// and texture that differ between any two images) and keeps one silhouette per class; at
/// 8×8 only layout, shape and colour count.
pub const MODE_SEEKING_SIDE: usize = 8;

/// The mode-seeking term `1 / (mean_i d(x̂_i, x̂_{i+h}) / (d(z_i, z_{i+h}) + ε) + ε)` of a
/// generated batch `images` `(B, C, H, W)` and its latents `z` `(B, D)`: h = ⌊B/2⌋ pairs, the
/// first half with the second (an odd batch's last image is in no pair), d(a, b) the mean
/// absolute difference, of the images after area-downsampling to [`MODE_SEEKING_SIDE`] (those
/// no larger are compared as they are), and ε [`MODE_SEEKING_EPSILON`]. The latents are
/// constants; the gradient reaches `images`. A batch of fewer than 2, latents of another count
/// than the images, or images that are not square or whose side is larger than
/// [`MODE_SEEKING_SIDE`] and not a multiple of it is an error.
pub fn mode_seeking_term(images: &Tensor, z: &Tensor) -> Result<Tensor> {
    let batch = images.dim(0)?;
    if batch < 2 || z.dim(0)? != batch {
        return Err(crate::AeganError::BadInput {
            what: "mode-seeking batch (images, latents)",
            expected: "the same count of images and latents, at least 2".into(),
            found: vec![batch, z.dim(0)?],
        });
    }
    let half = batch / 2;
    let pair_distance = |t: &Tensor| -> Result<Tensor> {
        let t = t.flatten_from(1)?;
        Ok((t.narrow(0, 0, half)? - t.narrow(0, half, half)?)?
            .abs()?
            .mean(1)?)
    };
    let Some(coarse) = crate::ops::try_downsample_area_to(images, MODE_SEEKING_SIDE)? else {
        let (_, _, height, width) = images.dims4()?;
        return Err(crate::AeganError::BadInput {
            what: "mode-seeking images (height, width)",
            expected: format!("square, of a side no larger than {MODE_SEEKING_SIDE} or a multiple of it"),
            found: vec![height, width],
        });
    };
    let z = z.detach();
    // ε under the latents' distance too: two equal latents would otherwise divide by zero
    // (the term finite, its gradient not).
    let latent_distance = (pair_distance(&z)? + MODE_SEEKING_EPSILON)?;
    let ratio = (pair_distance(&coarse)? / latent_distance)?.mean_all()?;
    Ok((ratio + MODE_SEEKING_EPSILON)?.recip()?)
}

/// The generated batch's labels under mode seeking: with h = ⌊B/2⌋, label i + h is label i
/// for i < h (an odd batch's last label stays), so the pairs of [`mode_seeking_term`] share
/// a class. The marginal over classes is the real batch's, drawn from half as many labels.
pub fn paired_labels(labels: &Tensor) -> Result<Tensor> {
    let batch = labels.dim(0)?;
    let half = batch / 2;
    let first = labels.narrow(0, 0, half)?;
    if batch % 2 == 0 {
        return Ok(Tensor::cat(&[&first, &first], 0)?);
    }
    Ok(Tensor::cat(
        &[&first, &first, &labels.narrow(0, batch - 1, 1)?],
        0,
    )?)
}

/// bCR's consistency term: `mean (a − b)²` of Dx's logits on images (`a`) and on their
/// transformed copies (`b`), differentiable in both.
pub fn consistency_term(logits: &Tensor, transformed_logits: &Tensor) -> Result<Tensor> {
    Ok((logits - transformed_logits)?.sqr()?.mean_all()?)
}

/// The self-supervised Dx's term: `mean |decode(f) − R(x)| + mean |decode(f_q) − R(x_q)|` for
/// Dx's features `f` `(B, C, s, s)` of the images `x` `(B, channels, r, r)` it was shown, with
/// `f_q` the quadrant `quadrant` (0 top left, 1 top right, 2 bottom left, 3 bottom right) of
/// `f` upsampled ×2 (nearest) back to s×s, `x_q` the same quadrant of `x`, and R resizing to
/// the decoder's output side (area downsampling or nearest upsampling by a power of two).
/// The targets are constants; the gradient reaches `decode` and `f`.
pub fn self_supervision_term(
    decode: impl Fn(&Tensor) -> Result<Tensor>,
    features: &Tensor,
    images: &Tensor,
    quadrant: usize,
) -> Result<Tensor> {
    if quadrant > 3 {
        return Err(crate::AeganError::BadInput {
            what: "self-supervision quadrant",
            expected: "0 to 3".into(),
            found: vec![quadrant],
        });
    }
    let (row, col) = (quadrant / 2, quadrant % 2);
    let quarter = |t: &Tensor| -> Result<Tensor> {
        let half = t.dim(3)? / 2;
        Ok(t.narrow(2, row * half, half)?.narrow(3, col * half, half)?)
    };
    let whole = decode(features)?;
    let side = whole.dim(3)?;
    let part = decode(&crate::ops::upsample_nearest_2x(&quarter(features)?)?)?;
    let whole_error = (&whole - resized(images, side)?.detach())?.abs()?.mean_all()?;
    let part_error = (&part - resized(&quarter(images)?, side)?.detach())?
        .abs()?
        .mean_all()?;
    Ok((whole_error + part_error)?)
}

/// Square images resized to `side` by a power-of-two factor: area downsampling or nearest
/// upsampling.
fn resized(images: &Tensor, side: usize) -> Result<Tensor> {
    let from = images.dim(3)?;
    let images = images.to_dtype(candle_core::DType::F32)?;
    Ok(if from > side {
        crate::ops::downsample_area(&images, from / side)?
    } else {
        crate::ops::upsample_nearest(&images, side / from)?
    })
}

/// LeCam's regulariser: `mean (real − a_fake)² + mean over fakes of mean (fake − a_real)²`.
pub fn lecam_term(real: &Tensor, fakes: &[&Tensor], anchor_real: f64, anchor_fake: f64) -> Result<Tensor> {
    let real_part = real.affine(1.0, -anchor_fake)?.sqr()?.mean_all()?;
    let mut fake_part = real_part.zeros_like()?;
    for fake in fakes {
        fake_part = (fake_part + fake.affine(1.0, -anchor_real)?.sqr()?.mean_all()?)?;
    }
    Ok((real_part + (fake_part / fakes.len().max(1) as f64)?)?)
}
