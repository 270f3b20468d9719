//! Progressive growing (Karras et al. 2018, "Progressive Growing of GANs"): train at 4×4
//! first, then double the resolution on a schedule, fading each new block in.
//!
//! The schedule is a pure function of the number of images shown, so a run resumed from a
//! checkpoint taken in the middle of a fade continues it exactly. [`ProgressiveConfig`]
//! describes the schedule; [`Growth`] is where it stands at one moment: the resolution the
//! networks work at and α, the weight of the newest block (0 when it has just been added, 1
//! once it is faded in).
//!
//! How each network grows is described on [`crate::Generator`], [`crate::Encoder`] and
//! [`crate::ImageDiscriminator`]; Dz and E's fully connected head never change size. The
//! tensor helpers here are the two resamplings that the fade blends between.

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// Resampling by integer factors, kept here under its old path; it lives in [`crate::ops`].
pub use crate::ops::{downsample_area, upsample_nearest};

/// The schedule of a progressive run (a field of [`crate::AeganConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressiveConfig {
    /// The first resolution: 4 (the generator's stem) or 2. At 2×2 the 4×4 networks see
    /// area-downsampled images (G's output is averaged to 2×2; E and Dx see it upsampled).
    pub start_size: usize,
    /// Real images shown at each resolution once its block is fully faded in, before the next
    /// resolution starts. The final resolution trains for as long as the run lasts.
    pub images_per_phase: u64,
    /// Real images shown while a new resolution fades in (α rising linearly from 0 to 1).
    pub images_per_fade: u64,
}

impl ProgressiveConfig {
    /// Starts at 4×4 with `images_per_phase` images per stable phase and as many per fade,
    /// ProGAN's proportion.
    pub fn new(images_per_phase: u64) -> Self {
        ProgressiveConfig {
            start_size: 4,
            images_per_phase,
            images_per_fade: images_per_phase,
        }
    }

    /// Where the schedule stands after `images_shown` real images, for a model whose final
    /// resolution is `final_size`.
    pub fn growth_at(&self, images_shown: u64, final_size: usize) -> Growth {
        let mut resolution = self.start_size.min(final_size);
        let mut left = images_shown;
        loop {
            // Stable phase at `resolution`.
            if resolution >= final_size || left < self.images_per_phase {
                return Growth::stable(resolution);
            }
            left -= self.images_per_phase;
            resolution *= 2;
            // Fade-in of `resolution`.
            if left < self.images_per_fade {
                let alpha = left as f64 / self.images_per_fade as f64;
                return Growth { resolution, alpha };
            }
            left -= self.images_per_fade;
        }
    }

    /// Real images shown before training reaches `final_size` with α = 1.
    pub fn images_until_full_size(&self, final_size: usize) -> u64 {
        let mut images: u64 = 0;
        let mut resolution = self.start_size.max(1);
        while resolution < final_size {
            images = images
                .saturating_add(self.images_per_phase)
                .saturating_add(self.images_per_fade);
            resolution *= 2;
        }
        images
    }
}

/// The resolution networks currently work at, and how far its newest block is faded in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Growth {
    /// Side of the images G produces and E and Dx take: a power of two, at most the
    /// config's `image_size`.
    pub resolution: usize,
    /// Weight of the newest block, in [0, 1]: the output is
    /// `(1 − α)·(previous resolution, ×2 resampled) + α·(new block)`.
    pub alpha: f64,
}

impl Growth {
    /// `resolution` with its block fully faded in (α = 1).
    pub fn stable(resolution: usize) -> Self {
        Growth {
            resolution,
            alpha: 1.0,
        }
    }

    /// Whether a block is still fading in.
    pub fn is_fading(&self) -> bool {
        self.alpha < 1.0
    }

    /// Fails unless a network grown from `start_size` to `image_size` can work at this stage;
    /// one built without a progressive config (`progressive` false) works only at full size.
    pub(crate) fn check(&self, start_size: usize, image_size: usize, progressive: bool) -> Result<()> {
        let r = self.resolution;
        if !progressive && r != image_size {
            candle_core::bail!("a network built without a progressive config works only at {image_size}×{image_size}, not {r}×{r}")
        }
        if !r.is_power_of_two() || r < start_size || r > image_size {
            candle_core::bail!("resolution {r} is not a power of two from {start_size} to {image_size}")
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            candle_core::bail!("fade-in weight α = {} is not in [0, 1]", self.alpha)
        }
        Ok(())
    }
}

/// `(1 − α)·old + α·new`, computed as `old + α·(new − old)` so that α = 0 returns `old`
/// exactly.
pub(crate) fn fade(old: &Tensor, new: &Tensor, alpha: f64) -> Result<Tensor> {
    old + ((new - old)? * alpha)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_walks_stable_and_fade_phases_up_to_the_final_size() {
        let p = ProgressiveConfig {
            start_size: 4,
            images_per_phase: 100,
            images_per_fade: 50,
        };
        assert_eq!(p.growth_at(0, 32), Growth::stable(4));
        assert_eq!(p.growth_at(99, 32), Growth::stable(4));
        assert_eq!(
            p.growth_at(100, 32),
            Growth {
                resolution: 8,
                alpha: 0.0
            }
        );
        assert_eq!(
            p.growth_at(125, 32),
            Growth {
                resolution: 8,
                alpha: 0.5
            }
        );
        assert_eq!(p.growth_at(150, 32), Growth::stable(8));
        // 4 → 8 → 16 → 32: three (phase + fade) pairs, then 32 for ever.
        assert_eq!(p.images_until_full_size(32), 450);
        assert_eq!(p.growth_at(449, 32).resolution, 32);
        assert!(p.growth_at(449, 32).is_fading());
        assert_eq!(p.growth_at(450, 32), Growth::stable(32));
        assert_eq!(p.growth_at(1_000_000, 32), Growth::stable(32));
        let from_two = ProgressiveConfig { start_size: 2, ..p };
        assert_eq!(from_two.growth_at(0, 32), Growth::stable(2));
        assert_eq!(from_two.growth_at(100, 32).resolution, 4);
    }

    #[test]
    fn resampling_round_trips_constant_blocks() -> Result<()> {
        let x = Tensor::arange(0f32, 16.0, &candle_core::Device::Cpu)?.reshape((1, 1, 4, 4))?;
        let down = downsample_area(&x, 2)?;
        assert_eq!(down.flatten_all()?.to_vec1::<f32>()?, [2.5, 4.5, 10.5, 12.5]);
        let back = downsample_area(&upsample_nearest(&down, 2)?, 2)?;
        assert_eq!(
            back.flatten_all()?.to_vec1::<f32>()?,
            down.flatten_all()?.to_vec1::<f32>()?
        );
        let faded = fade(&x, &(&x + 2.0)?, 0.25)?;
        assert_eq!(faded.flatten_all()?.to_vec1::<f32>()?[0], 0.5);
        Ok(())
    }
}
