//! Checkerboard artefacts: the share of an image's power at the Nyquist frequencies.
//!
//! Transposed convolutions with a stride that does not divide the kernel, and some upsampling
//! layers, leave a pattern that alternates from one pixel to the next: power at the highest
//! frequencies a grid can hold. For each image, the grey image (mean of the three channels)
//! minus its mean is transformed by a 2-D DFT, and the score is the power at the three Nyquist
//! bins (H/2, W/2), (H/2, 0) and (0, W/2) over the total power (Σ |F|² = H·W·Σ g² by
//! Parseval). Only those three bins are computed: each is a sum of the pixels with
//! alternating signs. A set's score is the mean over its images; [`checker_ratio`] compares
//! a generated set with a real one (1: as much Nyquist power as real data).

use candle_core::Tensor;

use super::{bad_input, image_dims, to_cpu_f32_vec};
use crate::error::Result;

/// The Nyquist-power share of each image `(N, 3, H, W)` (H and W even). A constant image
/// scores 0.
pub fn checker_scores(images: &Tensor) -> Result<Vec<f64>> {
    let (n, c, h, w) = image_dims("images", images)?;
    if h % 2 != 0 || w % 2 != 0 {
        return Err(bad_input(
            "images",
            "(N, 3, H, W) images with H and W even",
            images.dims(),
        ));
    }
    let data = to_cpu_f32_vec(images)?;
    Ok((0..n)
        .map(|i| {
            let grey = grey_plane(&data[i * c * h * w..(i + 1) * c * h * w], c, h * w);
            nyquist_share(&grey, h, w)
        })
        .collect())
}

/// The mean Nyquist-power share of a set of images (see the module docs).
pub fn checker_score(images: &Tensor) -> Result<f64> {
    let scores = checker_scores(images)?;
    Ok(scores.iter().sum::<f64>() / scores.len() as f64)
}

/// [`checker_score`] of `fake` over that of `real` (same image size): 1 when the generated
/// images have as much Nyquist power as real ones, ≫ 1 for checkerboard artefacts. When the
/// real images have none at all, the ratio is 1 if the generated ones have none either and
/// infinite otherwise.
pub fn checker_ratio(fake: &Tensor, real: &Tensor) -> Result<f64> {
    super::same_image_shape(real, fake)?;
    let fake_score = checker_score(fake)?;
    let real_score = checker_score(real)?;
    Ok(if real_score > 0.0 {
        fake_score / real_score
    } else if fake_score > 0.0 {
        f64::INFINITY
    } else {
        1.0
    })
}

/// Mean of the channels of one image, minus its mean.
fn grey_plane(image: &[f32], channels: usize, plane: usize) -> Vec<f64> {
    let mut grey: Vec<f64> = (0..plane)
        .map(|p| (0..channels).map(|c| image[c * plane + p] as f64).sum::<f64>() / channels as f64)
        .collect();
    let mean = grey.iter().sum::<f64>() / plane as f64;
    grey.iter_mut().for_each(|g| *g -= mean);
    grey
}

/// Power at (H/2, W/2), (H/2, 0) and (0, W/2) over the total power of a zero-mean plane.
fn nyquist_share(grey: &[f64], h: usize, w: usize) -> f64 {
    let (mut both, mut vertical, mut horizontal, mut energy) = (0f64, 0f64, 0f64, 0f64);
    for y in 0..h {
        for x in 0..w {
            let g = grey[y * w + x];
            let sy = if y % 2 == 0 { g } else { -g };
            let sx = if x % 2 == 0 { g } else { -g };
            both += if (x + y) % 2 == 0 { g } else { -g };
            vertical += sy;
            horizontal += sx;
            energy += g * g;
        }
    }
    let total = (h * w) as f64 * energy;
    if total > 0.0 {
        (both * both + vertical * vertical + horizontal * horizontal) / total
    } else {
        0.0
    }
}
