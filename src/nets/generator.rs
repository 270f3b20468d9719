//! Generator G: z → x.

use candle_core::{DType, Module, ModuleT, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};

use super::excitation::{excited_side, Excitation};
use super::layers::{BlockChain, Conv, ConvBlock, ConvTranspose2x, NormLayer};
use super::noise::{latent_seeds, PixelNoise};
use crate::config::{AeganConfig, GeneratorSpec, Upsample};
use crate::ops::{pixel_shuffle_2x, upsample_bilinear_2x, upsample_nearest_2x};
use crate::progressive::{downsample_area, fade, Growth};
use crate::rng::TrainRng;

/// One ×2 stage: nearest or bilinear upsample + conv, a transposed conv, or a conv to four
/// times the channels + pixel shuffle; then norm and leaky ReLU.
#[derive(Debug, Clone)]
enum UpStage {
    NearestConv(ConvBlock),
    BilinearConv(ConvBlock),
    Transposed { conv: ConvTranspose2x, norm: NormLayer },
    SubPixel { conv: Conv, norm: NormLayer },
    NearestPlusSubPixel { block: ConvBlock, phases: Conv },
}

/// Generator G: maps latent vectors `(batch, latent_dim)` to images `(batch, channels, size,
/// size)` in [−1, 1].
///
/// Layout: `stem.linear` to `widths.at(4)`·4·4, `stem.norm`, then `stages.{i}` (one per
/// doubling), `head.{i}` (full-resolution convolutions) and `out` (conv to image channels,
/// tanh). Tensor names under these prefixes are stable across versions. A stage is
/// `stages.{i}.conv` and `stages.{i}.norm` (`.convt` and `.norm` for a transposed
/// convolution); with [`Upsample::SubPixelConv`] its convolution gives four times the
/// channels, and [`Upsample::NearestPlusSubPixel`] adds `stages.{i}.phases`.
///
/// **Progressive growing** (when the config has [`AeganConfig::progressive`]): G also has
/// `to_rgb.{r}`, a convolution to image channels for every resolution r below the image size
/// (same kernel as `out`). At [`Growth`] resolution r, G runs the stem and the stages up to r
/// and converts with `to_rgb.{r}` (with the head and `out` at the full size, exactly as a
/// network built for that size). While r fades in, the output is
/// `(1 − α)·upsample₂(image at r/2) + α·(image at r)`. At r = 2 the 4×4 image is averaged
/// down.
///
/// **Class conditioning** (when the config has [`AeganConfig::conditioning`]): G also has
/// `label_embedding` (classes × embedding size), and its stem takes `[z, λ·e(y)]`, where λ is
/// the condition's strength ([`Generator::set_condition_strength`], 1 unless a transition is
/// under way). Call [`Generator::forward_labelled_t`] with a label per latent. With
/// [`every_stage`](crate::config::ConditioningConfig::every_stage), stage i's features are
/// also shifted per channel by `stages.{i}.label` (a linear map without bias, zero at first)
/// of λ·e(y).
///
/// **Skip outputs** (when [`GeneratorConfig::skip_outputs`](crate::config::GeneratorConfig)
/// is on): G also has `to_rgb.{r}` for every resolution r from 4 below the image size, and
/// its image is `tanh(Σ_r up(rgb_r))`, where `rgb_r` is stage r's output (`to_rgb.{r}`, or
/// the head and `out` at full size) and `up` upsamples it bilinearly to the image size, one
/// doubling at a time. Every stage's output but the 4×4 one starts at zero (a zero weight and
/// no bias), so a new G draws the 4×4 image upsampled. While a progressive resolution fades
/// in, its own output is scaled by α.
///
/// **Skip-layer excitation** (when [`GeneratorConfig::excitation`](crate::config::GeneratorConfig)
/// is on): `excitation.{16r}`, a gate per channel of the stage of side 16r computed from the
/// stage of side r (4 → 64, 8 → 128, 16 → 256).
///
/// **Per-pixel noise** (when [`GeneratorConfig::noise`](crate::config::GeneratorConfig) is
/// on): after every stage and head block, a noise image per sample scaled by a learned weight
/// per channel (`stages.{i}.noise`, `head.{i}.noise`, `(1, channels, 1, 1)`, zero at first).
/// Each sample's noise is drawn from a seed: by default a hash of its latent, so the same z
/// gives the same image in any batch ([`Generator::forward_labelled_t`]); the trainer passes
/// seeds from its own random stream instead ([`Generator::forward_seeded_t`]), so that a
/// training step never reads latents back from the device.
#[derive(Debug, Clone)]
pub struct Generator {
    stem: Linear,
    label_embedding: Option<Embedding>,
    /// Per stage, the linear map from the label embedding to a shift of its channels (empty
    /// unless the label enters every stage).
    stage_labels: Vec<Linear>,
    condition_strength: f64,
    stem_norm: NormLayer,
    stem_width: usize,
    stages: Vec<UpStage>,
    head: Vec<ConvBlock>,
    /// One noise input per stage and one per head block, or none (noise off).
    stage_noise: Vec<PixelNoise>,
    head_noise: Vec<PixelNoise>,
    out: Conv,
    /// `(resolution, conv)` for every resolution below the image size, in a progressive
    /// network or one with skip outputs.
    to_rgb: Vec<(usize, Conv)>,
    /// Whether the image is the sum of every stage's output ([`GeneratorConfig::skip_outputs`](crate::config::GeneratorConfig)).
    skip_outputs: bool,
    /// `(small side, gate)`: the skip-layer excitations, each from the stage of that side to
    /// the stage 16 times larger.
    excitation: Vec<(usize, Excitation)>,
    image_size: usize,
    start_size: usize,
    growth: Option<Growth>,
    slope: f64,
    /// The dtype activations are computed in ([`crate::config::Precision`]).
    compute: DType,
    macs: u64,
}

