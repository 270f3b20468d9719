//! Encoder E: x → z.

use candle_core::{DType, Module, ModuleT, Result, Tensor};
use candle_nn::VarBuilder;

use super::growing::GrowingInput;
use super::layers::{BlockChain, ConvBlock, Mlp};
use crate::config::{AeganConfig, EncoderSpec};
use crate::progressive::Growth;

/// Encoder E: maps images `(batch, channels, size, size)` to latents `(batch, latent_dim)`.
///
/// Layout: `down.{i}` (stride-2 convolutions to 4×4), `neck.{i}` (stride-1 convolutions at
/// 4×4), then `head.fc.{i}` and `head.out` (fully connected, no activation on z).
///
/// **Progressive growing** (when the config has [`AeganConfig::progressive`]): E also has
/// `from_rgb.{r}` (1×1 conv + leaky ReLU) for every resolution r below the image size. At
/// [`Growth`] resolution r, images enter through `from_rgb.{r}` into the `down` block that
/// handles r (the image goes straight into `down.0` at the full size, exactly as a network
/// built for that size). While r fades in, the features after that block are blended with
/// `from_rgb.{r/2}` of the 2×-area-downsampled image. The neck and head never change.
#[derive(Debug, Clone)]
pub struct Encoder {
    input: GrowingInput,
    down: Vec<ConvBlock>,
    neck: Vec<ConvBlock>,
    head: Mlp,
    /// The dtype activations are computed in ([`crate::config::Precision`]).
    compute: DType,
    macs: u64,
}

impl Encoder {
    /// Builds E for `config` with its tensors from `vb` ([`Encoder::from_spec`] of
    /// [`AeganConfig::encoder_spec`]).
    pub fn new(config: &AeganConfig, vb: VarBuilder) -> Result<Self> {
        Self::from_spec(&config.encoder_spec(), vb)
    }

    /// Builds E from its own config, checked first, with its tensors from `vb`.
    pub fn from_spec(spec: &EncoderSpec, vb: VarBuilder) -> Result<Self> {
        super::validated(spec.validate())?;
        let (e, image) = (&spec.layout, &spec.image);
        let slope = image.leaky_slope;
        let input = GrowingInput::new(image, &e.widths, &vb)?;
        let down = BlockChain::downsampling(
            &vb,
            "down",
            (image.channels, image.image_size),
            &e.widths,
            e.kernel,
            image.norm,
            slope,
        )?;
        let neck = BlockChain::same_size(&vb, "neck", (down.width, down.side), &e.neck, image.norm, slope)?;
        let (width, side) = (neck.width, neck.side);
        let mut macs = down.macs + neck.macs;
        let (down, neck) = (down.blocks, neck.blocks);
        let head = Mlp::new(
            vb.pp("head"),
            width * side * side,
            &e.hidden,
            spec.latent_dim,
            slope,
        )?;
        macs += head.macs();
        Ok(Encoder {
            input,
            down,
            neck,
            head,
            compute: image.precision.dtype(),
            macs,
        })
    }

    /// Latents `(batch, latent_dim)`, f32, for images `x`. `train` selects batch statistics.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let x = x.to_dtype(self.compute)?;
        let mut x = self.input.forward_t(&x, &self.down, |x| Ok(x.clone()), train)?;
        for block in &self.neck {
            x = block.forward_t(&x, train)?;
        }
        self.head.forward(&x.flatten_from(1)?)?.to_dtype(DType::F32)
    }

    /// Makes later forward passes take images at `growth` (progressive networks only; `None`
    /// returns to the full image size). Fails for a resolution the network cannot take.
    pub fn set_growth(&mut self, growth: Option<Growth>) -> Result<()> {
        self.input.set_growth(growth)
    }

    /// The growth state set by [`Encoder::set_growth`].
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

impl ModuleT for Encoder {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Encoder::forward_t(self, x, train)
    }
}
