//! The input side of progressive growing, shared by E and Dx: `from_rgb.{r}` layers for the
//! resolutions below the image size, and the fade between a new input block and the
//! downsampled image feeding the previous one.

use candle_core::{ModuleT, Result, Tensor};
use candle_nn::VarBuilder;

use super::layers::Conv;
use crate::config::{ImageSpec, WidthSchedule};
use crate::ops::upsample_nearest_2x;
use crate::progressive::{downsample_area, fade, Growth};

/// `from_rgb.{r}` (1×1 conv + leaky ReLU to `widths.at(r)` channels) for every r from 4 up to
/// the image size (exclusive), and the growth state. Empty without a progressive config.
#[derive(Debug, Clone)]
pub(crate) struct GrowingInput {
    from_rgb: Vec<(usize, Conv)>,
    image_size: usize,
    start_size: usize,
    growth: Option<Growth>,
    slope: f64,
}

impl GrowingInput {
    pub fn new(image: &ImageSpec, widths: &WidthSchedule, vb: &VarBuilder) -> Result<Self> {
        let mut from_rgb = Vec::new();
        if image.progressive_start.is_some() {
            let mut r = 4;
            while r < image.image_size {
                let conv = Conv::new(
                    vb.pp(format!("from_rgb.{r}")),
                    image.channels,
                    widths.at(r),
                    1,
                    1,
                    true,
                )?;
                from_rgb.push((r, conv));
                r *= 2;
            }
        }
        Ok(GrowingInput {
            from_rgb,
            image_size: image.image_size,
            start_size: image.progressive_start.unwrap_or(image.image_size),
            growth: None,
            slope: image.leaky_slope,
        })
    }

    /// The same input layers with every `from_rgb` weight spectrally normalised (`vb`: the
    /// builder they were made with).
    pub fn with_spectral_norm(mut self, vb: &VarBuilder) -> Result<Self> {
        for (r, conv) in &mut self.from_rgb {
            *conv = conv.clone().with_spectral_norm(&vb.pp(format!("from_rgb.{r}")))?;
        }
        Ok(self)
    }

    /// One power-iteration step of every `from_rgb` spectral norm.
    pub fn power_iteration(&self) -> Result<()> {
        self.from_rgb
            .iter()
            .try_for_each(|(_, conv)| conv.power_iteration())
    }

    pub fn set_growth(&mut self, growth: Option<Growth>) -> Result<()> {
        if let Some(g) = growth {
            g.check(self.start_size, self.image_size, !self.from_rgb.is_empty())?;
        }
        self.growth = growth;
        Ok(())
    }

    pub fn growth(&self) -> Option<Growth> {
        self.growth
    }

    /// Side of the images the network expects now.
    pub fn input_size(&self) -> usize {
        self.growth.map_or(self.image_size, |g| g.resolution)
    }

    /// Runs images `x` at the current resolution through the input layer and the stride-2
    /// `down` blocks (built for the full image size) to the 4×4 features. `full_entry` is the
    /// network's own first layer at the full image size.
    pub fn forward_t<B: ModuleT>(
        &self,
        x: &Tensor,
        down: &[B],
        full_entry: impl Fn(&Tensor) -> Result<Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        Ok(self.forward_keeping_t(x, down, full_entry, None, train)?.0)
    }

    /// [`GrowingInput::forward_t`] that also returns the features on their way down when they
    /// are `keep`×`keep` (after a fade, the faded ones); `None` when they never are (images
    /// smaller than `keep`, or no `keep`).
    pub fn forward_keeping_t<B: ModuleT>(
        &self,
        x: &Tensor,
        down: &[B],
        full_entry: impl Fn(&Tensor) -> Result<Tensor>,
        keep: Option<usize>,
        train: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let mut kept = None;
        let mut note = |h: &Tensor| -> Result<()> {
            if keep == Some(h.dim(3)?) {
                kept = Some(h.clone());
            }
            Ok(())
        };
        let growth = self.growth.unwrap_or(Growth::stable(self.image_size));
        let r = growth.resolution;
        let side = x.dim(3)?;
        if side != r || x.dim(2)? != r {
            candle_core::bail!("expected {r}×{r} images at this growth stage, got {:?}", x.dims())
        }
        let entry = |r: usize, x: &Tensor| -> Result<Tensor> {
            if r == self.image_size {
                return full_entry(x);
            }
            match self.from_rgb.iter().find(|(side, _)| *side == r) {
                Some((_, conv)) => conv.forward_leaky(x, self.slope),
                None => candle_core::bail!("this network has no from_rgb layer for {r}×{r}"),
            }
        };
        if r == 2 {
            let h = entry(4, &upsample_nearest_2x(x)?)?;
            note(&h)?;
            return Ok((h, kept));
        }
        // The block that takes resolution r to r/2; there is none at 4×4 (index = down.len()).
        let first = (self.image_size / r).trailing_zeros() as usize;
        let mut h = entry(r, x)?;
        let mut next = first;
        if growth.is_fading() && r > self.start_size {
            if let Some(block) = down.get(first) {
                note(&h)?;
                h = block.forward_t(&h, train)?;
                next = first + 1;
            }
            let smaller = downsample_area(x, 2)?;
            let old = if r == 4 {
                entry(4, &upsample_nearest_2x(&smaller)?)?
            } else {
                entry(r / 2, &smaller)?
            };
            h = fade(&old, &h, growth.alpha)?;
        }
        for block in &down[next..] {
            note(&h)?;
            h = block.forward_t(&h, train)?;
        }
        note(&h)?;
        Ok((h, kept))
    }
}
