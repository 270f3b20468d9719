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
//! L_GE = α_dx·½·[BCE(Dx(x̂), 1) + BCE(Dx(x̃), 1)]
//!      + α_dz·½·[BCE(Dz(ẑ), 1) + BCE(Dz(z̃), 1)]
//!      + α_rx·mean|x̃ − x|
//!      + α_rz·mean (z̃ − z)²
//! ```
//! G and E are updated on ∇L_GE, each with its own Adam; the discriminators are not updated.
//!
//! The binary cross-entropy is evaluated in the stable form
//! `max(l, 0) − l·t + log(1 + e^(−|l|))`: candle's `binary_cross_entropy_with_logit` returns
//! NaN for large logits.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::config::{AeganConfig, LossWeights};
use crate::error::Result;
use crate::nets::Networks;
use crate::rng::TrainRng;

/// Mean binary cross-entropy of `logits` against the constant `target`, stable for any logit.
pub fn bce_with_logits(logits: &Tensor, target: f64) -> Result<Tensor> {
    let softplus_neg_abs = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    let loss = ((logits.relu()? - logits.affine(target, 0.0)?)? + softplus_neg_abs)?;
    Ok(loss.mean_all()?)
}

/// The discriminator step's loss values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DiscriminatorLosses {
    /// L_Dx.
    pub image: f32,
    /// L_Dz.
    pub latent: f32,
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
    /// L_GE, the weighted sum.
    pub total: f32,
}

/// A loss to differentiate, with the values to report.
pub(crate) struct Evaluated<L> {
    /// The scalar tensor to call `backward` on.
    pub loss: Tensor,
    /// Its terms, as numbers.
    pub values: L,
}

/// The AEGAN objective with its weights and targets from an [`AeganConfig`].
#[derive(Debug, Clone)]
pub struct AeganObjective {
    weights: LossWeights,
    real_target: f64,
    fake_target: f64,
    output_zeroing: f64,
}

impl AeganObjective {
    /// The objective configured by `config`.
    pub fn new(config: &AeganConfig) -> Self {
        AeganObjective {
            weights: config.loss_weights,
            real_target: config.real_target,
            fake_target: config.fake_target,
            output_zeroing: config.output_zeroing,
        }
    }

    /// L_Dx + L_Dz on real images `x` and prior samples `z`; `rng` draws the zeroing masks.
    pub(crate) fn discriminator_loss(
        &self,
        nets: &Networks,
        x: &Tensor,
        z: &Tensor,
        rng: &mut TrainRng,
    ) -> Result<Evaluated<DiscriminatorLosses>> {
        let x_hat = nets.generator.forward_t(z, true)?.detach();
        let z_hat = nets.encoder.forward_t(x, true)?.detach();
        let x_tilde = nets.generator.forward_t(&z_hat, true)?.detach();
        let z_tilde = nets.encoder.forward_t(&x_hat, true)?.detach();

        let mut zeroed = |logits: Tensor| -> Result<Tensor> {
            if self.output_zeroing > 0.0 {
                let mask = rng.keep_mask(logits.dim(0)?, self.output_zeroing, logits.device())?;
                Ok(logits.mul(&mask)?)
            } else {
                Ok(logits)
            }
        };
        let dx = &nets.image_discriminator;
        let dz = &nets.latent_discriminator;
        let (tr, tf) = (self.real_target, self.fake_target);

        let image = (bce_with_logits(&zeroed(dx.forward_t(x, true)?)?, tr)?
            + ((bce_with_logits(&zeroed(dx.forward_t(&x_hat, true)?)?, tf)?
                + bce_with_logits(&zeroed(dx.forward_t(&x_tilde, true)?)?, tf)?)?
                * 0.5)?)?;
        let latent = (bce_with_logits(&zeroed(dz.forward_t(z, true)?)?, tr)?
            + ((bce_with_logits(&zeroed(dz.forward_t(&z_hat, true)?)?, tf)?
                + bce_with_logits(&zeroed(dz.forward_t(&z_tilde, true)?)?, tf)?)?
                * 0.5)?)?;
        let values = DiscriminatorLosses {
            image: image.to_scalar()?,
            latent: latent.to_scalar()?,
        };
        Ok(Evaluated {
            loss: (image + latent)?,
            values,
        })
    }

    /// L_GE on real images `x` and prior samples `z`.
    pub(crate) fn generator_loss(
        &self,
        nets: &Networks,
        x: &Tensor,
        z: &Tensor,
    ) -> Result<Evaluated<GeneratorLosses>> {
        let x_hat = nets.generator.forward_t(z, true)?;
        let z_hat = nets.encoder.forward_t(x, true)?;
        let x_tilde = nets.generator.forward_t(&z_hat, true)?;
        let z_tilde = nets.encoder.forward_t(&x_hat, true)?;

        let dx = &nets.image_discriminator;
        let dz = &nets.latent_discriminator;
        let image_adversarial = ((bce_with_logits(&dx.forward_t(&x_hat, true)?, 1.0)?
            + bce_with_logits(&dx.forward_t(&x_tilde, true)?, 1.0)?)?
            * 0.5)?;
        let latent_adversarial = ((bce_with_logits(&dz.forward_t(&z_hat, true)?, 1.0)?
            + bce_with_logits(&dz.forward_t(&z_tilde, true)?, 1.0)?)?
            * 0.5)?;
        let image_reconstruction = (&x_tilde - x)?.abs()?.mean_all()?;
        let latent_reconstruction = (&z_tilde - z)?.sqr()?.mean_all()?;

        let w = &self.weights;
        let total = ((&image_adversarial * w.image_adversarial)?
            + (&latent_adversarial * w.latent_adversarial)?
            + (&image_reconstruction * w.image_reconstruction)?
            + (&latent_reconstruction * w.latent_reconstruction)?)?;
        let values = GeneratorLosses {
            image_adversarial: image_adversarial.to_scalar()?,
            latent_adversarial: latent_adversarial.to_scalar()?,
            image_reconstruction: image_reconstruction.to_scalar()?,
            latent_reconstruction: latent_reconstruction.to_scalar()?,
            total: total.to_scalar()?,
        };
        Ok(Evaluated { loss: total, values })
    }
}
