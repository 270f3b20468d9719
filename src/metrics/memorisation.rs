//! Does the model copy its training images? For every generated image, the distance to its
//! nearest training image, compared with the same distance for held-out real images (images
//! of other patients that the model never saw).
//!
//! The **memorisation ratio** is the median nearest-training distance of the generated images
//! over that of the held-out images: ≈ 1 or above when generated images are no closer to the
//! training set than new real images are; well below 1 when some come back as near copies.
//! It works on any vectors per image: flattened pixels, or Inception features. The closest
//! (generated, training) pairs are kept, so that they can be looked at.

use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use super::bad_input;
use super::diversity::median;
use crate::error::Result;

/// Rows of the distance matrix computed at once: bounds memory for large sets.
const BLOCK: usize = 256;
/// Closest pairs kept for inspection.
pub const CLOSEST_PAIRS: usize = 8;

/// The result of [`memorisation`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Memorisation {
    /// Median distance from a generated image to its nearest training image, over the same
    /// for a held-out image: ≥ 0.9 or so means no sign of copying.
    pub ratio: f64,
    /// Median nearest-training distance of the generated images.
    pub generated_median: f64,
    /// Median nearest-training distance of the held-out images.
    pub held_out_median: f64,
    /// Fraction of generated images closer to the training set than the closest 1 % of
    /// held-out images are.
    pub closer_than_held_out_1st_percentile: f64,
    /// The [`CLOSEST_PAIRS`] closest (generated index, training index, distance), closest
    /// first.
    pub closest: Vec<(usize, usize, f64)>,
}

/// The memorisation check on vectors `(N, D)` (or images `(N, C, H, W)`, flattened):
/// `generated` and `held_out` against `train`.
pub fn memorisation(train: &Tensor, generated: &Tensor, held_out: &Tensor) -> Result<Memorisation> {
    let train = rows("train", train)?;
    let generated = rows("generated", generated)?;
    let held_out = rows("held_out", held_out)?;
    if train.dim(1)? != generated.dim(1)? || train.dim(1)? != held_out.dim(1)? {
        return Err(bad_input(
            "generated",
            "vectors of the training vectors' length",
            generated.dims(),
        ));
    }
    let generated_nearest = nearest(&generated, &train)?;
    let held_out_nearest = nearest(&held_out, &train)?;
    let sorted_distances = |values: &[(usize, f64)]| {
        let mut d: Vec<f64> = values.iter().map(|v| v.1).collect();
        d.sort_unstable_by(f64::total_cmp);
        d
    };
    let held_sorted = sorted_distances(&held_out_nearest);
    let generated_median = median(&sorted_distances(&generated_nearest));
    let held_out_median = median(&held_sorted);
    let first_percentile = held_sorted[(held_sorted.len() - 1) / 100];
    let closer = generated_nearest
        .iter()
        .filter(|v| v.1 < first_percentile)
        .count();
    let mut closest: Vec<(usize, usize, f64)> = generated_nearest
        .iter()
        .enumerate()
        .map(|(g, &(t, d))| (g, t, d))
        .collect();
    closest.sort_by(|a, b| a.2.total_cmp(&b.2));
    closest.truncate(CLOSEST_PAIRS);
    Ok(Memorisation {
        ratio: generated_median / held_out_median.max(f64::MIN_POSITIVE),
        generated_median,
        held_out_median,
        closer_than_held_out_1st_percentile: closer as f64 / generated_nearest.len() as f64,
        closest,
    })
}

/// `(N, D)` f32 rows on the CPU from vectors or images; at least one row.
fn rows(what: &'static str, t: &Tensor) -> Result<Tensor> {
    if t.rank() < 2 || t.dim(0)? == 0 {
        return Err(bad_input(
            what,
            "(N ≥ 1, D) vectors or (N ≥ 1, C, H, W) images",
            t.dims(),
        ));
    }
    Ok(t.to_device(&Device::Cpu)?
        .to_dtype(DType::F32)?
        .flatten_from(1)?
        .contiguous()?)
}

/// For each row of `queries`, (index, Euclidean distance) of its nearest row of `train`.
fn nearest(queries: &Tensor, train: &Tensor) -> Result<Vec<(usize, f64)>> {
    let norms =
        |t: &Tensor| -> Result<Vec<f64>> { Ok(t.to_dtype(DType::F64)?.sqr()?.sum(1)?.to_vec1::<f64>()?) };
    let (query_norms, train_norms) = (norms(queries)?, norms(train)?);
    let train_t = train.t()?.contiguous()?;
    let n = queries.dim(0)?;
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(BLOCK) {
        let len = BLOCK.min(n - start);
        let dots = queries
            .narrow(0, start, len)?
            .matmul(&train_t)?
            .to_vec2::<f32>()?;
        for (i, row) in dots.iter().enumerate() {
            let q = query_norms[start + i];
            let best = row
                .iter()
                .enumerate()
                .map(|(j, &g)| (j, (q + train_norms[j] - 2.0 * g as f64).max(0.0)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or((0, f64::INFINITY));
            out.push((best.0, best.1.sqrt()));
        }
    }
    Ok(out)
}
