//! Improved precision and recall (Kynkäänniemi et al. 2019): FID mixes two failures into one
//! number, images unlike any real one (low precision) and real images that no generated one
//! resembles (low recall: the collapse of "one shape per class"). Each set's manifold is the
//! union of balls around its points, each ball reaching the point's k-th nearest neighbour in
//! its own set (k = 3); precision is the share of generated points inside the real manifold,
//! recall the share of real points inside the generated one. Computed on Inception features.

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use serde::Serialize;

use super::bad_input;
use crate::error::Result;

/// The k of the k-nearest-neighbour balls (the paper's choice).
pub const NEIGHBOURS: usize = 3;
/// Rows of a distance matrix computed at a time.
const BLOCK: usize = 256;

/// Precision and recall of a generated set against a real one, each in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PrecisionRecall {
    /// Share of generated points within some real point's ball.
    pub precision: f64,
    /// Share of real points within some generated point's ball.
    pub recall: f64,
}

/// Precision and recall of `fake` against `real`, vectors `(N, D)` (Inception features), with
/// balls to the [`NEIGHBOURS`]-th nearest neighbour. Each set needs more than
/// [`NEIGHBOURS`] points.
pub fn precision_recall(real: &Tensor, fake: &Tensor) -> Result<PrecisionRecall> {
    let real = Points::new("real", real)?;
    let fake = Points::new("fake", fake)?;
    if real.width() != fake.width() {
        return Err(bad_input(
            "fake",
            "vectors of the real vectors' length",
            fake.rows.dims(),
        ));
    }
    let real_radii = real.kth_neighbour_distances()?;
    let fake_radii = fake.kth_neighbour_distances()?;
    Ok(PrecisionRecall {
        precision: fake.share_inside(&real, &real_radii)?,
        recall: real.share_inside(&fake, &fake_radii)?,
    })
}

/// Points as rows `(N, D)` f32 on the CPU, with their squared norms in f64.
struct Points {
    rows: Tensor,
    squared_norms: Vec<f64>,
}

impl Points {
    fn new(what: &'static str, t: &Tensor) -> Result<Self> {
        if t.rank() != 2 || t.dim(0)? <= NEIGHBOURS {
            return Err(bad_input(
                what,
                &format!("(N > {NEIGHBOURS}, D) feature vectors"),
                t.dims(),
            ));
        }
        let rows = t.to_device(&Device::Cpu)?.to_dtype(DType::F32)?.contiguous()?;
        let squared_norms = rows.to_dtype(DType::F64)?.sqr()?.sum(1)?.to_vec1::<f64>()?;
        Ok(Points { rows, squared_norms })
    }

    fn width(&self) -> usize {
        self.rows.dims()[1]
    }

    /// Calls `f(first_row, squared distances)` for blocks of rows of the distances from
    /// these points to `other`'s.
    fn for_each_block(&self, other: &Points, mut f: impl FnMut(usize, Vec<Vec<f64>>)) -> Result<()> {
        let other_t = other.rows.t()?.contiguous()?;
        let n = self.squared_norms.len();
        for start in (0..n).step_by(BLOCK) {
            let len = BLOCK.min(n - start);
            let dots = self
                .rows
                .narrow(0, start, len)?
                .matmul(&other_t)?
                .to_vec2::<f32>()?;
            let distances = dots
                .into_par_iter()
                .enumerate()
                .map(|(r, row)| {
                    let a = self.squared_norms[start + r];
                    row.iter()
                        .zip(&other.squared_norms)
                        .map(|(&dot, &b)| (a + b - 2.0 * f64::from(dot)).max(0.0))
                        .collect()
                })
                .collect();
            f(start, distances);
        }
        Ok(())
    }

    /// Each point's squared distance to its [`NEIGHBOURS`]-th nearest other point.
    fn kth_neighbour_distances(&self) -> Result<Vec<f64>> {
        let mut radii = Vec::with_capacity(self.squared_norms.len());
        self.for_each_block(self, |start, block| {
            radii.extend(block.into_iter().enumerate().map(|(r, mut row)| {
                // The point itself is at distance 0: drop it, then take the k-th smallest.
                row.swap_remove(start + r);
                let (_, kth, _) = row.select_nth_unstable_by(NEIGHBOURS - 1, f64::total_cmp);
                *kth
            }));
        })?;
        Ok(radii)
    }

    /// The share of these points within some ball of `other` (squared radii `radii`).
    fn share_inside(&self, other: &Points, radii: &[f64]) -> Result<f64> {
        let mut inside = 0usize;
        self.for_each_block(other, |_, block| {
            inside += block
                .iter()
                .filter(|row| row.iter().zip(radii).any(|(d, r)| d <= r))
                .count();
        })?;
        Ok(inside as f64 / self.squared_norms.len() as f64)
    }
}
