//! The two discriminators: Dx on images, Dz on latents. Both return raw logits.

use candle_core::{DType, Module, ModuleT, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};

use super::feature_decoder::{FeatureDecoder, FEATURE_SIDE};
use super::growing::GrowingInput;
use super::layers::{BlockChain, Conv, DownBlock, Mlp};
use super::spectral::SpectralNorm;
use crate::config::{AeganConfig, ImageDiscriminatorSpec, LatentDiscriminatorSpec};
use crate::progressive::Growth;

/// Image discriminator Dx: maps images `(batch, channels, size, size)` to logits `(batch, 1)`.
///
/// Layout: `from_image` (stride-1 conv at full resolution, no normalisation), `down.{i}`
/// (stride-2 conv + norm + leaky ReLU to 4×4), `out` (linear to one logit).
///
/// **Progressive growing** (when the config has [`AeganConfig::progressive`]): Dx also has
/// `from_rgb.{r}` (1×1 conv + leaky ReLU) for every resolution r below the image size, used in
/// place of `from_image` at resolution r, and fades new resolutions in as the encoder does
/// (see [`crate::Encoder`]).
///
/// **Spectral normalisation** (when [`crate::config::ImageDiscriminatorConfig::spectral_norm`]
/// is set): the weight of every convolution and of `out` is divided by its estimated largest
/// singular value; each such layer then also has a saved buffer `<layer>.spectral_u`,
/// advanced by [`ImageDiscriminator::power_iteration`] once per training step. The class
/// projection and the auxiliary classifier head are not normalised, and with batch norm
/// between the layers the network as a whole has no Lipschitz bound.
///
/// **Residual blocks** (when [`crate::config::ImageDiscriminatorConfig::residual`] is set):
/// every `down.{i}` block also has `down.{i}.skip`, a 1×1 convolution of its input averaged
/// 2×2, added to the block's output and scaled by 1/√2.
///
/// **Minibatch standard deviation** (when
/// [`crate::config::ImageDiscriminatorConfig::minibatch_std`] is set): the 4×4 features gain
/// one channel, the standard deviation of the features across each group of images, before
/// `out` reads them (so `out`, the projection and the classifier head take 16 more inputs).
///
/// **Self-supervision** (when the config has [`AeganConfig::self_supervision`]): Dx also has
/// `decoder.*`, a small decoder from its 8×8 features (the input of the block that takes them
/// to 4×4) to a 32×32 image ([`ImageDiscriminator::decode`]); it does not change the logits.
///
/// **Class conditioning** (when the config has [`AeganConfig::conditioning`]): a projection
/// discriminator (Miyato & Koyama 2018). With φ(x) the flattened features that `out` reads,
/// Dx also has `class_projection` (a vector w(y) per class, as long as φ) and returns
/// `out(φ(x)) + λ·⟨w(y), φ(x)⟩`, λ the condition's strength
/// ([`ImageDiscriminator::set_condition_strength`]). Call
/// [`ImageDiscriminator::forward_labelled_t`] with a label per image. With an auxiliary
/// classifier ([`crate::config::ConditioningConfig::class_loss_weight`]) Dx also has
/// `class_head`, a linear layer from φ(x) to one logit per class
/// ([`ImageDiscriminator::forward_with_classes_t`]).
#[derive(Debug, Clone)]
pub struct ImageDiscriminator {
    input: GrowingInput,
    from_image: Conv,
    down: Vec<DownBlock>,
    /// Group size of the minibatch standard deviation, when Dx has one.
    minibatch_std: Option<usize>,
    out: Linear,
    class_projection: Option<Embedding>,
    class_head: Option<Linear>,
    decoder: Option<FeatureDecoder>,
    condition_strength: f64,
    out_spectral: Option<SpectralNorm>,
    slope: f64,
    /// The dtype activations are computed in ([`crate::config::Precision`]).
    compute: DType,
    macs: u64,
}

impl ImageDiscriminator {
    /// Builds Dx for `config` with its tensors from `vb` ([`ImageDiscriminator::from_spec`] of
    /// [`AeganConfig::image_discriminator_spec`]).
    pub fn new(config: &AeganConfig, vb: VarBuilder) -> Result<Self> {
        Self::from_spec(&config.image_discriminator_spec(), vb)
    }

