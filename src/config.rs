//! [`AeganConfig`]: everything that defines an AEGAN model and its training, saved as JSON
//! beside every checkpoint so that a run can be reloaded without remembering its flags.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{AeganError, Result};
pub use crate::progressive::ProgressiveConfig;

mod conditioning;
mod networks;
pub use conditioning::{ConditioningConfig, ConditioningTransition};
pub use networks::{
    ConvLayer, EncoderConfig, EncoderSpec, GeneratorConfig, GeneratorSpec, ImageDiscriminatorConfig,
    ImageDiscriminatorSpec, ImageSpec, LabelEmbedding, LatentDiscriminatorConfig, LatentDiscriminatorSpec,
    Norm, Precision, Upsample, WidthSchedule,
};

/// A moving average of G's weights, kept beside G and used for sampling and image-quality
/// measurements (Karras et al. 2018; Yazıcı et al. 2019): after each G update
/// `avg ← β·avg + (1 − β)·G`, with β from [`crate::controllers::average_decay`]. In JSON,
/// `{"half_life_images": …, "ramp_up": …}` or `{"decay": …}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum GeneratorAverage {
    /// Memory counted in real images shown, as in StyleGAN2-ADA (Karras et al. 2020):
    /// `β = 0.5^(batch / h)`, where the half-life `h = min(half_life_images, ramp_up · images
    /// shown)` grows with training (when `ramp_up > 0`), so the average forgets the random
    /// initial weights quickly early on.
    HalfLife {
        /// Images after which a past G's weight in the average has halved.
        half_life_images: f64,
        /// The half-life is at most this fraction of the images shown so far (0: no ramp-up).
        ramp_up: f64,
    },
    /// One decay per G update, ramped up as `min(decay, (1 + t) / (10 + t))` at update t.
    /// Over a CPU hour (7.5 epochs of HAM10000) a decay of 0.999 lagged G and measured worse
    /// (FID 154.8 against 143.0) than G itself.
    FixedDecay {
        /// The decay d, in (0, 1).
        decay: f64,
    },
}

impl GeneratorAverage {
    /// StyleGAN2-ADA's setting for small batches: half-life 10,000 images, ramp-up 0.05.
    pub fn new() -> Self {
        GeneratorAverage::HalfLife {
            half_life_images: 10_000.0,
            ramp_up: 0.05,
        }
    }
}

impl Default for GeneratorAverage {
    fn default() -> Self {
        Self::new()
    }
}

/// The lean preset's half-life of G's average, in images: 4,000 below 64×64, 20,000 from
/// 64×64 up. Measured over an hour each (`docs/quality.md`): the average smooths away the
/// pixel-level texture that G draws differently at each step. At 32×32 G itself is about as
/// smooth as real lesions or smoother (checker ratio 0.74 to 0.91), and 10,000 images left the
/// average smoother still (0.71); at 64×64, grown progressively, G itself holds more texture
/// than real (1.46 to 1.65), and the longer the average the more of it goes: on two threads
/// 10,000 images left 1.25 (FID 62.6), 20,000 left 1.10 (FID 59.3).
pub fn lean_half_life_images(image_size: usize) -> f64 {
    if image_size >= 64 {
        20_000.0
    } else {
        4_000.0
    }
}

/// Whether the lean preset's G has per-pixel noise ([`GeneratorConfig::noise`]): below 64×64.
/// On the reference budget at 32×32 (an hour, two threads) it lifted the checker ratio from
/// 0.73 (0.66–0.81), smoother than real lesions, to 0.85 (0.76–0.95) with FID 33.5 → 33.1
/// (`docs/quality.md`). From 64×64 up G already draws more pixel-level texture than real
/// lesions hold, so it stays off there.
pub fn lean_pixel_noise(image_size: usize) -> bool {
    image_size < 64
}

/// The adversarial loss of the image discriminator Dx (Dz always uses the binary
/// cross-entropy). See [`crate::objective`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageLoss {
    /// Binary cross-entropy with soft targets for Dx, non-saturating for G and E (the AEGAN
    /// paper's loss; the default).
    #[default]
    NonSaturating,
    /// Hinge loss (Lim & Ye 2017; Miyato et al. 2018): Dx minimises
    /// `relu(1 − Dx(x)) + relu(1 + Dx(fake))`, G and E minimise `−Dx(fake)`. Targets and
    /// output zeroing do not apply to it.
    Hinge,
}

