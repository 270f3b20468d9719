//! The networks' own configs: each of G, E, Dx and Dz is built from a spec that holds all it
//! needs and is checked where the network is built, so a network can be made without an
//! [`AeganConfig`](super::AeganConfig). The `*Config` layouts are the per-network parts of
//! the config's JSON (`generator`, `encoder`, ...); the `*Spec`s add the settings the networks
//! share (image size, channels, latent size, normalisation, leaky slope), which the JSON keeps
//! once at its top level. [`AeganConfig`](super::AeganConfig) composes them:
//! `config.generator_spec()` and so on.

use serde::{Deserialize, Serialize};

use crate::error::{AeganError, Result};

/// How the generator doubles its resolution at each stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Upsample {
    /// Nearest-neighbour ×2 followed by a convolution. Free of the checkerboard artifacts that
    /// transposed convolutions leave (Odena et al. 2016); the default.
    NearestConv,
    /// A 4×4, stride-2 transposed convolution (DCGAN style). Kept for comparison.
    TransposedConv,
    /// Bilinear ×2 followed by a convolution: the upsampled features hold nothing at the
    /// Nyquist frequency. Tried against the faint pixel grid of 64×64 runs, it did not lower
    /// it (see `docs/quality.md`) and costs 2.25× the multiply-adds of `NearestConv` in G's
    /// stages, whose fused kernel skips the repeated pixels. Kept for comparison.
    BilinearConv,
    /// A convolution at the small resolution to four times the channels, then a pixel shuffle
    /// (sub-pixel convolution, Shi et al. 2016): every output phase has its own k×k kernel,
    /// where `NearestConv`'s phases share sums of one kernel's taps. Its nominal multiply-adds
    /// are `NearestConv`'s, but at k = 3 it computes 2.25× what `NearestConv`'s fused kernel
    /// does (36 instead of 16 per small pixel and channel pair).
    SubPixelConv,
    /// `NearestConv` plus a sub-pixel correction: a second convolution of the small image to
    /// four times the channels, pixel-shuffled and added before the normalisation. The
    /// correction starts at zero, so G starts as `NearestConv` and each output phase can then
    /// depart from it; a plain `SubPixelConv` starts with independent random phases, a
    /// checkerboard.
    NearestPlusSubPixel,
}

/// The number format G, E and Dx compute in. Weights, their gradients, Adam's moments,
/// batch-norm statistics and checkpoints stay f32 whatever it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// f32 throughout; the default, and the only format aegan's own CPU kernels take.
    #[default]
    F32,
    /// Mixed precision: activations and matrix products in bfloat16 (weights are cast to it
    /// where they are used, so gradients reach the f32 weights), batch-norm statistics, losses
    /// and the networks' outputs in f32. For CUDA, where bf16 matrix products run on tensor
    /// cores; on the CPU it runs candle's generic operations and is slower than f32. bf16 has
    /// f32's range, so no loss scaling is needed.
    Bf16,
}

impl Precision {
    /// The dtype activations are computed in.
    pub fn dtype(self) -> candle_core::DType {
        match self {
            Precision::F32 => candle_core::DType::F32,
            Precision::Bf16 => candle_core::DType::BF16,
        }
    }

    /// Whether this is the default, f32 (the JSON leaves the default out).
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }
}

/// The normalisation layer after each hidden convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// Batch normalisation (batch statistics in training, running statistics in evaluation).
    Batch,
    /// No normalisation.
    None,
}

/// Channel count as a function of resolution: `at_32 · 32 / resolution`, clamped to
/// `[min, max]`. Halving the resolution doubles the width, as in DCGAN-like networks, so one
/// schedule describes a network for every image size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidthSchedule {
    /// Channels at 32×32 resolution.
    pub at_32: usize,
    /// Fewest channels at any resolution.
    pub min: usize,
    /// Most channels at any resolution.
    pub max: usize,
}

impl WidthSchedule {
    /// Channels used at `resolution` (side length in pixels).
    pub fn at(&self, resolution: usize) -> usize {
        (self.at_32.saturating_mul(32) / resolution.max(1)).clamp(self.min, self.max)
    }
}

/// A stride-1 convolution of the given width and kernel size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvLayer {
    /// Output channels.
    pub width: usize,
    /// Kernel side; even kernels are padded 'same' as PyTorch does (one more on the bottom/right).
    pub kernel: usize,
}