impl Generator {
    /// Builds G for `config` with its tensors from `vb` ([`Generator::from_spec`] of
    /// [`AeganConfig::generator_spec`]).
    pub fn new(config: &AeganConfig, vb: VarBuilder) -> Result<Self> {
        Self::from_spec(&config.generator_spec(), vb)
    }

    /// Builds G from its own config, checked first, with its tensors from `vb`.
    pub fn from_spec(spec: &GeneratorSpec, vb: VarBuilder) -> Result<Self> {
        super::validated(spec.validate())?;
        let (g, image) = (&spec.layout, &spec.image);
        let slope = image.leaky_slope;
        let stem_width = g.widths.at(4);
        let embedding_dim = spec.label_embedding.map_or(0, |e| e.dim);
        let label_embedding = match spec.label_embedding {
            Some(e) => Some(candle_nn::embedding(e.classes, e.dim, vb.pp("label_embedding"))?),
            None => None,
        };
        let stem_inputs = spec.latent_dim + embedding_dim;
        let stem = candle_nn::linear(stem_inputs, stem_width * 16, vb.pp("stem.linear"))?;
        let stem_norm = NormLayer::new(image.norm, stem_width, vb.pp("stem.norm"))?;
        let mut macs = (stem_inputs * stem_width * 16) as u64;

        let mut stages = Vec::new();
        let mut stage_noise = Vec::new();
        let mut stage_labels = Vec::new();
        let (mut side, mut width) = (4, stem_width);
        for i in 0..image.stages() {
            let next = g.widths.at(side * 2);
            let vb = vb.pp(format!("stages.{i}"));
            if g.noise {
                stage_noise.push(PixelNoise::new(vb.clone(), next, i as u64)?);
            }
            if let Some(e) = spec.label_embedding.filter(|e| e.every_stage) {
                // Zero at first: the label's shift grows from nothing, as G learns it.
                let weight =
                    vb.pp("label")
                        .get_with_hints((next, e.dim), "weight", candle_nn::Init::Const(0.0))?;
                macs += (next * e.dim) as u64;
                stage_labels.push(Linear::new(weight, None));
            }
            let stage = match spec.upsample {
                Upsample::NearestConv => {
                    let block = ConvBlock::new(vb, width, next, g.kernel, 1, image.norm, slope)?;
                    macs += block.macs(side * 2);
                    UpStage::NearestConv(block)
                }
                Upsample::BilinearConv => {
                    let block = ConvBlock::new(vb, width, next, g.kernel, 1, image.norm, slope)?;
                    macs += block.macs(side * 2);
                    UpStage::BilinearConv(block)
                }
                Upsample::TransposedConv => {
                    let conv = ConvTranspose2x::new(vb.pp("convt"), width, next)?;
                    macs += conv.macs(side);
                    let norm = NormLayer::new(image.norm, next, vb.pp("norm"))?;
                    UpStage::Transposed { conv, norm }
                }
                Upsample::SubPixelConv => {
                    let bias = NormLayer::conv_needs_bias(image.norm);
                    let conv = Conv::new(vb.pp("conv"), width, 4 * next, g.kernel, 1, bias)?;
                    macs += conv.macs(side);
                    let norm = NormLayer::new(image.norm, next, vb.pp("norm"))?;
                    UpStage::SubPixel { conv, norm }
                }
                Upsample::NearestPlusSubPixel => {
                    let phases = Conv::zero_initialised(vb.pp("phases"), width, 4 * next, g.kernel)?;
                    let block = ConvBlock::new(vb, width, next, g.kernel, 1, image.norm, slope)?;
                    macs += block.macs(side * 2) + phases.macs(side);
                    UpStage::NearestPlusSubPixel { block, phases }
                }
            };
            stages.push(stage);
            side *= 2;
            width = next;
        }
        let head = BlockChain::same_size(&vb, "head", (width, side), &g.head, image.norm, slope)?;
        macs += head.macs;
        let width = head.width;
        let head = head.blocks;
        let mut head_noise = Vec::new();
        if g.noise {
            for (j, layer) in g.head.iter().enumerate() {
                let vb = vb.pp(format!("head.{j}"));
                head_noise.push(PixelNoise::new(vb, layer.width, HEAD_NOISE_LAYERS + j as u64)?);
            }
        }
        // With skip outputs every stage but the 4×4 one starts by adding nothing (a zero
        // weight, no bias): G starts from the 4×4 image upsampled, and each stage learns what
        // to add. Drawn at random like the rest, five outputs summed before tanh saturated it
        // (garish colours, SWD rising from 150 to 187 in a 64×64 screen).
        let stage_output = |name: &str, c_in: usize, first: bool| -> Result<Conv> {
            match g.skip_outputs && !first {
                true => Conv::zero_initialised(vb.pp(name), c_in, image.channels, g.out_kernel),
                false => Conv::new(vb.pp(name), c_in, image.channels, g.out_kernel, 1, true),
            }
        };
        let out = stage_output("out", width, false)?;
        macs += out.macs(side);
        let mut to_rgb = Vec::new();
        if image.progressive_start.is_some() || g.skip_outputs {
            let mut r = 4;
            while r < image.image_size {
                let conv = stage_output(&format!("to_rgb.{r}"), g.widths.at(r), r == 4)?;
                macs += conv.macs(r) * u64::from(g.skip_outputs);
                to_rgb.push((r, conv));
                r *= 2;
            }
        }
        let mut excitation = Vec::new();
        if g.excitation {
            let mut small = 4;
            while excited_side(small) <= image.image_size {
                let large = excited_side(small);
                let vb = vb.pp(format!("excitation.{large}"));
                let gate = Excitation::new(vb, g.widths.at(small), g.widths.at(large), slope)?;
                macs += gate.macs();
                excitation.push((small, gate));
                small *= 2;
            }
        }
        Ok(Generator {
            stem,
            label_embedding,
            stage_labels,
            condition_strength: 1.0,
            stem_norm,
            stem_width,
            stages,
            head,
            stage_noise,
            head_noise,
            out,
            to_rgb,
            skip_outputs: g.skip_outputs,
            excitation,
            image_size: image.image_size,
            start_size: image.progressive_start.unwrap_or(image.image_size),
            growth: None,
            slope,
            compute: image.precision.dtype(),
            macs,
        })
    }