/// LeCam regularisation of Dx (Tseng et al. 2021): adds
/// `weight · [mean (Dx(x) − a_fake)² + mean (Dx(fake) − a_real)²]` to Dx's loss, where the
/// anchors `a_real`, `a_fake` are moving averages (factor `decay`) of Dx's mean logit on real
/// and on generated/reconstructed images. It keeps Dx's outputs from drifting apart, which
/// helps on small datasets, and needs no second-order gradients.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeCamConfig {
    /// λ, the regulariser's weight (the paper uses 0.3 with hinge/BCE losses).
    pub weight: f64,
    /// Moving-average factor of the anchors (0.99 in the paper).
    pub decay: f64,
}

impl Default for LeCamConfig {
    fn default() -> Self {
        LeCamConfig {
            weight: 0.3,
            decay: 0.99,
        }
    }
}

/// Consistency regularisation of Dx (bCR, Zhao et al. 2021): Dx should score an image and a
/// transformed copy of it alike. Adds `real_weight · mean (Dx(x) − Dx(T(x)))²` on real images
/// and `fake_weight · mean (Dx(x̂) − Dx(T(x̂)))²` on generated ones to Dx's loss, T drawn afresh
/// for each batch from `transforms` (DiffAugment's, at their probability). No second-order
/// gradients: it costs two more passes of Dx per step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyConfig {
    /// λ_real (the paper: 10).
    pub real_weight: f64,
    /// λ_fake (the paper: 10).
    pub fake_weight: f64,
    /// The transforms T.
    pub transforms: DiffAugmentConfig,
}

impl Default for ConsistencyConfig {
    /// The paper's weights with translation and cutout at probability 1 (colour changes alter
    /// what a lesion looks like, so they are left out).
    fn default() -> Self {
        ConsistencyConfig {
            real_weight: 10.0,
            fake_weight: 10.0,
            transforms: DiffAugmentConfig {
                color: false,
                ..DiffAugmentConfig::all()
            },
        }
    }
}

/// A self-supervised Dx (FastGAN, Liu et al. 2021): a small decoder on Dx's 8×8 features
/// redraws the real image Dx was shown at 32×32 (averaged down from larger images, enlarged
/// from smaller ones while growing), and from one
/// quadrant of those features, drawn afresh per batch, that quadrant of the image. The two
/// mean absolute errors, on real images only, join Dx's loss with `weight`, so Dx must keep
/// what an image looks like in its features instead of only what separates real from
/// generated. The decoder (`decoder.*`) belongs to Dx and learns with it; no second-order
/// gradients. Applies while Dx sees 8×8 or larger images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfSupervisionConfig {
    /// Weight of the two reconstruction errors in Dx's loss (FastGAN: 1).
    pub weight: f64,
}

impl Default for SelfSupervisionConfig {
    fn default() -> Self {
        SelfSupervisionConfig { weight: 1.0 }
    }
}

/// Differentiable augmentation of every image Dx sees — real, generated and reconstructed, in
/// both phases (DiffAugment, Zhao et al. 2020), so that Dx cannot memorise a small training
/// set. Each transform is applied to each image with probability `probability` (1 is the
/// original DiffAugment; 0 is the identity); with `adaptive` the probability is tuned during
/// training as in ADA (Karras et al. 2020). See [`crate::diffaug`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffAugmentConfig {
    /// Random brightness, saturation and contrast.
    pub color: bool,
    /// Random integer shifts of up to 1/8 of the image side, zero (mid-grey) filled.
    pub translation: bool,
    /// A zeroed square of half the image side at a random place.
    pub cutout: bool,
    /// Probability of each transform per image (the starting value when `adaptive`).
    pub probability: f64,
    /// Raise or lower `probability` from Dx's overfitting on real images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<AdaptiveAugment>,
}

impl DiffAugmentConfig {
    /// DiffAugment's `color,translation,cutout` policy at probability 1.
    pub fn all() -> Self {
        DiffAugmentConfig {
            color: true,
            translation: true,
            cutout: true,
            probability: 1.0,
            adaptive: None,
        }
    }
}

