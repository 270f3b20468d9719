//! Sliced Wasserstein distance (SWD) between two image sets, as defined by Karras et al. 2018
//! (*Progressive Growing of GANs*, appendix D).
//!
//! 1. Each image is decomposed into a Laplacian pyramid with the 5×5 binomial filter
//!    (`[1, 4, 6, 4, 1] / 16` in each direction, mirrored borders), from full resolution down
//!    to 16×16 (the last level is the low-pass image itself).
//! 2. At each level, [`NEIGHBOURHOODS_PER_IMAGE`] random 7×7×3 neighbourhoods are taken from
//!    every image: 147-dimensional descriptors.
//! 3. Each colour channel of a level's descriptors is normalised to mean 0 and standard
//!    deviation 1, separately for each set.
//! 4. The two descriptor sets are projected on [`DIRECTIONS_PER_REPEAT`] random unit
//!    directions, [`DIRECTION_REPEATS`] times; the projections are sorted and the mean absolute
//!    difference of the sorted values is the distance (the 1-D Wasserstein distance, averaged
//!    over directions). It is multiplied by 10³, as in the paper.
//!
//! Small at a fine level: the sets' textures and edges agree; small at 16×16: their large
//! structures and colours agree. The result depends only on the inputs and the seed. Both
//! sets draw their neighbourhood positions from the same stream (common random numbers), so a
//! set against itself scores exactly 0 and exchanging the sets gives the same value. When the
//! sets have different sizes, a seeded random subset of the larger set's descriptors is used,
//! so that both have as many.
//!
//! Memory: about 1.2 kB of descriptors per image and level for each set (e.g. 150 MB for
//! 2 × 10,000 images at one level).

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{bad_input, image_dims, to_cpu_f32_vec};
use crate::error::Result;

/// Side of the square neighbourhoods.
pub const NEIGHBOURHOOD: usize = 7;
/// Neighbourhoods drawn from each image at each level.
pub const NEIGHBOURHOODS_PER_IMAGE: usize = 128;
/// Independent sets of random directions.
pub const DIRECTION_REPEATS: usize = 4;
/// Random directions in each set.
pub const DIRECTIONS_PER_REPEAT: usize = 128;
/// The coarsest pyramid level's side.
pub const MIN_RESOLUTION: usize = 16;
/// The distance is reported multiplied by this factor.
pub const SCALE: f64 = 1e3;

/// Length of a descriptor: 3 channels × 7 × 7.
const DESCRIPTOR: usize = 3 * NEIGHBOURHOOD * NEIGHBOURHOOD;
/// The separable binomial filter.
const BINOMIAL: [f32; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];

/// Random-stream purposes, one stream per level and purpose.
const STREAM_POSITIONS: u64 = 0;
const STREAM_SUBSET: u64 = 1;
const STREAM_DIRECTIONS: u64 = 2;

/// The SWD of two image sets (×10³): one value per pyramid level and their mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwdScore {
    /// `(resolution, distance)` from the finest level (the images' size) to 16×16.
    pub per_level: Vec<(usize, f64)>,
    /// The mean over levels.
    pub mean: f64,
}

/// The sliced Wasserstein distance between `real` and `fake` images `(N, 3, H, W)` (same
/// height and width, both at least 16), deterministic from `seed`. See the module docs.
pub fn swd(real: &Tensor, fake: &Tensor, seed: u64) -> Result<SwdScore> {
    let real_stack = ImageStack::from_tensor("real", real)?;
    let fake_stack = ImageStack::from_tensor("fake", fake)?;
    if (fake_stack.h, fake_stack.w) != (real_stack.h, real_stack.w) {
        return Err(bad_input(
            "fake",
            &format!(
                "images of the real images' size (N, 3, {}, {})",
                real_stack.h, real_stack.w
            ),
            fake.dims(),
        ));
    }
    let levels = pyramid_levels(real_stack.h, real_stack.w);
    let real_pyramid = laplacian_pyramid(real_stack, levels);
    let fake_pyramid = laplacian_pyramid(fake_stack, levels);
    let mut per_level = Vec::with_capacity(levels);
    for (level, (a, b)) in real_pyramid.iter().zip(&fake_pyramid).enumerate() {
        let distance = level_distance(a, b, seed, level as u64)?;
        per_level.push((a.h, distance * SCALE));
    }
    let mean = per_level.iter().map(|(_, d)| d).sum::<f64>() / per_level.len() as f64;
    Ok(SwdScore { per_level, mean })
}

/// The SWD (not scaled) of two pyramid levels.
fn level_distance(a: &ImageStack, b: &ImageStack, seed: u64, level: u64) -> Result<f64> {
    let mut da = descriptors(a, &mut stream(seed, level, STREAM_POSITIONS));
    let mut db = descriptors(b, &mut stream(seed, level, STREAM_POSITIONS));
    let mut subset_rng = stream(seed, level, STREAM_SUBSET);
    let count = da.len().min(db.len()) / DESCRIPTOR;
    da = random_rows(da, count, &mut subset_rng);
    db = random_rows(db, count, &mut subset_rng);
    normalise_channels(&mut da);
    normalise_channels(&mut db);
    sliced_wasserstein(&da, &db, &mut stream(seed, level, STREAM_DIRECTIONS))
}