    /// Makes later forward passes work at `growth` (progressive networks only; `None`
    /// returns to the full image size). Fails for a resolution the network cannot produce.
    pub fn set_growth(&mut self, growth: Option<Growth>) -> Result<()> {
        if let Some(g) = growth {
            g.check(self.start_size, self.image_size, !self.to_rgb.is_empty())?;
        }
        self.growth = growth;
        Ok(())
    }

    /// The growth state set by [`Generator::set_growth`].
    pub fn growth(&self) -> Option<Growth> {
        self.growth
    }

    /// Side of the images the next forward pass produces.
    pub fn output_size(&self) -> usize {
        self.growth.map_or(self.image_size, |g| g.resolution)
    }

    /// Number of classes of a class-conditional G (`None` for an unconditional one).
    pub fn classes(&self) -> Option<usize> {
        self.label_embedding
            .as_ref()
            .and_then(|e| e.embeddings().dim(0).ok())
    }

    /// Sets the strength λ ∈ [0, 1] by which the label embedding is multiplied (a transition
    /// from unconditional to conditional training raises it from 0 to 1).
    pub fn set_condition_strength(&mut self, strength: f64) {
        self.condition_strength = strength.clamp(0.0, 1.0);
    }

    /// The strength set by [`Generator::set_condition_strength`] (1 unless set).
    pub fn condition_strength(&self) -> f64 {
        self.condition_strength
    }