/// ADA's controller (Karras et al. 2020): after every discriminator step,
/// `p ← clamp(p + sign(r − target) · batch / images_to_full, 0, 1)`, where r is the mean sign
/// of Dx's logits on real images (near 1 when Dx overfits).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveAugment {
    /// The value of r that the controller holds (ADA: 0.6).
    pub target: f64,
    /// Real images over which p can move from 0 to 1.
    pub images_to_full: f64,
}

impl Default for AdaptiveAugment {
    fn default() -> Self {
        AdaptiveAugment {
            target: 0.6,
            images_to_full: 100_000.0,
        }
    }
}

/// The weights of the AEGAN objective's terms (see [`crate::objective`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossWeights {
    /// α_dx: adversarial loss on images, G(z) and G(E(x)) against Dx.
    pub image_adversarial: f64,
    /// α_dz: adversarial loss on latents, E(x) and E(G(z)) against Dz.
    pub latent_adversarial: f64,
    /// α_rx: L1 image reconstruction |G(E(x)) − x|.
    pub image_reconstruction: f64,
    /// α_rz: squared latent reconstruction |E(G(z)) − z|².
    pub latent_reconstruction: f64,
    /// α_dx̃: the adversarial weight on the reconstructions G(E(x)) alone, when set; `None`
    /// (the default, and every config written before the field existed) gives them
    /// `image_adversarial` like the generated images. Set apart, the reconstructions can be
    /// trained for fidelity with less pressure from Dx (or none) while the generated images
    /// keep theirs; what it did on sprites is in `docs/quality.md` (the sprites' encoder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconstruction_adversarial: Option<f64>,
    /// λ_ms: the mode-seeking term (Mao et al. 2019), which rewards G for drawing different
    /// images from different latents of the same class; 0 (the default, and every config
    /// written before the field existed) leaves it out and the batch as it was. Above 0 the
    /// second half of each generated batch takes the labels of the first half, so that every
    /// pair (x̂_i, x̂_{i+B/2}) shares a class (see [`crate::objective::mode_seeking_term`]).
    /// It needs a batch of at least 2. On sprites (two seeds), 0.03 lifted the within-class
    /// layout diversity of every large class above 0.6 (0.37 without) at a level FID and a
    /// worse KID; 0.1 and more cost class fidelity and quality (`docs/quality.md`, "a
    /// mode-seeking term").
    #[serde(default, skip_serializing_if = "is_zero_weight")]
    pub mode_seeking: f64,
}

fn is_zero_weight(weight: &f64) -> bool {
    *weight == 0.0
}

impl LossWeights {
    /// The adversarial weight on the reconstructions G(E(x)): `reconstruction_adversarial`
    /// where set, `image_adversarial` otherwise.
    pub fn reconstruction_adversarial_weight(&self) -> f64 {
        self.reconstruction_adversarial.unwrap_or(self.image_adversarial)
    }
}

/// One Adam learning rate per network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearningRates {
    /// Generator G.
    pub generator: f64,
    /// Encoder E.
    pub encoder: f64,
    /// Image discriminator Dx.
    pub image_discriminator: f64,
    /// Latent discriminator Dz.
    pub latent_discriminator: f64,
}