    /// Builds Dx from its own config, checked first, with its tensors from `vb`.
    pub fn from_spec(spec: &ImageDiscriminatorSpec, vb: VarBuilder) -> Result<Self> {
        super::validated(spec.validate())?;
        let (d, image) = (&spec.layout, &spec.image);
        let slope = image.leaky_slope;
        let side = image.image_size;
        let width = d.widths.at(side);
        let mut input = GrowingInput::new(image, &d.widths, &vb)?;
        let mut from_image = Conv::new(vb.pp("from_image"), image.channels, width, d.kernel, 1, true)?;
        let chain =
            BlockChain::downsampling(&vb, "down", (width, side), &d.widths, d.kernel, image.norm, slope)?;
        let (last_width, last_side) = (chain.width, chain.side);
        let mut macs = from_image.macs(side);
        let mut down = Vec::with_capacity(chain.blocks.len());
        let (mut c_in, mut block_side) = (width, side);
        for (i, block) in chain.blocks.into_iter().enumerate() {
            let c_out = d.widths.at(block_side / 2);
            let block = DownBlock::new(block, &vb.pp(format!("down.{i}")), c_in, c_out, d.residual)?;
            macs += block.macs(block_side / 2);
            down.push(block);
            (c_in, block_side) = (c_out, block_side / 2);
        }
        // The minibatch standard deviation joins the last features as one more channel.
        let channels = last_width + usize::from(d.minibatch_std.is_some());
        let features = channels * last_side * last_side;
        let out = candle_nn::linear(features, 1, vb.pp("out"))?;
        macs += features as u64;
        // Projection vectors start small (as a linear layer's weights would), so that the
        // label term does not dominate the first updates.
        let class_projection = match spec.classes {
            Some(classes) => {
                let bound = 1.0 / (features as f64).sqrt();
                let init = candle_nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                };
                let weights =
                    vb.pp("class_projection")
                        .get_with_hints((classes, features), "weight", init)?;
                macs += features as u64;
                Some(Embedding::new(weights, features))
            }
            None => None,
        };
        let class_head = match (spec.classes, spec.auxiliary_classifier) {
            (Some(classes), true) => {
                macs += (features * classes) as u64;
                Some(candle_nn::linear(features, classes, vb.pp("class_head"))?)
            }
            _ => None,
        };
        // The decoder is not part of a logit's cost: it runs on the real images of the
        // discriminator step only, so it is left out of `macs`.
        let decoder = if spec.decoder {
            Some(FeatureDecoder::new(
                &vb.pp("decoder"),
                d.widths.at(FEATURE_SIDE),
                &d.widths,
                (image.channels, d.kernel),
                image.norm,
                slope,
            )?)
        } else {
            None
        };
        let mut out_spectral = None;
        if d.spectral_norm {
            input = input.with_spectral_norm(&vb)?;
            from_image = from_image.with_spectral_norm(&vb.pp("from_image"))?;
            down = (down.into_iter().enumerate())
                .map(|(i, block)| block.with_spectral_norm(&vb.pp(format!("down.{i}"))))
                .collect::<Result<_>>()?;
            out_spectral = Some(SpectralNorm::new(&vb.pp("out"), 1)?);
        }
        Ok(ImageDiscriminator {
            input,
            from_image,
            down,
            minibatch_std: d.minibatch_std,
            out,
            class_projection,
            class_head,
            decoder,
            condition_strength: 1.0,
            out_spectral,
            slope,
            compute: image.precision.dtype(),
            macs,
        })
    }

    /// Number of classes of a projection discriminator (`None` for an unconditional one).
    pub fn classes(&self) -> Option<usize> {
        self.class_projection
            .as_ref()
            .and_then(|e| e.embeddings().dim(0).ok())
    }

    /// Sets the strength λ ∈ [0, 1] of the projection term (a transition from unconditional
    /// to conditional training raises it from 0 to 1).
    pub fn set_condition_strength(&mut self, strength: f64) {
        self.condition_strength = strength.clamp(0.0, 1.0);
    }

    /// Logits `(batch, 1)`, f32: high means "real". A class-conditional Dx needs labels: use
    /// [`ImageDiscriminator::forward_labelled_t`].
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_labelled_t(x, None, train)
    }

    /// [`ImageDiscriminator::forward_t`] with a class label per image (`labels`: `(batch,)`,
    /// u32) for a projection discriminator. Labels for an unconditional Dx, or none for a
    /// conditional one, are an error.
    pub fn forward_labelled_t(&self, x: &Tensor, labels: Option<&Tensor>, train: bool) -> Result<Tensor> {
        Ok(self.forward_with_classes_t(x, labels, train)?.0)
    }

    /// Whether Dx has an auxiliary classifier.
    pub fn has_classifier(&self) -> bool {
        self.class_head.is_some()
    }

    /// [`ImageDiscriminator::forward_labelled_t`] and, for a Dx with an auxiliary classifier,
    /// its class logits `(batch, classes)`, f32, from the same features (`None` without one).
    pub fn forward_with_classes_t(
        &self,
        x: &Tensor,
        labels: Option<&Tensor>,
        train: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let out = self.forward_all_t(x, labels, train)?;
        Ok((out.logits, out.class_logits))
    }

    /// Whether Dx has the decoder of a self-supervised Dx.
    pub fn has_decoder(&self) -> bool {
        self.decoder.is_some()
    }

    /// Images `(B, channels, 32, 32)` in [−1, 1], f32, drawn by the decoder of a
    /// self-supervised Dx from 8×8 features `(B, C, 8, 8)` (as
    /// [`ImageDiscriminator::forward_all_t`] returns them). An error for a Dx without one.
    pub fn decode(&self, features: &Tensor, train: bool) -> Result<Tensor> {
        match &self.decoder {
            Some(decoder) => decoder.forward_t(features, train),
            None => candle_core::bail!("this image discriminator has no decoder (self_supervision is off)"),
        }
    }

    /// [`ImageDiscriminator::forward_with_classes_t`] and, for a Dx with a decoder, the 8×8
    /// features on the way to the logits (`None` without a decoder, or for images smaller
    /// than 8×8 while growing).
    pub fn forward_all_t(
        &self,
        x: &Tensor,
        labels: Option<&Tensor>,
        train: bool,
    ) -> Result<DiscriminatorOutput> {
        let from_image = |x: &Tensor| self.from_image.forward_leaky(x, self.slope);
        let keep = self.decoder.as_ref().map(|_| FEATURE_SIDE);
        let (last, kept) =
            self.input
                .forward_keeping_t(&x.to_dtype(self.compute)?, &self.down, from_image, keep, train)?;
        let last = match self.minibatch_std {
            Some(group) => with_minibatch_std(&last, group)?,
            None => last,
        };
        let features = last
            .flatten_from(1)?
            // The last layer and the projection in f32: logits feed the loss directly.
            .to_dtype(DType::F32)?;
        let logits = match &self.out_spectral {
            None => self.out.forward(&features)?,
            Some(sn) => {
                let weight = sn.normalise(self.out.weight())?;
                let logits = features.matmul(&weight.t()?)?;
                match self.out.bias() {
                    Some(b) => logits.broadcast_add(b)?,
                    None => logits,
                }
            }
        };
        let class_logits = match &self.class_head {
            Some(head) => Some(head.forward(&features)?),
            None => None,
        };
        let batch = features.dim(0)?;
        let logits = match super::with_labels(
            &self.class_projection,
            labels,
            batch,
            "image discriminator",
            "image",
        )? {
            Some((projection, labels)) => {
                let w = projection.forward(labels)?;
                let projected = (w * &features)?.sum_keepdim(1)?;
                (logits + (projected * self.condition_strength)?)?
            }
            None => logits,
        };
        Ok(DiscriminatorOutput {
            logits,
            class_logits,
            features: kept,
        })
    }

    /// Advances every spectral norm's estimate by one power-iteration step (the trainer does
    /// this once per step, before the discriminator phase); nothing without spectral norm.
    pub fn power_iteration(&self) -> Result<()> {
        self.input.power_iteration()?;
        self.from_image.power_iteration()?;
        for block in &self.down {
            block.power_iteration()?;
        }
        match &self.out_spectral {
            Some(sn) => sn.power_iteration(self.out.weight()),
            None => Ok(()),
        }
    }

    /// Makes later forward passes take images at `growth` (progressive networks only; `None`
    /// returns to the full image size). Fails for a resolution the network cannot take.
    pub fn set_growth(&mut self, growth: Option<Growth>) -> Result<()> {
        self.input.set_growth(growth)
    }

    /// The growth state set by [`ImageDiscriminator::set_growth`].
    pub fn growth(&self) -> Option<Growth> {
        self.input.growth()
    }

    /// Side of the images the next forward pass takes.
    pub fn input_size(&self) -> usize {
        self.input.input_size()
    }

    /// Multiply-accumulate operations of one forward pass, per image.
    pub fn macs_per_image(&self) -> u64 {
        self.macs
    }
}

