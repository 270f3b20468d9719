//! Generator G: z → x.

use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::layers::{
    leaky_relu, upsample_nearest_2x, BlockChain, Conv, ConvBlock, ConvTranspose2x, NormLayer,
};
use crate::config::{AeganConfig, Upsample};

/// One ×2 stage: nearest upsample + conv, or a transposed conv; then norm and leaky ReLU.
#[derive(Debug, Clone)]
enum UpStage {
    NearestConv(ConvBlock),
    Transposed { conv: ConvTranspose2x, norm: NormLayer },
}

/// Generator G: maps latent vectors `(batch, latent_dim)` to images `(batch, channels, size,
/// size)` in [−1, 1].
///
/// Layout: `stem.linear` to `widths.at(4)`·4·4, `stem.norm`, then `stages.{i}` (one per
/// doubling), `head.{i}` (full-resolution convolutions) and `out` (conv to image channels,
/// tanh). Tensor names under these prefixes are stable across versions.
#[derive(Debug, Clone)]
pub struct Generator {
    stem: Linear,
    stem_norm: NormLayer,
    stem_width: usize,
    stages: Vec<UpStage>,
    head: Vec<ConvBlock>,
    out: Conv,
    slope: f64,
    macs: u64,
}

impl Generator {
    /// Builds G for `config` with its tensors from `vb`.
    pub fn new(config: &AeganConfig, vb: VarBuilder) -> Result<Self> {
        let g = &config.generator;
        let slope = config.leaky_slope;
        let stem_width = g.widths.at(4);
        let stem = candle_nn::linear(config.latent_dim, stem_width * 16, vb.pp("stem.linear"))?;
        let stem_norm = NormLayer::new(config.norm, stem_width, vb.pp("stem.norm"))?;
        let mut macs = (config.latent_dim * stem_width * 16) as u64;

        let mut stages = Vec::new();
        let (mut side, mut width) = (4, stem_width);
        for i in 0..config.stages() {
            let next = g.widths.at(side * 2);
            let vb = vb.pp(format!("stages.{i}"));
            let stage = match config.upsample {
                Upsample::NearestConv => {
                    let block = ConvBlock::new(vb, width, next, g.kernel, 1, config.norm, slope)?;
                    macs += block.macs(side * 2);
                    UpStage::NearestConv(block)
                }
                Upsample::TransposedConv => {
                    let conv = ConvTranspose2x::new(vb.pp("convt"), width, next)?;
                    macs += conv.macs(side);
                    let norm = NormLayer::new(config.norm, next, vb.pp("norm"))?;
                    UpStage::Transposed { conv, norm }
                }
            };
            stages.push(stage);
            side *= 2;
            width = next;
        }
        let head = BlockChain::same_size(&vb, "head", (width, side), &g.head, config.norm, slope)?;
        macs += head.macs;
        let width = head.width;
        let head = head.blocks;
        let out = Conv::new(vb.pp("out"), width, config.channels, g.out_kernel, 1, true)?;
        macs += out.macs(side);
        Ok(Generator {
            stem,
            stem_norm,
            stem_width,
            stages,
            head,
            out,
            slope,
            macs,
        })
    }

    /// Images `(batch, channels, size, size)` in [−1, 1] for latents `z` of shape
    /// `(batch, latent_dim)`. `train` selects batch statistics (and updates running ones).
    pub fn forward_t(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        let b = z.dim(0)?;
        let x = self.stem.forward(z)?.reshape((b, self.stem_width, 4, 4))?;
        let mut x = leaky_relu(&self.stem_norm.forward_t(&x, train)?, self.slope)?;
        for stage in &self.stages {
            x = match stage {
                UpStage::NearestConv(block) => block.forward_t(&upsample_nearest_2x(&x)?, train)?,
                UpStage::Transposed { conv, norm } => {
                    leaky_relu(&norm.forward_t(&conv.forward(&x)?, train)?, self.slope)?
                }
            };
        }
        for block in &self.head {
            x = block.forward_t(&x, train)?;
        }
        self.out.forward(&x)?.tanh()
    }

    /// Multiply-accumulate operations of one forward pass, per image.
    pub fn macs_per_image(&self) -> u64 {
        self.macs
    }
}

impl ModuleT for Generator {
    fn forward_t(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        Generator::forward_t(self, z, train)
    }
}
