//! The decoder of a self-supervised Dx (FastGAN, Liu et al. 2021): Dx's 8×8 features back to
//! a small image, so that Dx must keep what an image looks like in its features.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::layers::{Conv, ConvBlock};
use crate::config::{Norm, WidthSchedule};

/// Side of the Dx features the decoder reads.
pub(crate) const FEATURE_SIDE: usize = 8;
/// Side of the images the decoder draws.
pub(crate) const DECODED_SIDE: usize = 32;

/// `up.{i}` (nearest ×2 upsampling, convolution, normalisation, leaky ReLU) from 8×8 to 32×32
/// at Dx's widths for 16×16 and 32×32, then `out` (convolution to the image channels, tanh).
#[derive(Debug, Clone)]
pub(crate) struct FeatureDecoder {
    up: Vec<ConvBlock>,
    out: Conv,
}

impl FeatureDecoder {
    /// The decoder `<vb>.up.{i}`, `<vb>.out` from `c_in` feature channels to `channels`.
    pub fn new(
        vb: &VarBuilder,
        c_in: usize,
        widths: &WidthSchedule,
        (channels, kernel): (usize, usize),
        norm: Norm,
        slope: f64,
    ) -> Result<Self> {
        let mut up = Vec::new();
        let (mut c, mut side) = (c_in, FEATURE_SIDE);
        while side < DECODED_SIDE {
            side *= 2;
            let c_out = widths.at(side);
            let block = ConvBlock::new(
                vb.pp(format!("up.{}", up.len())),
                c,
                c_out,
                kernel,
                1,
                norm,
                slope,
            )?;
            up.push(block);
            c = c_out;
        }
        let out = Conv::new(vb.pp("out"), c, channels, kernel, 1, true)?;
        Ok(FeatureDecoder { up, out })
    }

    /// Images `(B, channels, 32, 32)` in [−1, 1], f32, from features `(B, C, 8, 8)`.
    pub fn forward_t(&self, features: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = features.clone();
        for block in &self.up {
            h = block.forward_upsampled_t(&h, train)?;
        }
        crate::ops::tanh(&self.out.forward(&h)?.to_dtype(DType::F32)?)
    }
}