    /// Images `(batch, channels, size, size)` in [−1, 1] for latents `z` of shape
    /// `(batch, latent_dim)`. `train` selects batch statistics (and updates running ones).
    /// A class-conditional G needs labels: use [`Generator::forward_labelled_t`].
    pub fn forward_t(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_labelled_t(z, None, train)
    }

    /// [`Generator::forward_t`] with a class label per latent (`labels`: `(batch,)`, u32) for
    /// a class-conditional G. Labels for an unconditional G, or none for a conditional one,
    /// are an error. The images are f32 whatever the precision G computes in.
    ///
    /// With per-pixel noise, each sample's noise is seeded by a hash of its latent's bits: one
    /// device→host read of `z` per call (on a GPU it waits for the queued work).
    pub fn forward_labelled_t(&self, z: &Tensor, labels: Option<&Tensor>, train: bool) -> Result<Tensor> {
        let seeds = if self.has_noise() {
            latent_seeds(z)?
        } else {
            Vec::new()
        };
        self.forward_seeded_t(z, labels, &seeds, train)
    }

    /// [`Generator::forward_labelled_t`] with the per-pixel noise of sample i drawn from
    /// `noise_seeds[i]` instead of a hash of its latent: nothing is read from the device. A G
    /// without noise ignores the seeds; a G with noise needs one per latent.
    pub fn forward_seeded_t(
        &self,
        z: &Tensor,
        labels: Option<&Tensor>,
        noise_seeds: &[u64],
        train: bool,
    ) -> Result<Tensor> {
        let seeds = if self.has_noise() { noise_seeds } else { &[] };
        let embedding =
            match super::with_labels(&self.label_embedding, labels, z.dim(0)?, "generator", "latent")? {
                Some((embedding, labels)) => Some(embedding.forward(labels)?),
                None => None,
            };
        self.forward_in_precision(&z.to_dtype(self.compute)?, embedding, train, seeds)?
            .to_dtype(DType::F32)
    }

    /// The label embedding e(y) `(batch, embedding_dim)`, f32, of labels `(batch,)` (u32); an
    /// error for an unconditional G.
    pub fn embed_labels(&self, labels: &Tensor) -> Result<Tensor> {
        let batch = labels.dim(0)?;
        match super::with_labels(&self.label_embedding, Some(labels), batch, "generator", "latent")? {
            Some((embedding, labels)) => embedding.forward(labels),
            None => candle_core::bail!("this generator is not class-conditional: it has no label embedding"),
        }
    }