/// Generator G: z → x. A linear stem to 4×4, one ×2 stage per doubling up to the image size,
/// optional full-resolution head convolutions, then an output convolution and tanh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorConfig {
    /// Channels per resolution (the 4×4 stem uses `widths.at(4)`).
    pub widths: WidthSchedule,
    /// Kernel of the convolution in each upsampling stage (ignored for transposed convs, which are 4×4).
    pub kernel: usize,
    /// Extra stride-1 convolutions (+norm+LReLU) at full resolution before the output conv.
    pub head: Vec<ConvLayer>,
    /// Kernel of the final convolution to image channels.
    pub out_kernel: usize,
    /// Per-pixel noise after every stage and head block, scaled by a learned weight per
    /// channel that starts at zero (StyleGAN's noise inputs): a source of pixel-level texture.
    /// When sampling, the noise is seeded by a hash of each latent, so G is a function of z;
    /// every point of an interpolation between latents draws its own noise (the fine texture
    /// changes from frame to frame while the lesion morphs smoothly).
    #[serde(default)]
    pub noise: bool,
    /// Skip outputs (StyleGAN2's "skip G", Karras et al. 2020): every stage, from 4×4 up, has
    /// its own convolution to image channels (`to_rgb.{r}`, and `out` at full size), and the
    /// image is `tanh` of the sum of these outputs, each upsampled (bilinear ×2 per stage) to
    /// the full size. Low resolutions draw the layout and each stage adds its detail, with a
    /// short gradient path from the image to every stage.
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_outputs: bool,
    /// Skip-layer excitation (FastGAN, Liu et al. 2021): the features of every stage of side
    /// r ≥ 4 gate the channels of the stage of side 16·r (4→64, 8→128, 16→256): pooled to
    /// 4×4, a linear layer (a 4×4 valid convolution), leaky ReLU, a linear layer to the large
    /// stage's channels and a sigmoid (`excitation.{16r}.fc.0`, `.out`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub excitation: bool,
}

/// Whether a flag is off (so that a config's JSON leaves it out, as older configs had it).
fn is_false(flag: &bool) -> bool {
    !*flag
}

/// Encoder E: x → z. Stride-2 convolutions down to 4×4, optional stride-1 "neck" convolutions
/// at 4×4, then a fully connected head to the latent vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    /// Channels per resolution (the first conv outputs `widths.at(size / 2)`).
    pub widths: WidthSchedule,
    /// Kernel of every convolution (odd).
    pub kernel: usize,
    /// Stride-1 convolutions at 4×4 after the last downsampling.
    pub neck: Vec<ConvLayer>,
    /// Hidden fully connected widths between the flattened features and z.
    pub hidden: Vec<usize>,
}

/// Image discriminator Dx: x → logit. A stride-1 convolution at full resolution, stride-2
/// convolutions down to 4×4, then a linear layer to one logit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageDiscriminatorConfig {
    /// Channels per resolution.
    pub widths: WidthSchedule,
    /// Kernel of every convolution (odd).
    pub kernel: usize,
    /// Divide every weight of Dx (convolutions and the output layer) by an estimate of its
    /// largest singular value, advanced by one power iteration per training step (spectral
    /// normalisation, Miyato et al. 2018). Off in the presets.
    #[serde(default)]
    pub spectral_norm: bool,
    /// Residual downsampling blocks (StyleGAN2's "resnet D"): each stride-2 block adds a skip
    /// path, the input averaged 2×2 and convolved 1×1 to the block's width
    /// (`down.{i}.skip`), and the sum is scaled by 1/√2.
    #[serde(default, skip_serializing_if = "is_false")]
    pub residual: bool,
    /// Minibatch standard deviation (ProGAN, Karras et al. 2018) over groups of this many
    /// images: the standard deviation of each 4×4 feature across the group, averaged into one
    /// number per group, joins the last features as one more channel, so that Dx sees how
    /// varied a batch is and a G that collapses gives itself away. `None`: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minibatch_std: Option<usize>,
}

/// Latent discriminator Dz: z → logit. A multilayer perceptron.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatentDiscriminatorConfig {
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
}

/// What the image networks (G, E, Dx) share.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ImageSpec {
    /// Side of the images in pixels: a power of two from 16 to 256.
    pub image_size: usize,
    /// Image channels, 1 to 4.
    pub channels: usize,
    /// Normalisation after each hidden convolution.
    pub norm: Norm,
    /// Slope of the leaky ReLUs, in [0, 1).
    pub leaky_slope: f64,
    /// With progressive growing, the first resolution (2 or 4): the network then also holds
    /// the `to_rgb`/`from_rgb` layers of every resolution below the image size.
    pub progressive_start: Option<usize>,
    /// The number format of activations.
    pub precision: Precision,
}

