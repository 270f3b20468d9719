//! Checkerboard artefacts: the share of an image's power at the Nyquist frequencies.
//!
//! Transposed convolutions with a stride that does not divide the kernel, and some upsampling
//! layers, leave a pattern that alternates from one pixel to the next: power at the highest
//! frequencies a grid can hold. For each image, the grey image g (mean of the three channels)
//! minus its mean is transformed by a 2-D DFT, and the score is the power at the three Nyquist
//! bins (H/2, W/2), (H/2, 0) and (0, W/2) over the total power (Σ |F|² = H·W·Σ g² by
//! Parseval). Only those three bins are computed: each is a sum of the pixels with
//! alternating signs. A set's score is the mean over its images; [`checker_ratio`] compares
//! a generated set with a real one (1: as much Nyquist power as real data).
//!
//! **The image's edges.** The DFT treats an image as periodic, so a difference between its
//! top and bottom rows (or left and right columns) is a jump, and a jump leaks power into
//! every frequency. For a smooth image the leak dominates the axis bins: the alternating sum
//! of the row means is then almost exactly half the difference between the first and the last
//! row. A generator whose lesions sit a little off-centre, or whose skin darkens towards one
//! side, would score as a checkerboard. So the bins are taken of the image's periodic
//! component (Moisan 2011, "Periodic plus smooth image decomposition"): g = p + s, where the
//! smooth part s carries the jumps across the edges. At the three Nyquist bins s has a closed
//! form in the border pixels alone, so the correction costs one pass over the border. A true
//! checkerboard or stripe pattern keeps (1 − 1/H)² or more of its power.

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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
    Ok(ratio(checker_score(fake)?, checker_score(real)?))
}

/// Resamplings behind [`checker_ratio_with_interval`].
pub const BOOTSTRAP_RESAMPLES: usize = 1000;

/// [`checker_ratio`] and its 95 % bootstrap interval, from one scoring of each set: both sets
/// are resampled with replacement [`BOOTSTRAP_RESAMPLES`] times and the 2.5th and 97.5th
/// percentiles of the resampled ratios are the interval. The ratio rests on a tiny share of
/// each image's power and is heavy-tailed across images: with 2,000 HAM10000 lesions a side
/// the interval spans about ±0.08, so a ratio is compared with a target band only together
/// with it. `seed` makes the interval repeatable.
pub fn checker_ratio_with_interval(fake: &Tensor, real: &Tensor, seed: u64) -> Result<(f64, (f64, f64))> {
    super::same_image_shape(real, fake)?;
    let fake_scores = checker_scores(fake)?;
    let real_scores = checker_scores(real)?;
    let mean = |scores: &[f64]| scores.iter().sum::<f64>() / scores.len() as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut resampled_mean = |scores: &[f64]| {
        (0..scores.len())
            .map(|_| scores[rng.random_range(0..scores.len())])
            .sum::<f64>()
            / scores.len() as f64
    };
    let mut ratios: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let fake_mean = resampled_mean(&fake_scores);
            let real_mean = resampled_mean(&real_scores);
            ratio(fake_mean, real_mean)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[(q * (ratios.len() - 1) as f64).round() as usize];
    Ok((
        ratio(mean(&fake_scores), mean(&real_scores)),
        (at(0.025), at(0.975)),
    ))
}

/// Generated over real score, with the conventions of [`checker_ratio`] for a real score of 0.
pub(super) fn ratio(fake_score: f64, real_score: f64) -> f64 {
    if real_score > 0.0 {
        fake_score / real_score
    } else if fake_score > 0.0 {
        f64::INFINITY
    } else {
        1.0
    }
}

/// Mean of the channels of one image, minus its mean.
pub(super) fn grey_plane(image: &[f32], channels: usize, plane: usize) -> Vec<f64> {
    let mut grey: Vec<f64> = (0..plane)
        .map(|p| (0..channels).map(|c| image[c * plane + p] as f64).sum::<f64>() / channels as f64)
        .collect();
    let mean = grey.iter().sum::<f64>() / plane as f64;
    grey.iter_mut().for_each(|g| *g -= mean);
    grey
}

/// Power at (H/2, W/2), (H/2, 0) and (0, W/2) of the periodic component of a zero-mean
/// plane, over the plane's total power.
///
/// With d_r(x) = g(H−1, x) − g(0, x) (bottom row minus top row) and d_c(y) = g(y, W−1) −
/// g(y, 0), the smooth component's transform is S = V / (2 cos 2πk/H + 2 cos 2πl/W − 4),
/// V the transform of the boundary image (d_r on the top row, −d_r on the bottom row, d_c
/// on the left column, −d_c on the right one). At the three bins, for even H and W:
/// S(H/2, 0) = −½ Σₓ d_r(x), S(0, W/2) = −½ Σ_y d_c(y) and
/// S(H/2, W/2) = −¼ [Σₓ (−1)ˣ d_r(x) + Σ_y (−1)ʸ d_c(y)].
fn nyquist_share(grey: &[f64], h: usize, w: usize) -> f64 {
    let alternate = |i: usize, v: f64| if i.is_multiple_of(2) { v } else { -v };
    let (mut both, mut vertical, mut horizontal, mut energy) = (0f64, 0f64, 0f64, 0f64);
    for y in 0..h {
        for x in 0..w {
            let g = grey[y * w + x];
            both += alternate(x + y, g);
            vertical += alternate(y, g);
            horizontal += alternate(x, g);
            energy += g * g;
        }
    }
    let (mut rows_jump, mut rows_jump_alternating) = (0f64, 0f64);
    for x in 0..w {
        let d = grey[(h - 1) * w + x] - grey[x];
        rows_jump += d;
        rows_jump_alternating += alternate(x, d);
    }
    let (mut columns_jump, mut columns_jump_alternating) = (0f64, 0f64);
    for y in 0..h {
        let d = grey[y * w + w - 1] - grey[y * w];
        columns_jump += d;
        columns_jump_alternating += alternate(y, d);
    }
    // Periodic component = plane − smooth component, bin by bin.
    vertical += 0.5 * rows_jump;
    horizontal += 0.5 * columns_jump;
    both += 0.25 * (rows_jump_alternating + columns_jump_alternating);
    let total = (h * w) as f64 * energy;
    if total > 0.0 {
        (both * both + vertical * vertical + horizontal * horizontal) / total
    } else {
        0.0
    }
}