    /// G(z, e) of a class-conditional G for an embedding per latent given directly
    /// (`embedding`: `(batch, embedding_dim)`), in place of a label's e(y): for example
    /// `(1 − t)·e(y) + t·e(y′)`, a point between two classes. Scaled by the condition's
    /// strength as a label's embedding is; noise seeded by each latent's hash as in
    /// [`Generator::forward_labelled_t`]. An error for an unconditional G.
    pub fn forward_embedded_t(&self, z: &Tensor, embedding: &Tensor, train: bool) -> Result<Tensor> {
        let Some(table) = &self.label_embedding else {
            candle_core::bail!("this generator is not class-conditional: it takes no label embedding")
        };
        let expected = [z.dim(0)?, table.hidden_size()];
        if embedding.dims() != &expected[..] {
            candle_core::bail!(
                "expected an embedding of shape {expected:?} (one per latent), got {:?}",
                embedding.dims()
            )
        }
        let seeds = if self.has_noise() {
            latent_seeds(z)?
        } else {
            Vec::new()
        };
        let embedding = embedding.to_dtype(DType::F32)?;
        self.forward_in_precision(&z.to_dtype(self.compute)?, Some(embedding), train, &seeds)?
            .to_dtype(DType::F32)
    }

    /// Seeds for the per-pixel noise of `n` samples, drawn from `rng` (none when G has no
    /// noise), for [`Generator::forward_seeded_t`]: the training step's noise, which a hash of
    /// each latent would have to read back from the device mid-step.
    pub fn draw_noise_seeds(&self, n: usize, rng: &mut TrainRng) -> Vec<u64> {
        if self.has_noise() {
            rng.noise_seeds(n)
        } else {
            Vec::new()
        }
    }

    /// Whether G adds per-pixel noise (and so takes noise seeds).
    pub fn has_noise(&self) -> bool {
        !self.stage_noise.is_empty() || !self.head_noise.is_empty()
    }

    /// `embedding`: each latent's label embedding (a conditional G; `None` otherwise);
    /// `seeds`: one noise seed per latent (empty when G has no noise).
    fn forward_in_precision(
        &self,
        z: &Tensor,
        embedding: Option<Tensor>,
        train: bool,
        seeds: &[u64],
    ) -> Result<Tensor> {
        let growth = self.growth.unwrap_or(Growth::stable(self.image_size));
        let b = z.dim(0)?;
        // λ·e(y), joined to z at the stem and (when the label enters every stage) shifting
        // each stage's features.
        let label = match embedding {
            Some(e) => Some((e.to_dtype(self.compute)? * self.condition_strength)?),
            None => None,
        };
        let stem_input = match &label {
            Some(e) => Tensor::cat(&[z, e], 1)?,
            None => z.clone(),
        };
        let x = super::layers::linear(&self.stem, &stem_input)?.reshape((b, self.stem_width, 4, 4))?;
        let mut x = self.stem_norm.forward_leaky(&x, train, self.slope)?;
        let r = growth.resolution;
        if r <= 4 {
            let four = self.to_image(4, &x, train, seeds)?;
            let two = downsample_area(&four, 2)?;
            return match r {
                2 => Ok(two),
                _ if growth.is_fading() && self.start_size < 4 => {
                    fade(&upsample_nearest_2x(&two)?, &four, growth.alpha)
                }
                _ => Ok(four),
            };
        }
        let stages = r.trailing_zeros() as usize - 2;
        // The features of the stages that gate a later one (skip-layer excitation).
        let mut gating: Vec<(usize, Tensor)> = Vec::new();
        self.keep_if_gating(4, &x, &mut gating);
        // With skip outputs: the running sum of the stages' image outputs (before tanh).
        let mut skip_sum = match self.skip_outputs {
            true => Some(self.stage_output(4, &x, train, seeds)?),
            false => None,
        };
        let mut previous = x.clone();
        for i in 0..stages {
            let side = 8 << i;
            previous = x;
            x = self.run_stage(i, &previous, train, seeds)?;
            x = self.shift_by_label(i, x, label.as_ref())?;
            x = self.excite(side, x, &gating)?;
            self.keep_if_gating(side, &x, &mut gating);
            if let Some(sum) = skip_sum {
                let mut own = self.stage_output(side, &x, train, seeds)?;
                if i == stages - 1 && growth.is_fading() {
                    own = (own * growth.alpha)?;
                }
                skip_sum = Some((upsample_bilinear_2x(&sum)? + own)?);
            }
        }
        if let Some(sum) = skip_sum {
            return crate::ops::tanh(&sum);
        }
        let new_image = self.to_image(r, &x, train, seeds)?;
        if !growth.is_fading() {
            return Ok(new_image);
        }
        let old_image = upsample_nearest_2x(&self.to_image(r / 2, &previous, train, seeds)?)?;
        fade(&old_image, &new_image, growth.alpha)
    }