impl ImageSpec {
    /// Checks every field; the error names the first bad one (as in the config's JSON).
    pub fn validate(&self) -> Result<()> {
        let s = self.image_size;
        if !s.is_power_of_two() || !(16..=256).contains(&s) {
            return Err(AeganError::config(
                "image_size",
                s,
                "must be a power of two from 16 to 256",
            ));
        }
        if !(1..=4).contains(&self.channels) {
            return Err(AeganError::config("channels", self.channels, "must be 1 to 4"));
        }
        check_slope(self.leaky_slope)?;
        if let Some(start) = self.progressive_start {
            if start != 2 && start != 4 {
                return Err(AeganError::config(
                    "progressive.start_size",
                    start,
                    "must be 2 or 4",
                ));
            }
        }
        Ok(())
    }

    /// Number of ×2 stages between 4×4 and the image size.
    pub fn stages(&self) -> usize {
        self.image_size.trailing_zeros().saturating_sub(2) as usize
    }
}

/// Everything [`crate::Generator`] is built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorSpec {
    /// The images G makes.
    pub image: ImageSpec,
    /// Size of z.
    pub latent_dim: usize,
    /// How each stage doubles the resolution.
    pub upsample: Upsample,
    /// Widths and kernels.
    pub layout: GeneratorConfig,
    /// The label embedding joined to z in a class-conditional G; `None` for an unconditional one.
    pub label_embedding: Option<LabelEmbedding>,
}

/// A class-conditional G's label embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelEmbedding {
    /// Number of classes (at least 2).
    pub classes: usize,
    /// Size of each class's embedding (at least 1).
    pub dim: usize,
    /// Whether the embedding also shifts every upsampling stage's features
    /// ([`crate::config::ConditioningConfig::every_stage`]).
    #[serde(default)]
    pub every_stage: bool,
}

impl GeneratorSpec {
    /// Checks every field; the error names the first bad one (as in the config's JSON).
    pub fn validate(&self) -> Result<()> {
        self.image.validate()?;
        check_latent_dim(self.latent_dim)?;
        check_widths("generator.widths", &self.layout.widths)?;
        check_kernel("generator.kernel", self.layout.kernel, false)?;
        check_kernel("generator.out_kernel", self.layout.out_kernel, false)?;
        for layer in &self.layout.head {
            check_layer("generator.head", layer, false)?;
        }
        if let Some(e) = self.label_embedding {
            check_classes(e.classes)?;
            if !(1..=MAX_WIDTH).contains(&e.dim) {
                return Err(AeganError::config(
                    "conditioning.embedding_dim",
                    e.dim,
                    format!("must be from 1 to {MAX_WIDTH}"),
                ));
            }
        }
        Ok(())
    }
}

/// Everything [`crate::Encoder`] is built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderSpec {
    /// The images E reads.
    pub image: ImageSpec,
    /// Size of z.
    pub latent_dim: usize,
    /// Widths, kernels and the fully connected head.
    pub layout: EncoderConfig,
}

impl EncoderSpec {
    /// Checks every field; the error names the first bad one (as in the config's JSON).
    pub fn validate(&self) -> Result<()> {
        self.image.validate()?;
        check_latent_dim(self.latent_dim)?;
        check_widths("encoder.widths", &self.layout.widths)?;
        check_kernel("encoder.kernel", self.layout.kernel, true)?;
        for layer in &self.layout.neck {
            check_layer("encoder.neck", layer, false)?;
        }
        check_hidden("encoder.hidden", &self.layout.hidden)
    }
}

/// Everything [`crate::ImageDiscriminator`] is built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageDiscriminatorSpec {
    /// The images Dx reads.
    pub image: ImageSpec,
    /// Widths, kernel and spectral normalisation.
    pub layout: ImageDiscriminatorConfig,
    /// Number of classes of a projection discriminator; `None` for an unconditional Dx.
    pub classes: Option<usize>,
    /// Whether a conditional Dx also has an auxiliary classifier (one logit per class).
    #[serde(default)]
    pub auxiliary_classifier: bool,
    /// Whether Dx has the decoder of a self-supervised Dx
    /// ([`crate::config::SelfSupervisionConfig`]).
    #[serde(default)]
    pub decoder: bool,
}