/// What one pass of Dx gives ([`ImageDiscriminator::forward_all_t`]).
#[derive(Debug, Clone)]
pub struct DiscriminatorOutput {
    /// Logits `(batch, 1)`, f32: high means "real".
    pub logits: Tensor,
    /// The auxiliary classifier's logits `(batch, classes)`, f32, for a Dx with one.
    pub class_logits: Option<Tensor>,
    /// The 8×8 features `(batch, C, 8, 8)` for a Dx with a decoder (self-supervision).
    pub features: Option<Tensor>,
}

/// `features` `(B, C, H, W)` with one more channel: the minibatch standard deviation. The
/// batch is split into groups of `group` images (image i in group i mod B/group, as
/// StyleGAN2 takes them); within a group, the standard deviation of every feature across its
/// images (`sqrt(variance + 1e-8)`, the variance over the group), averaged over channels and
/// positions, is that group's number, given to each of its images as a constant channel. A
/// batch that `group` does not divide (or one smaller than `group`) is one group.
pub(crate) fn with_minibatch_std(features: &Tensor, group: usize) -> Result<Tensor> {
    let (b, c, h, w) = features.dims4()?;
    let group = if b >= group && b % group == 0 { group } else { b };
    let groups = b / group;
    let x = features.to_dtype(DType::F32)?.reshape((group, groups, c, h, w))?;
    let centred = x.broadcast_sub(&x.mean_keepdim(0)?)?;
    let std = (centred.sqr()?.mean(0)? + 1e-8)?.sqrt()?;
    let per_group = std.flatten_from(1)?.mean_keepdim(1)?;
    let channel = per_group
        .reshape((1, groups, 1, 1, 1))?
        .broadcast_as((group, groups, 1, h, w))?
        .reshape((b, 1, h, w))?
        .to_dtype(features.dtype())?;
    Tensor::cat(&[features, &channel], 1)
}