/// Everything that defines an AEGAN model and how it is trained.
///
/// Build one from a preset ([`AeganConfig::lean`], [`AeganConfig::author32`]), change fields,
/// and call [`AeganConfig::validate`] (the trainer does so too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AeganConfig {
    /// Side of the square images: a power of two from 16 to 256.
    pub image_size: usize,
    /// Image channels (3 for RGB).
    pub channels: usize,
    /// Size of the latent vector z.
    pub latent_dim: usize,
    /// Generator layout.
    pub generator: GeneratorConfig,
    /// Encoder layout.
    pub encoder: EncoderConfig,
    /// Image discriminator layout.
    pub image_discriminator: ImageDiscriminatorConfig,
    /// Latent discriminator layout.
    pub latent_discriminator: LatentDiscriminatorConfig,
    /// How G upsamples.
    pub upsample: Upsample,
    /// Normalisation after hidden convolutions of G, E and Dx (never after Dx's first layer).
    pub norm: Norm,
    /// Negative slope of every leaky ReLU.
    pub leaky_slope: f64,
    /// Weights of the four AEGAN loss terms.
    pub loss_weights: LossWeights,
    /// Discriminator target for real inputs (soft label; 1.0 is a hard label).
    pub real_target: f64,
    /// Discriminator target for generated inputs (soft label; 0.0 is a hard label).
    pub fake_target: f64,
    /// Probability that each discriminator output is zeroed in the discriminator step, so that
    /// sample gives that step no gradient: it slows the discriminators down.
    pub output_zeroing: f64,
    /// Adam learning rates.
    pub learning_rates: LearningRates,
    /// Adam (β1, β2), shared by the four optimisers.
    pub adam_betas: (f64, f64),
    /// Adam ε.
    pub adam_eps: f64,
    /// A moving average of G's weights, used for sampling and image-quality measurements;
    /// `None` keeps none. (Configs written before this field took its two forms held a fixed
    /// decay in `generator_ema`; [`AeganConfig::from_json`] reads them.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_average: Option<GeneratorAverage>,
    /// Dx's adversarial loss.
    #[serde(default)]
    pub image_loss: ImageLoss,
    /// LeCam regularisation of Dx; `None` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lecam: Option<LeCamConfig>,
    /// Differentiable augmentation of Dx's inputs; `None` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_augment: Option<DiffAugmentConfig>,
    /// Consistency regularisation of Dx (bCR); `None` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencyConfig>,
    /// A self-supervised Dx (a decoder on its 8×8 features redraws real images); `None` for
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_supervision: Option<SelfSupervisionConfig>,
    /// Progressive growing: when set, training starts at a small resolution and doubles it
    /// on this schedule up to `image_size` (see [`crate::progressive`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progressive: Option<ProgressiveConfig>,
    /// Class conditioning: G and Dx take a label per image (see [`ConditioningConfig`]);
    /// `None` (the presets) for an unconditional model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditioning: Option<ConditioningConfig>,
    /// The number format G, E and Dx compute in: `f32` (the default) or mixed precision
    /// `bf16` for GPUs (see [`Precision`]).
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
    /// Images per training step.
    pub batch_size: usize,
    /// Seed of weight initialisation and of the trainer's random streams.
    pub seed: u64,
}

impl Default for AeganConfig {
    /// The lean 32×32 preset, [`AeganConfig::lean`]`(32)`.
    fn default() -> Self {
        Self::lean(32)
    }
}