    /// Keeps the features `x` of the stage of side `side` when a gate reads them.
    fn keep_if_gating(&self, side: usize, x: &Tensor, gating: &mut Vec<(usize, Tensor)>) {
        if self.excitation.iter().any(|(small, _)| *small == side) {
            gating.push((side, x.clone()));
        }
    }

    /// The features `x` of the stage of side `side`, gated by an earlier stage's features
    /// when a skip-layer excitation targets this stage.
    fn excite(&self, side: usize, x: Tensor, gating: &[(usize, Tensor)]) -> Result<Tensor> {
        let gate = self
            .excitation
            .iter()
            .find(|(small, _)| excited_side(*small) == side);
        let Some((small, gate)) = gate else { return Ok(x) };
        match gating.iter().find(|(s, _)| s == small) {
            Some((_, features)) => gate.forward(features, &x),
            None => candle_core::bail!(
                "the {small}×{small} features that gate the {side}×{side} stage were not kept"
            ),
        }
    }

    /// Stage `i`'s features `x` shifted per channel by `stages.{i}.label` of the label
    /// embedding λ·e(y) (`label`); `x` itself when the label enters only the stem.
    fn shift_by_label(&self, i: usize, x: Tensor, label: Option<&Tensor>) -> Result<Tensor> {
        match (self.stage_labels.get(i), label) {
            (Some(map), Some(e)) => {
                let shift = super::layers::linear(map, e)?;
                let (b, c) = shift.dims2()?;
                x.broadcast_add(&shift.reshape((b, c, 1, 1))?)
            }
            _ => Ok(x),
        }
    }

    /// Stage `i`, then its noise (if any).
    fn run_stage(&self, i: usize, x: &Tensor, train: bool, seeds: &[u64]) -> Result<Tensor> {
        match (self.stage_noise.get(i), &self.stages[i]) {
            // The noise joins the block's own normalisation and activation (one operation in
            // training, which stores one activation fewer for the backward pass).
            (Some(noise), UpStage::NearestConv(block)) => {
                let (b, _, h, w) = x.dims4()?;
                let image = noise.draw((b, 2 * h, 2 * w), seeds, x.device())?;
                block.forward_upsampled_plus_noise_t(x, train, (noise.weight(), &image))
            }
            (Some(noise), stage) => noise.forward(&self.run_upsampling(stage, x, train)?, seeds),
            (None, stage) => self.run_upsampling(stage, x, train),
        }
    }

    fn run_upsampling(&self, stage: &UpStage, x: &Tensor, train: bool) -> Result<Tensor> {
        match stage {
            UpStage::NearestConv(block) => block.forward_upsampled_t(x, train),
            UpStage::BilinearConv(block) => block.forward_t(&upsample_bilinear_2x(x)?, train),
            UpStage::Transposed { conv, norm } => norm.forward_leaky(&conv.forward(x)?, train, self.slope),
            UpStage::SubPixel { conv, norm } => {
                norm.forward_leaky(&pixel_shuffle_2x(&conv.forward(x)?)?, train, self.slope)
            }
            UpStage::NearestPlusSubPixel { block, phases } => {
                block.forward_upsampled_plus_t(x, &pixel_shuffle_2x(&phases.forward(x)?)?, train)
            }
        }
    }