/// A seeded stream for one pyramid level and purpose.
fn stream(seed: u64, level: u64, purpose: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(level * 16 + purpose);
    rng
}

/// Images `(n, 3, h, w)` as one f32 vector on the CPU.
#[derive(Debug, Clone)]
struct ImageStack {
    n: usize,
    h: usize,
    w: usize,
    data: Vec<f32>,
}

impl ImageStack {
    fn from_tensor(what: &'static str, images: &Tensor) -> Result<Self> {
        let (n, _, h, w) = image_dims(what, images)?;
        if h < MIN_RESOLUTION || w < MIN_RESOLUTION {
            return Err(bad_input(
                what,
                "(N, 3, H, W) images with H, W ≥ 16",
                images.dims(),
            ));
        }
        Ok(ImageStack {
            n,
            h,
            w,
            data: to_cpu_f32_vec(images)?,
        })
    }

    fn plane_len(&self) -> usize {
        self.h * self.w
    }
}

/// Number of pyramid levels: halve while both sides are even and the half is at least 16.
fn pyramid_levels(h: usize, w: usize) -> usize {
    let (mut h, mut w, mut levels) = (h, w, 1);
    while h % 2 == 0 && w % 2 == 0 && h / 2 >= MIN_RESOLUTION && w / 2 >= MIN_RESOLUTION {
        h /= 2;
        w /= 2;
        levels += 1;
    }
    levels
}

/// The Laplacian pyramid: level i is Gaussian level i minus the upsampled Gaussian level
/// i + 1; the last level is the last Gaussian level.
fn laplacian_pyramid(images: ImageStack, levels: usize) -> Vec<ImageStack> {
    let mut gaussian = vec![images];
    for _ in 1..levels {
        let next = pyr_down(&gaussian[gaussian.len() - 1]);
        gaussian.push(next);
    }
    for i in 0..levels - 1 {
        let up = pyr_up(&gaussian[i + 1]);
        gaussian[i]
            .data
            .par_iter_mut()
            .zip(&up.data)
            .for_each(|(v, u)| *v -= u);
    }
    gaussian
}

/// Blur with the binomial filter, then keep every second row and column.
fn pyr_down(images: &ImageStack) -> ImageStack {
    let (h, w) = (images.h, images.w);
    let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
    let mut data = vec![0f32; images.n * 3 * oh * ow];
    data.par_chunks_mut(oh * ow)
        .zip(images.data.par_chunks(images.plane_len()))
        .for_each(|(out, plane)| {
            let blurred = blur(plane, h, w, 1.0);
            for y in 0..oh {
                for x in 0..ow {
                    out[y * ow + x] = blurred[2 * y * w + 2 * x];
                }
            }
        });
    ImageStack {
        n: images.n,
        h: oh,
        w: ow,
        data,
    }
}

/// Insert zeros between rows and columns, then blur with 4 × the binomial filter.
fn pyr_up(images: &ImageStack) -> ImageStack {
    let (h, w) = (images.h, images.w);
    let (oh, ow) = (2 * h, 2 * w);
    let mut data = vec![0f32; images.n * 3 * oh * ow];
    data.par_chunks_mut(oh * ow)
        .zip(images.data.par_chunks(images.plane_len()))
        .for_each(|(out, plane)| {
            let mut spread = vec![0f32; oh * ow];
            for y in 0..h {
                for x in 0..w {
                    spread[2 * y * ow + 2 * x] = plane[y * w + x];
                }
            }
            out.copy_from_slice(&blur(&spread, oh, ow, 2.0));
        });
    ImageStack {
        n: images.n,
        h: oh,
        w: ow,
        data,
    }
}

/// One plane convolved with `gain` × the binomial filter along rows and along columns, borders
/// mirrored without repeating the edge (… c b | a b c … and … x y | z y x …).
fn blur(plane: &[f32], h: usize, w: usize, gain: f32) -> Vec<f32> {
    let taps = BINOMIAL.map(|t| t * gain);
    let mut rows = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            rows[y * w + x] = (0..5)
                .map(|k| taps[k] * plane[y * w + mirror(x as isize + k as isize - 2, w)])
                .sum();
        }
    }
    let mut out = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = (0..5)
                .map(|k| taps[k] * rows[mirror(y as isize + k as isize - 2, h) * w + x])
                .sum();
        }
    }
    out
}

/// Index `i` reflected into `0..n` about the first and last samples.
fn mirror(i: isize, n: usize) -> usize {
    let last = n as isize - 1;
    if last <= 0 {
        return 0;
    }
    let mut i = i;
    while i < 0 || i > last {
        i = if i < 0 { -i } else { 2 * last - i };
    }
    i as usize
}