impl AeganConfig {
    /// The lean default: small enough to train at a useful speed on a laptop CPU (well under
    /// 1 GFLOP per real image per training step at 32×32, see
    /// [`crate::AeganTrainer::flops_per_image`]), with the settings that measured best on
    /// HAM10000 (see `docs/quality.md`): nearest-upsample convolutions (no checkerboards), soft
    /// targets 0.95/0.05, an image discriminator learning at twice the rate of G and E with no
    /// output zeroing (a weaker Dx lost the game and left the samples soft), and samples drawn
    /// from a moving average of G with a half-life of 4,000 images (20,000 from 64×64 up:
    /// [`lean_half_life_images`]); below 64×64, per-pixel noise in G ([`lean_pixel_noise`]).
    /// The latent discriminator keeps the author's faster rate
    /// (1e-3): it is cheap, and when it lags the encoder's latents drift away from N(0, I) and
    /// samples from the prior degrade.
    pub fn lean(image_size: usize) -> Self {
        AeganConfig {
            image_size,
            channels: 3,
            latent_dim: 16,
            generator: GeneratorConfig {
                widths: WidthSchedule {
                    at_32: 32,
                    min: 16,
                    max: 64,
                },
                kernel: 3,
                head: vec![],
                out_kernel: 3,
                noise: lean_pixel_noise(image_size),
                skip_outputs: false,
                excitation: false,
            },
            encoder: EncoderConfig {
                widths: WidthSchedule {
                    at_32: 32,
                    min: 16,
                    max: 128,
                },
                kernel: 3,
                neck: vec![],
                hidden: vec![128],
            },
            image_discriminator: ImageDiscriminatorConfig {
                widths: WidthSchedule {
                    at_32: 16,
                    min: 8,
                    max: 128,
                },
                kernel: 3,
                spectral_norm: false,
                residual: false,
                minibatch_std: None,
            },
            latent_discriminator: LatentDiscriminatorConfig { hidden: vec![64, 64] },
            upsample: Upsample::NearestConv,
            norm: Norm::Batch,
            leaky_slope: 0.2,
            loss_weights: LossWeights {
                image_adversarial: 0.1,
                latent_adversarial: 0.1,
                image_reconstruction: 1.0,
                latent_reconstruction: 0.5,
                reconstruction_adversarial: None,
                mode_seeking: 0.0,
            },
            real_target: 0.95,
            fake_target: 0.05,
            output_zeroing: 0.0,
            learning_rates: LearningRates {
                generator: 2e-4,
                encoder: 2e-4,
                image_discriminator: 4e-4,
                latent_discriminator: 1e-3,
            },
            adam_betas: (0.5, 0.999),
            adam_eps: 1e-8,
            // A half-life in images with a ramp-up rather than a fixed decay: a fixed 0.999
            // lagged a generator that was still improving fast (FID 154.8 against G's 143.0
            // after 7.5 epochs); this average beat G after 30 minutes (34.8 against 37.4).
            generator_average: Some(GeneratorAverage::HalfLife {
                half_life_images: lean_half_life_images(image_size),
                ramp_up: 0.05,
            }),
            image_loss: ImageLoss::NonSaturating,
            lecam: None,
            diff_augment: None,
            consistency: None,
            self_supervision: None,
            progressive: None,
            conditioning: None,
            precision: Precision::F32,
            batch_size: 32,
            seed: 0,
        }
    }

    /// The layout of the AEGAN author's PyTorch networks scaled to 32×32 (about 27 GFLOP per
    /// real image per training step: GPU work). Learning rates and loss weights are the
    /// author's: G/E 2e-4, Dx/Dz 1e-3, (α_dx, α_dz, α_rx, α_rz) = (0.1, 0.1, 1, 0.5), hard
    /// targets, no output zeroing.
    pub fn author32() -> Self {
        Self::author(32)
    }

    /// The author's layout ([`AeganConfig::author32`]) with the stage count following `image_size`.
    pub fn author(image_size: usize) -> Self {
        AeganConfig {
            image_size,
            channels: 3,
            latent_dim: 16,
            generator: GeneratorConfig {
                widths: WidthSchedule {
                    at_32: 128,
                    min: 32,
                    max: 512,
                },
                kernel: 4,
                head: vec![
                    ConvLayer { width: 64, kernel: 4 },
                    ConvLayer { width: 64, kernel: 5 },
                ],
                out_kernel: 1,
                noise: false,
                skip_outputs: false,
                excitation: false,
            },
            encoder: EncoderConfig {
                widths: WidthSchedule {
                    at_32: 32,
                    min: 32,
                    max: 128,
                },
                kernel: 3,
                neck: vec![
                    ConvLayer {
                        width: 128,
                        kernel: 3,
                    },
                    ConvLayer {
                        width: 256,
                        kernel: 3,
                    },
                ],
                hidden: vec![128, 128],
            },
            image_discriminator: ImageDiscriminatorConfig {
                widths: WidthSchedule {
                    at_32: 64,
                    min: 16,
                    max: 512,
                },
                kernel: 3,
                spectral_norm: false,
                residual: false,
                minibatch_std: None,
            },
            latent_discriminator: LatentDiscriminatorConfig {
                hidden: vec![128, 64, 32, 32],
            },
            upsample: Upsample::NearestConv,
            norm: Norm::Batch,
            leaky_slope: 0.2,
            loss_weights: LossWeights {
                image_adversarial: 0.1,
                latent_adversarial: 0.1,
                image_reconstruction: 1.0,
                latent_reconstruction: 0.5,
                reconstruction_adversarial: None,
                mode_seeking: 0.0,
            },
            real_target: 1.0,
            fake_target: 0.0,
            output_zeroing: 0.0,
            learning_rates: LearningRates {
                generator: 2e-4,
                encoder: 2e-4,
                image_discriminator: 1e-3,
                latent_discriminator: 1e-3,
            },
            adam_betas: (0.5, 0.999),
            adam_eps: 1e-8,
            generator_average: None,
            image_loss: ImageLoss::NonSaturating,
            lecam: None,
            diff_augment: None,
            consistency: None,
            self_supervision: None,
            progressive: None,
            conditioning: None,
            precision: Precision::F32,
            batch_size: 64,
            seed: 0,
        }
    }

