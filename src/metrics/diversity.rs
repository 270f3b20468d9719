//! Mode collapse: near-duplicates among generated images, and the spread of the generated set.
//!
//! Distances are pixel L2 distances between whole images (all channels), computed with matrix
//! products (‖a‖² + ‖b‖² − 2a·b, on images centred by their set's mean image, which leaves
//! distances unchanged and keeps the cancellation small), a block of rows at a time so that
//! memory stays proportional to the set size. Nearest neighbours cost N² × pixels
//! multiply-adds per set (about 3 GFLOP for 1,000 images at 32×32): seconds for thousands of
//! images, minutes for tens of thousands.

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::{bad_input, image_dims, same_image_shape};
use crate::error::Result;

/// A generated image is a near duplicate when its nearest other generated image is closer than
/// the real set's median nearest-neighbour distance divided by this.
pub const NEAR_DUPLICATE_DIVISOR: f64 = 8.0;
/// Mean pairwise distances use at most this many images of a set (evenly spaced through it).
pub const MAX_PAIRWISE_IMAGES: usize = 1000;
/// Rows of the distance matrix computed at a time.
const BLOCK: usize = 256;

/// For each image `(N ≥ 2, 3, H, W)`, the L2 distance to the nearest other image of the set.
pub fn nearest_neighbour_distances(images: &Tensor) -> Result<Vec<f64>> {
    let set = CentredSet::new("images", images)?;
    let mut nearest = Vec::with_capacity(set.n);
    set.for_each_block(|start, block| {
        nearest.par_extend(block.par_iter().enumerate().map(|(r, row)| {
            let i = start + r;
            let min_sq = row
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(j, &g)| set.squared_distance(i, j, g))
                .fold(f64::INFINITY, f64::min);
            min_sq.sqrt()
        }));
    })?;
    Ok(nearest)
}

/// The mean L2 distance over all pairs of distinct images `(N ≥ 2, 3, H, W)`; with more than
/// [`MAX_PAIRWISE_IMAGES`] images, over the pairs of that many evenly spaced ones.
pub fn mean_pairwise_distance(images: &Tensor) -> Result<f64> {
    let (n, ..) = image_dims("images", images)?;
    let subset = if n > MAX_PAIRWISE_IMAGES {
        let index: Vec<u32> = (0..MAX_PAIRWISE_IMAGES)
            .map(|k| (k * n / MAX_PAIRWISE_IMAGES) as u32)
            .collect();
        let index = Tensor::new(index.as_slice(), images.device())?;
        images.index_select(&index, 0)?
    } else {
        images.clone()
    };
    let set = CentredSet::new("images", &subset)?;
    let mut total = 0f64;
    set.for_each_block(|start, block| {
        total += block
            .par_iter()
            .enumerate()
            .map(|(r, row)| {
                let i = start + r;
                row.iter()
                    .enumerate()
                    .skip(i + 1)
                    .map(|(j, &g)| set.squared_distance(i, j, g).sqrt())
                    .sum::<f64>()
            })
            .sum::<f64>();
    })?;
    Ok(total / (set.n * (set.n - 1) / 2) as f64)
}

/// The fraction of `fake` images whose nearest other fake image is closer than the `real` set's
/// median nearest-neighbour distance / [`NEAR_DUPLICATE_DIVISOR`]: ≈ 0 for a varied set, → 1
/// under mode collapse. Both sets need at least two images of the same shape.
pub fn near_duplicate_fraction(fake: &Tensor, real: &Tensor) -> Result<f64> {
    same_image_shape(real, fake)?;
    let mut real_nearest = nearest_neighbour_distances(real)?;
    real_nearest.sort_unstable_by(f64::total_cmp);
    let threshold = median(&real_nearest) / NEAR_DUPLICATE_DIVISOR;
    let fake_nearest = nearest_neighbour_distances(fake)?;
    let close = fake_nearest.iter().filter(|&&d| d < threshold).count();
    Ok(close as f64 / fake_nearest.len() as f64)
}

/// [`mean_pairwise_distance`] of `fake` over that of `real` (same image shape): ≈ 1 when the
/// generated images are as varied as real ones, < 1 when they are more alike (mode collapse).
/// Fails if the real images are all identical.
pub fn pairwise_distance_ratio(fake: &Tensor, real: &Tensor) -> Result<f64> {
    same_image_shape(real, fake)?;
    let real_mean = mean_pairwise_distance(real)?;
    if real_mean <= 0.0 {
        return Err(bad_input(
            "real",
            "at least two different real images",
            real.dims(),
        ));
    }
    Ok(mean_pairwise_distance(fake)? / real_mean)
}

/// The side [`layout_distance_ratio`] compares images at.
pub const LAYOUT_SIDE: usize = 8;

/// [`pairwise_distance_ratio`] of the images area-downsampled to [`LAYOUT_SIDE`] (those no
/// larger, or of a side it does not divide, as they are): the spread of layout, silhouette and
/// colour, without the texture finer than a block. Per-pixel speckle that differs from image
/// to image raises the pixel ratio of a set that draws one shape over and over; it averages
/// out here, so a set of one silhouette scores well below its pixel ratio.
pub fn layout_distance_ratio(fake: &Tensor, real: &Tensor) -> Result<f64> {
    same_image_shape(real, fake)?;
    let coarse = |images: &Tensor| -> Result<Tensor> {
        let images = images.to_dtype(candle_core::DType::F32)?;
        Ok(crate::ops::downsample_area_to(&images, LAYOUT_SIDE)?)
    };
    pairwise_distance_ratio(&coarse(fake)?, &coarse(real)?)
}

/// The median of sorted values.
pub(super) fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// A set of images as centred rows `(N, D)` on the CPU, with their squared norms.
struct CentredSet {
    n: usize,
    rows: Tensor,
    squared_norms: Vec<f64>,
}

impl CentredSet {
    fn new(what: &'static str, images: &Tensor) -> Result<Self> {
        let (n, ..) = image_dims(what, images)?;
        if n < 2 {
            return Err(bad_input(
                what,
                "at least two images (N ≥ 2, 3, H, W)",
                images.dims(),
            ));
        }
        let rows = images
            .to_device(&Device::Cpu)?
            .to_dtype(candle_core::DType::F32)?
            .flatten_from(1)?;
        let rows = rows.broadcast_sub(&rows.mean_keepdim(0)?)?.contiguous()?;
        let squared_norms = rows
            .to_dtype(candle_core::DType::F64)?
            .sqr()?
            .sum(1)?
            .to_vec1::<f64>()?;
        Ok(CentredSet {
            n,
            rows,
            squared_norms,
        })
    }

    /// Calls `f(first_row, dot_products)` for blocks of rows of the Gram matrix.
    fn for_each_block(&self, mut f: impl FnMut(usize, &[Vec<f32>])) -> Result<()> {
        let all = self.rows.t()?.contiguous()?;
        for start in (0..self.n).step_by(BLOCK) {
            let len = BLOCK.min(self.n - start);
            let gram = self.rows.narrow(0, start, len)?.matmul(&all)?.to_vec2::<f32>()?;
            f(start, &gram);
        }
        Ok(())
    }

    /// ‖x_i − x_j‖² from the dot product `g` = x_i·x_j (never negative).
    fn squared_distance(&self, i: usize, j: usize, g: f32) -> f64 {
        (self.squared_norms[i] + self.squared_norms[j] - 2.0 * g as f64).max(0.0)
    }
}