/// [`NEIGHBOURHOODS_PER_IMAGE`] random 7×7×3 neighbourhoods of every image, laid out
/// `(descriptor, channel, dy, dx)`; positions are drawn image after image.
fn descriptors(images: &ImageStack, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let half = NEIGHBOURHOOD / 2;
    let (h, w) = (images.h, images.w);
    let mut out = Vec::with_capacity(images.n * NEIGHBOURHOODS_PER_IMAGE * DESCRIPTOR);
    for i in 0..images.n {
        for _ in 0..NEIGHBOURHOODS_PER_IMAGE {
            let cy = rng.random_range(half..h - half);
            let cx = rng.random_range(half..w - half);
            for c in 0..3 {
                let plane = &images.data[(i * 3 + c) * h * w..][..h * w];
                for y in cy - half..=cy + half {
                    out.extend_from_slice(&plane[y * w + cx - half..=y * w + cx + half]);
                }
            }
        }
    }
    out
}

/// `count` descriptors chosen at random without replacement (all of them, unchanged, when
/// there are exactly `count`).
fn random_rows(descriptors: Vec<f32>, count: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let available = descriptors.len() / DESCRIPTOR;
    if available == count {
        return descriptors;
    }
    let mut out = Vec::with_capacity(count * DESCRIPTOR);
    for row in rand::seq::index::sample(rng, available, count) {
        out.extend_from_slice(&descriptors[row * DESCRIPTOR..(row + 1) * DESCRIPTOR]);
    }
    out
}

/// Each colour channel to mean 0 and standard deviation 1 over all descriptors (a constant
/// channel is only centred).
fn normalise_channels(descriptors: &mut [f32]) {
    let per_channel = NEIGHBOURHOOD * NEIGHBOURHOOD;
    for c in 0..3 {
        let values = || {
            descriptors
                .chunks(DESCRIPTOR)
                .flat_map(|d| d[c * per_channel..(c + 1) * per_channel].iter())
        };
        let count = (descriptors.len() / DESCRIPTOR * per_channel) as f64;
        let mean = values().map(|&v| v as f64).sum::<f64>() / count;
        let var = values().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / count;
        let std = if var > 0.0 { var.sqrt() } else { 1.0 };
        for d in descriptors.chunks_mut(DESCRIPTOR) {
            for v in &mut d[c * per_channel..(c + 1) * per_channel] {
                *v = ((*v as f64 - mean) / std) as f32;
            }
        }
    }
}

/// Mean over [`DIRECTION_REPEATS`] × [`DIRECTIONS_PER_REPEAT`] random unit directions of the
/// mean absolute difference between the sorted projections of two equally large descriptor
/// sets.
fn sliced_wasserstein(a: &[f32], b: &[f32], rng: &mut ChaCha8Rng) -> Result<f64> {
    let count = a.len() / DESCRIPTOR;
    let a = Tensor::from_slice(a, (count, DESCRIPTOR), &Device::Cpu)?;
    let b = Tensor::from_slice(b, (count, DESCRIPTOR), &Device::Cpu)?;
    let mut total = 0f64;
    for _ in 0..DIRECTION_REPEATS {
        let directions = random_directions(rng)?;
        let pa = sorted_projections(&a, &directions)?;
        let pb = sorted_projections(&b, &directions)?;
        let sum: f64 = pa
            .par_iter()
            .zip(&pb)
            .map(|(x, y)| x.iter().zip(y).map(|(u, v)| (u - v).abs() as f64).sum::<f64>())
            .sum();
        total += sum / (count * DIRECTIONS_PER_REPEAT) as f64;
    }
    Ok(total / DIRECTION_REPEATS as f64)
}

/// `(147, 128)` normally distributed directions, each column scaled to unit length.
fn random_directions(rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let mut values: Vec<f64> = (0..DESCRIPTOR * DIRECTIONS_PER_REPEAT)
        .map(|_| StandardNormal.sample(rng))
        .collect();
    for j in 0..DIRECTIONS_PER_REPEAT {
        let norm = (0..DESCRIPTOR)
            .map(|i| values[i * DIRECTIONS_PER_REPEAT + j].powi(2))
            .sum::<f64>()
            .sqrt();
        for i in 0..DESCRIPTOR {
            values[i * DIRECTIONS_PER_REPEAT + j] /= norm;
        }
    }
    let values: Vec<f32> = values.into_iter().map(|v| v as f32).collect();
    Ok(Tensor::from_vec(
        values,
        (DESCRIPTOR, DIRECTIONS_PER_REPEAT),
        &Device::Cpu,
    )?)
}

/// For each direction, the descriptors' projections on it in ascending order.
fn sorted_projections(descriptors: &Tensor, directions: &Tensor) -> Result<Vec<Vec<f32>>> {
    let mut projections = descriptors
        .matmul(directions)?
        .t()?
        .contiguous()?
        .to_vec2::<f32>()?;
    projections
        .par_iter_mut()
        .for_each(|p| p.sort_unstable_by(f32::total_cmp));
    Ok(projections)
}