    /// Features at resolution `r` to an image: the head and `out` at full size, `to_rgb.{r}` below.
    fn to_image(&self, r: usize, x: &Tensor, train: bool, seeds: &[u64]) -> Result<Tensor> {
        crate::ops::tanh(&self.stage_output(r, x, train, seeds)?)
    }

    /// The image channels a stage of side `r` draws, before tanh: the head and `out` at full
    /// size, `to_rgb.{r}` below.
    fn stage_output(&self, r: usize, x: &Tensor, train: bool, seeds: &[u64]) -> Result<Tensor> {
        if r == self.image_size {
            let mut x = x.clone();
            for (j, block) in self.head.iter().enumerate() {
                x = block.forward_t(&x, train)?;
                if let Some(noise) = self.head_noise.get(j) {
                    x = noise.forward(&x, seeds)?;
                }
            }
            return self.out.forward(&x);
        }
        match self.to_rgb.iter().find(|(side, _)| *side == r) {
            Some((_, conv)) => conv.forward(x),
            None => candle_core::bail!("this generator has no to_rgb layer for {r}×{r}"),
        }
    }

    /// Multiply-accumulate operations of one forward pass, per image.
    pub fn macs_per_image(&self) -> u64 {
        self.macs
    }
}

/// Layer numbers of the head's noise inputs start here (the stages' are their indices).
const HEAD_NOISE_LAYERS: u64 = 1000;

impl ModuleT for Generator {
    fn forward_t(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        Generator::forward_t(self, z, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::TrainRng;
    use candle_core::Device;

    #[test]
    fn with_skip_outputs_the_image_is_tanh_of_the_sum_of_the_upsampled_stage_outputs() {
        let mut config = AeganConfig::lean(16);
        config.generator.skip_outputs = true;
        config.generator.noise = false;
        let store = crate::params::ParamStore::new(4);
        let g = Generator::new(&config, store.var_builder(&Device::Cpu)).unwrap();
        let z = TrainRng::new(5)
            .test_input((3, config.latent_dim), &Device::Cpu)
            .unwrap();
        let up = |x: &Tensor| upsample_bilinear_2x(x).unwrap();
        let output = |side, x: &Tensor| g.stage_output(side, x, false, &[]).unwrap();
        let stem = super::super::layers::linear(&g.stem, &z)
            .unwrap()
            .reshape((3, g.stem_width, 4, 4))
            .unwrap();
        let x4 = g.stem_norm.forward_leaky(&stem, false, g.slope).unwrap();

        // A new G draws the 4×4 image upsampled: the other stages start at zero.
        let at_start = g.forward_t(&z, false).unwrap();
        let first = up(&up(&output(4, &x4))).tanh().unwrap();
        assert!(crate::ops::max_abs_diff(&at_start, &first) < 1e-6);

        // With every stage's output drawn at random (as training moves them), by hand: the
        // two stages, each stage's own output, upsampled to 16×16 and summed.
        let mut rng = TrainRng::new(6);
        for (name, var) in store.all() {
            if name.starts_with("to_rgb") || name.starts_with("out") {
                let value = (rng.test_input(var.shape(), &Device::Cpu).unwrap() * 0.1).unwrap();
                var.set(&value).unwrap();
            }
        }
        let image = g.forward_t(&z, false).unwrap();
        let x8 = g.run_stage(0, &x4, false, &[]).unwrap();
        let x16 = g.run_stage(1, &x8, false, &[]).unwrap();
        let sum = ((up(&up(&output(4, &x4))) + up(&output(8, &x8))).unwrap() + output(16, &x16)).unwrap();
        let diff = crate::ops::max_abs_diff(&image, &sum.tanh().unwrap());
        assert!(
            diff < 1e-5,
            "image differs from tanh(Σ up(stage output)) by {diff}"
        );
        for (side, x) in [(4, &x4), (8, &x8), (16, &x16)] {
            let largest = output(side, x)
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(largest > 1e-3, "stage {side} drew nothing");
        }
    }
}