impl ModuleT for ImageDiscriminator {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        ImageDiscriminator::forward_t(self, x, train)
    }
}

/// Latent discriminator Dz: maps latents `(batch, latent_dim)` to logits `(batch, 1)`.
///
/// Layout: `fc.{i}` (linear + leaky ReLU), `out` (linear to one logit).
#[derive(Debug, Clone)]
pub struct LatentDiscriminator {
    mlp: Mlp,
}

impl LatentDiscriminator {
    /// Builds Dz for `config` with its tensors from `vb` ([`LatentDiscriminator::from_spec`]
    /// of [`AeganConfig::latent_discriminator_spec`]).
    pub fn new(config: &AeganConfig, vb: VarBuilder) -> Result<Self> {
        Self::from_spec(&config.latent_discriminator_spec(), vb)
    }

    /// Builds Dz from its own config, checked first, with its tensors from `vb`.
    pub fn from_spec(spec: &LatentDiscriminatorSpec, vb: VarBuilder) -> Result<Self> {
        super::validated(spec.validate())?;
        let mlp = Mlp::new(vb, spec.latent_dim, &spec.layout.hidden, 1, spec.leaky_slope)?;
        Ok(LatentDiscriminator { mlp })
    }

    /// Logits `(batch, 1)`: high means "drawn from the prior N(0, I)". Dz has no
    /// train-dependent layers; `train` is accepted for a uniform interface.
    pub fn forward_t(&self, z: &Tensor, _train: bool) -> Result<Tensor> {
        self.mlp.forward(z)
    }

    /// Multiply-accumulate operations of one forward pass, per latent.
    pub fn macs_per_image(&self) -> u64 {
        self.mlp.macs()
    }
}

impl ModuleT for LatentDiscriminator {
    fn forward_t(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        LatentDiscriminator::forward_t(self, z, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn the_minibatch_standard_deviation_of_a_known_batch() {
        // Four images of two 1×1 channels; groups of 2: image i in group i mod 2, so group 0
        // is images 0 and 2, group 1 images 1 and 3.
        let batch = Tensor::new(&[[1f32, 3.0], [0.0, 0.0], [3.0, 7.0], [0.0, 4.0]], &Device::Cpu)
            .unwrap()
            .reshape((4, 2, 1, 1))
            .unwrap();
        let out = with_minibatch_std(&batch, 2).unwrap();
        assert_eq!(out.dims(), &[4, 3, 1, 1]);
        let values = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // Group 0: channel standard deviations 1 (1, 3) and 2 (3, 7): 1.5. Group 1: 1e-4
        // (0, 0: the ε alone) and 2 (0, 4): 1.00005.
        let std: Vec<f32> = values.chunks(3).map(|image| image[2]).collect();
        let expected = [1.5, 1.00005, 1.5, 1.00005];
        for (got, want) in std.iter().zip(expected) {
            assert!((got - want).abs() < 1e-5, "{std:?}");
        }
        assert_eq!(&values[..2], &[1.0, 3.0], "the features pass unchanged");
        // A batch that the group does not divide is one group: three images, one number.
        let three = with_minibatch_std(&batch.narrow(0, 0, 3).unwrap(), 2).unwrap();
        let extra: Vec<f32> = three
            .narrow(1, 2, 1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(extra.iter().all(|v| (v - extra[0]).abs() < 1e-7), "{extra:?}");
    }
}