impl ImageDiscriminatorSpec {
    /// Checks every field; the error names the first bad one (as in the config's JSON).
    pub fn validate(&self) -> Result<()> {
        self.image.validate()?;
        check_widths("image_discriminator.widths", &self.layout.widths)?;
        check_kernel("image_discriminator.kernel", self.layout.kernel, true)?;
        if let Some(group) = self.layout.minibatch_std.filter(|&g| g < 2) {
            return Err(AeganError::config(
                "image_discriminator.minibatch_std",
                group,
                "must be a group of at least 2 images (or null for none)",
            ));
        }
        match self.classes {
            Some(classes) => check_classes(classes),
            None if self.auxiliary_classifier => Err(AeganError::config(
                "conditioning.class_loss_weight",
                "> 0",
                "an auxiliary classifier needs a conditional model (conditioning.classes)",
            )),
            None => Ok(()),
        }
    }
}

/// Everything [`crate::LatentDiscriminator`] is built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatentDiscriminatorSpec {
    /// Size of z.
    pub latent_dim: usize,
    /// Slope of the leaky ReLUs, in [0, 1).
    pub leaky_slope: f64,
    /// Hidden widths.
    pub layout: LatentDiscriminatorConfig,
}

impl LatentDiscriminatorSpec {
    /// Checks every field; the error names the first bad one (as in the config's JSON).
    pub fn validate(&self) -> Result<()> {
        check_latent_dim(self.latent_dim)?;
        check_slope(self.leaky_slope)?;
        check_hidden("latent_discriminator.hidden", &self.layout.hidden)
    }
}

/// The most classes a conditional model may have.
pub const MAX_CLASSES: usize = 1 << 16;

fn check_classes(classes: usize) -> Result<()> {
    if !(2..=MAX_CLASSES).contains(&classes) {
        return Err(AeganError::config(
            "conditioning.classes",
            classes,
            format!("must be from 2 to {MAX_CLASSES} classes"),
        ));
    }
    Ok(())
}

/// The most channels (or latent or embedding dimensions) any layer may have: 8 times the
/// widest layer of the presets' networks (512), and far below what makes a config's weights too
/// large to allocate (a 3×3 convolution of this width each way holds 151 M weights). A typo such
/// as an extra zero is an error naming the field, not a machine out of memory.
pub const MAX_WIDTH: usize = 4096;

fn check_latent_dim(latent_dim: usize) -> Result<()> {
    if !(1..=MAX_WIDTH).contains(&latent_dim) {
        return Err(AeganError::config(
            "latent_dim",
            latent_dim,
            format!("must be from 1 to {MAX_WIDTH}"),
        ));
    }
    Ok(())
}

fn check_slope(slope: f64) -> Result<()> {
    if !(0.0..1.0).contains(&slope) {
        return Err(AeganError::config("leaky_slope", slope, "must be in [0, 1)"));
    }
    Ok(())
}

fn check_hidden(field: &'static str, hidden: &[usize]) -> Result<()> {
    if hidden.iter().any(|w| !(1..=MAX_WIDTH).contains(w)) {
        return Err(AeganError::config(
            field,
            hidden,
            format!("widths must be from 1 to {MAX_WIDTH}"),
        ));
    }
    Ok(())
}

fn check_widths(field: &'static str, w: &WidthSchedule) -> Result<()> {
    if w.at_32 == 0 || w.min == 0 || w.min > w.max || w.max > MAX_WIDTH {
        return Err(AeganError::config(
            field,
            w,
            format!("at_32 and min must be at least 1, min <= max and max at most {MAX_WIDTH}"),
        ));
    }
    Ok(())
}

fn check_kernel(field: &'static str, kernel: usize, must_be_odd: bool) -> Result<()> {
    if kernel == 0 || kernel > 9 || (must_be_odd && kernel.is_multiple_of(2)) {
        let rule = if must_be_odd {
            "must be odd, from 1 to 9"
        } else {
            "must be from 1 to 9"
        };
        return Err(AeganError::config(field, kernel, rule));
    }
    Ok(())
}

fn check_layer(field: &'static str, layer: &ConvLayer, must_be_odd: bool) -> Result<()> {
    if !(1..=MAX_WIDTH).contains(&layer.width) {
        return Err(AeganError::config(
            field,
            layer,
            format!("width must be from 1 to {MAX_WIDTH}"),
        ));
    }
    check_kernel(field, layer.kernel, must_be_odd)
}
