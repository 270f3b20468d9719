//! Encoder E: x → z.

use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::VarBuilder;

use super::layers::{BlockChain, ConvBlock, Mlp};
use crate::config::AeganConfig;

/// Encoder E: maps images `(batch, channels, size, size)` to latents `(batch, latent_dim)`.
///
/// Layout: `down.{i}` (stride-2 convolutions to 4×4), `neck.{i}` (stride-1 convolutions at
/// 4×4), then `head.fc.{i}` and `head.out` (fully connected, no activation on z).
#[derive(Debug, Clone)]
pub struct Encoder {
    down: Vec<ConvBlock>,
    neck: Vec<ConvBlock>,
    head: Mlp,
    macs: u64,
}

impl Encoder {
    /// Builds E for `config` with its tensors from `vb`.
    pub fn new(config: &AeganConfig, vb: VarBuilder) -> Result<Self> {
        let e = &config.encoder;
        let slope = config.leaky_slope;
        let down = BlockChain::downsampling(
            &vb,
            "down",
            (config.channels, config.image_size),
            &e.widths,
            e.kernel,
            config.norm,
            slope,
        )?;
        let neck = BlockChain::same_size(&vb, "neck", (down.width, down.side), &e.neck, config.norm, slope)?;
        let (width, side) = (neck.width, neck.side);
        let mut macs = down.macs + neck.macs;
        let (down, neck) = (down.blocks, neck.blocks);
        let head = Mlp::new(
            vb.pp("head"),
            width * side * side,
            &e.hidden,
            config.latent_dim,
            slope,
        )?;
        macs += head.macs();
        Ok(Encoder {
            down,
            neck,
            head,
            macs,
        })
    }

    /// Latents `(batch, latent_dim)` for images `x`. `train` selects batch statistics.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = x.clone();
        for block in self.down.iter().chain(&self.neck) {
            x = block.forward_t(&x, train)?;
        }
        self.head.forward(&x.flatten_from(1)?)
    }

    /// Multiply-accumulate operations of one forward pass, per image.
    pub fn macs_per_image(&self) -> u64 {
        self.macs
    }
}

impl ModuleT for Encoder {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Encoder::forward_t(self, x, train)
    }
}