    /// The preset of the `sprites` example: [`AeganConfig::lean`]'s networks and training
    /// settings (0.75 GFLOP per image per step at 32×32) with DiffAugment and the mode-seeking
    /// term. DiffAugment (colour, translation, cutout at probability 1) is on because Dx
    /// overfits the 1,334 sprites within the hour without it. The mode-seeking term (λ 0.03,
    /// [`LossWeights::mode_seeking`]) is on because a conditional G otherwise draws one shape
    /// per class, whatever the latent. The lean networks replaced networks twice as wide with a
    /// 32-d latent (4.0 GFLOP), which made 3.4× fewer steps in the same time; 12,000 lean
    /// steps score FID 105.5 and 101.7 (two seeds) against the training sprites, where the wide
    /// networks' reference hour (3,400 steps) scored 125.1 (`docs/quality.md`, "Sprites: the
    /// lean networks as the preset").
    pub fn sprites(image_size: usize) -> Self {
        let lean = Self::lean(image_size);
        AeganConfig {
            loss_weights: LossWeights {
                mode_seeking: Self::SPRITES_MODE_SEEKING,
                ..lean.loss_weights
            },
            diff_augment: Some(DiffAugmentConfig::all()),
            ..lean
        }
    }

    /// The mode-seeking weight λ of [`AeganConfig::sprites`]: 0.1 made classes hard to tell
    /// apart, 0.03 lifted every large class's layout diversity above 0.6 at the same FID.
    pub const SPRITES_MODE_SEEKING: f64 = 0.03;

    /// Names accepted by [`AeganConfig::preset`].
    pub const PRESETS: [&'static str; 3] = ["lean", "sprites", "author"];

    /// A preset by name: `"lean"` (the default), `"sprites"` or `"author"`, at `image_size`.
    pub fn preset(name: &str, image_size: usize) -> Result<Self> {
        match name {
            "lean" | "default" => Ok(Self::lean(image_size)),
            "sprites" => Ok(Self::sprites(image_size)),
            "author" | "author32" => Ok(Self::author(image_size)),
            other => Err(AeganError::config(
                "preset",
                other,
                format!("known presets: {}", Self::PRESETS.join(", ")),
            )),
        }
    }

    /// Number of ×2 stages between 4×4 and the image size.
    pub fn stages(&self) -> usize {
        self.image_size.trailing_zeros().saturating_sub(2) as usize
    }

    /// Checks every field; the error names the first bad one and its value.
    pub fn validate(&self) -> Result<()> {
        // Each network's part first, by the rules of the network's own config.
        self.generator_spec().validate()?;
        self.encoder_spec().validate()?;
        self.image_discriminator_spec().validate()?;
        self.latent_discriminator_spec().validate()?;
        let w = &self.loss_weights;
        for (field, v) in [
            ("loss_weights.image_adversarial", w.image_adversarial),
            ("loss_weights.latent_adversarial", w.latent_adversarial),
            ("loss_weights.image_reconstruction", w.image_reconstruction),
            ("loss_weights.latent_reconstruction", w.latent_reconstruction),
            (
                "loss_weights.reconstruction_adversarial",
                w.reconstruction_adversarial_weight(),
            ),
            ("loss_weights.mode_seeking", w.mode_seeking),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(AeganError::config(field, v, "must be finite and >= 0"));
            }
        }
        if !(0.0..=1.0).contains(&self.real_target) {
            return Err(AeganError::config(
                "real_target",
                self.real_target,
                "must be in [0, 1]",
            ));
        }
        if !(0.0..=1.0).contains(&self.fake_target) || self.fake_target >= self.real_target {
            return Err(AeganError::config(
                "fake_target",
                self.fake_target,
                "must be in [0, 1] and below real_target",
            ));
        }
        if !(0.0..1.0).contains(&self.output_zeroing) {
            return Err(AeganError::config(
                "output_zeroing",
                self.output_zeroing,
                "must be a probability in [0, 1)",
            ));
        }
        let lr = &self.learning_rates;
        for (field, v) in [
            ("learning_rates.generator", lr.generator),
            ("learning_rates.encoder", lr.encoder),
            ("learning_rates.image_discriminator", lr.image_discriminator),
            ("learning_rates.latent_discriminator", lr.latent_discriminator),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return Err(AeganError::config(field, v, "must be finite and > 0"));
            }
        }
        let (b1, b2) = self.adam_betas;
        if !(0.0..1.0).contains(&b1) || !(0.0..1.0).contains(&b2) {
            return Err(AeganError::config(
                "adam_betas",
                self.adam_betas,
                "both must be in [0, 1)",
            ));
        }
        if !self.adam_eps.is_finite() || self.adam_eps <= 0.0 {
            return Err(AeganError::config(
                "adam_eps",
                self.adam_eps,
                "must be finite and > 0",
            ));
        }
        match self.generator_average {
            Some(GeneratorAverage::HalfLife {
                half_life_images,
                ramp_up,
            }) => {
                if !half_life_images.is_finite() || half_life_images <= 0.0 {
                    return Err(AeganError::config(
                        "generator_average.half_life_images",
                        half_life_images,
                        "must be finite and > 0",
                    ));
                }
                if !ramp_up.is_finite() || ramp_up < 0.0 {
                    return Err(AeganError::config(
                        "generator_average.ramp_up",
                        ramp_up,
                        "must be finite and >= 0",
                    ));
                }
            }
            Some(GeneratorAverage::FixedDecay { decay }) if !(decay > 0.0 && decay < 1.0) => {
                return Err(AeganError::config(
                    "generator_average.decay",
                    decay,
                    "must be in (0, 1) (null keeps no average)",
                ));
            }
            _ => {}
        }
        if let Some(l) = &self.lecam {
            if !l.weight.is_finite() || l.weight < 0.0 {
                return Err(AeganError::config(
                    "lecam.weight",
                    l.weight,
                    "must be finite and >= 0",
                ));
            }
            if !(0.0..1.0).contains(&l.decay) {
                return Err(AeganError::config("lecam.decay", l.decay, "must be in [0, 1)"));
            }
        }
        if let Some(d) = &self.diff_augment {
            if !(0.0..=1.0).contains(&d.probability) {
                return Err(AeganError::config(
                    "diff_augment.probability",
                    d.probability,
                    "must be in [0, 1]",
                ));
            }
            if let Some(a) = &d.adaptive {
                if !(0.0..=1.0).contains(&a.target) {
                    return Err(AeganError::config(
                        "diff_augment.adaptive.target",
                        a.target,
                        "must be in [0, 1]",
                    ));
                }
                if !a.images_to_full.is_finite() || a.images_to_full <= 0.0 {
                    return Err(AeganError::config(
                        "diff_augment.adaptive.images_to_full",
                        a.images_to_full,
                        "must be finite and > 0",
                    ));
                }
            }
        }
        if let Some(c) = &self.consistency {
            for (field, weight) in [
                ("consistency.real_weight", c.real_weight),
                ("consistency.fake_weight", c.fake_weight),
            ] {
                if !weight.is_finite() || weight < 0.0 {
                    return Err(AeganError::config(field, weight, "must be finite and >= 0"));
                }
            }
            if !(0.0..=1.0).contains(&c.transforms.probability) {
                return Err(AeganError::config(
                    "consistency.transforms.probability",
                    c.transforms.probability,
                    "must be in [0, 1]",
                ));
            }
        }
        if let Some(s) = &self.self_supervision {
            if !s.weight.is_finite() || s.weight <= 0.0 {
                return Err(AeganError::config(
                    "self_supervision.weight",
                    s.weight,
                    "must be finite and > 0 (or self_supervision null for none)",
                ));
            }
        }
        if let Some(p) = &self.progressive {
            if p.images_per_phase == 0 {
                return Err(AeganError::config(
                    "progressive.images_per_phase",
                    0,
                    "must be at least 1",
                ));
            }
            if p.images_per_fade == 0 {
                return Err(AeganError::config(
                    "progressive.images_per_fade",
                    0,
                    "must be at least 1",
                ));
            }
        }
        if let Some(c) = &self.conditioning {
            c.validate()?;
        }
        if self.batch_size < 2 {
            return Err(AeganError::config(
                "batch_size",
                self.batch_size,
                "must be at least 2 (batch statistics need two samples)",
            ));
        }
        Ok(())
    }

    /// What the image networks share: image size and channels, normalisation, leaky slope and
    /// the first resolution of progressive growing.
    pub fn image_spec(&self) -> ImageSpec {
        ImageSpec {
            image_size: self.image_size,
            channels: self.channels,
            norm: self.norm,
            leaky_slope: self.leaky_slope,
            progressive_start: self.progressive.map(|p| p.start_size),
            precision: self.precision,
        }
    }

    /// Everything G is built from ([`crate::Generator::from_spec`]).
    pub fn generator_spec(&self) -> GeneratorSpec {
        GeneratorSpec {
            image: self.image_spec(),
            latent_dim: self.latent_dim,
            upsample: self.upsample,
            layout: self.generator.clone(),
            label_embedding: self.conditioning.as_ref().map(|c| LabelEmbedding {
                classes: c.class_count(),
                dim: c.embedding_dim,
                every_stage: c.every_stage,
            }),
        }
    }

    /// Everything E is built from ([`crate::Encoder::from_spec`]).
    pub fn encoder_spec(&self) -> EncoderSpec {
        EncoderSpec {
            image: self.image_spec(),
            latent_dim: self.latent_dim,
            layout: self.encoder.clone(),
        }
    }

    /// Everything Dx is built from ([`crate::ImageDiscriminator::from_spec`]).
    pub fn image_discriminator_spec(&self) -> ImageDiscriminatorSpec {
        ImageDiscriminatorSpec {
            image: self.image_spec(),
            layout: self.image_discriminator.clone(),
            classes: self.conditioning.as_ref().map(|c| c.class_count()),
            auxiliary_classifier: self
                .conditioning
                .as_ref()
                .is_some_and(|c| c.class_loss_weight > 0.0),
            decoder: self.self_supervision.is_some(),
        }
    }

    /// Everything Dz is built from ([`crate::LatentDiscriminator::from_spec`]).
    pub fn latent_discriminator_spec(&self) -> LatentDiscriminatorSpec {
        LatentDiscriminatorSpec {
            latent_dim: self.latent_dim,
            leaky_slope: self.leaky_slope,
            layout: self.latent_discriminator.clone(),
        }
    }

    /// The class names of a conditional model (empty for an unconditional one).
    pub fn class_names(&self) -> &[String] {
        self.conditioning.as_ref().map_or(&[], |c| c.classes.as_slice())
    }

    /// Whether a moving average of G is kept.
    pub fn keeps_generator_average(&self) -> bool {
        self.generator_average.is_some()
    }

    /// Reads and validates a config from a JSON file ([`AeganConfig::from_json`]).
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| AeganError::io(path, e))?;
        let config = Self::from_json(&text).map_err(|source| AeganError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a config from JSON, including those written by earlier versions: a fixed decay
    /// of G's average was once its own field, `"generator_ema": d` (0 for none), and is read
    /// as `"generator_average": {"decay": d}`. Unknown fields are an error.
    pub fn from_json(text: &str) -> std::result::Result<Self, serde_json::Error> {
        let mut value: serde_json::Value = serde_json::from_str(text)?;
        if let Some(object) = value.as_object_mut() {
            if let Some(legacy) = object.remove("generator_ema") {
                use serde::de::Error;
                let decay = legacy
                    .as_f64()
                    .ok_or_else(|| serde_json::Error::custom("generator_ema must be a number"))?;
                if decay != 0.0 {
                    if object.contains_key("generator_average") {
                        return Err(serde_json::Error::custom(
                            "set either generator_ema or generator_average, not both",
                        ));
                    }
                    object.insert("generator_average".into(), serde_json::json!({ "decay": decay }));
                }
            }
        }
        serde_json::from_value(value)
    }

    /// The config as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
