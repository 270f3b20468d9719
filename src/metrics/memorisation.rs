//! Does the model copy its training images? For every generated image, the distance to its
//! nearest training image, compared with the same distance for held-out real images (images
//! of other patients that the model never saw).
//!
//! The **memorisation ratio** is the median nearest-training distance of the generated images
//! over that of the held-out images: ≈ 1 or above when generated images are no closer to the
//! training set than new real images are; well below 1 when some come back as near copies.
//!
//! The **copy test** looks at each generated image alone: the distance to its nearest training
//! image over the distance to its second nearest (NN1/NN2, the ratio test of the memorisation
//! literature). A copy of one training image sits far closer to it than to any other, so its
//! ratio is near 0; a new image lies among several training images at similar distances, so
//! its ratio is near 1. The share of generated images below [`COPY_RATIO`] is reported beside
//! the same share for held-out images, which copy nothing.
//!
//! Both work on any vectors per image (flattened pixels, or Inception features) and search
//! every training image, a chunk at a time ([`memorisation_over`]), so that no training image
//! escapes the search whatever the size of the set. The closest (generated, training) pairs
//! and the most copy-like ones are kept, so that they can be looked at.

use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use super::bad_input;
use super::diversity::median;
use crate::error::Result;

/// Rows of the distance matrix computed at once: bounds memory for large sets.
const BLOCK: usize = 256;
/// Training rows compared at once by [`memorisation`] when given all of them as one tensor.
pub const TRAINING_CHUNK: usize = 1024;
/// Closest pairs kept for inspection.
pub const CLOSEST_PAIRS: usize = 8;
/// An NN1/NN2 ratio below this marks a generated image as a likely copy of its nearest
/// training image.
pub const COPY_RATIO: f64 = 1.0 / 3.0;

/// The result of [`memorisation`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Memorisation {
    /// Training images searched (all of them).
    pub training_images: usize,
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
    /// Fraction of generated images whose NN1/NN2 ratio is below [`COPY_RATIO`].
    pub generated_copy_share: f64,
    /// The same fraction for the held-out images (what new images of the same kind give).
    pub held_out_copy_share: f64,
    /// The [`CLOSEST_PAIRS`] closest (generated index, training index, distance), closest
    /// first.
    pub closest: Vec<(usize, usize, f64)>,
    /// The [`CLOSEST_PAIRS`] most copy-like (generated index, training index, NN1/NN2 ratio),
    /// lowest ratio first.
    pub most_copy_like: Vec<(usize, usize, f64)>,
}

/// The memorisation check on vectors `(N, D)` (or images `(N, C, H, W)`, flattened):
/// `generated` and `held_out` against every row of `train`.
pub fn memorisation(train: &Tensor, generated: &Tensor, held_out: &Tensor) -> Result<Memorisation> {
    let n = train.dim(0)?;
    let chunks = (0..n)
        .step_by(TRAINING_CHUNK)
        .map(|start| Ok(train.narrow(0, start, TRAINING_CHUNK.min(n - start))?));
    memorisation_over(chunks, generated, held_out)
}

/// [`memorisation`] with the training rows given as consecutive chunks (training index = the
/// row's position over all chunks): a training set of any size is searched whole while only
/// one chunk of it is held as vectors at a time.
pub fn memorisation_over(
    train_chunks: impl IntoIterator<Item = Result<Tensor>>,
    generated: &Tensor,
    held_out: &Tensor,
) -> Result<Memorisation> {
    let mut generated_nearest = NearestTraining::new(rows("generated", generated)?)?;
    let mut held_out_nearest = NearestTraining::new(rows("held_out", held_out)?)?;
    if generated_nearest.width() != held_out_nearest.width() {
        return Err(bad_input(
            "held_out",
            "vectors of the generated vectors' length",
            held_out.dims(),
        ));
    }
    let mut searched = 0;
    for chunk in train_chunks {
        let chunk = rows("train", &chunk?)?;
        if chunk.dim(1)? != generated_nearest.width() {
            return Err(bad_input(
                "train",
                "vectors of the generated vectors' length",
                chunk.dims(),
            ));
        }
        generated_nearest.add(&chunk, searched)?;
        held_out_nearest.add(&chunk, searched)?;
        searched += chunk.dim(0)?;
    }
    if searched == 0 {
        return Err(bad_input("train", "(N ≥ 1, D) vectors", &[0]));
    }
    let generated_nearest = generated_nearest.neighbours;
    let held_out_nearest = held_out_nearest.neighbours;
    let sorted_distances = |values: &[Neighbours]| {
        let mut d: Vec<f64> = values.iter().map(Neighbours::distance).collect();
        d.sort_unstable_by(f64::total_cmp);
        d
    };
    let held_sorted = sorted_distances(&held_out_nearest);
    let generated_median = median(&sorted_distances(&generated_nearest));
    let held_out_median = median(&held_sorted);
    let first_percentile = held_sorted[(held_sorted.len() - 1) / 100];
    let share = |values: &[Neighbours], keep: &dyn Fn(&Neighbours) -> bool| {
        values.iter().filter(|v| keep(v)).count() as f64 / values.len() as f64
    };
    let copy_like = |v: &Neighbours| v.copy_ratio() < COPY_RATIO;
    let pairs = |key: &dyn Fn(&Neighbours) -> f64| {
        let mut pairs: Vec<(usize, usize, f64)> = generated_nearest
            .iter()
            .enumerate()
            .map(|(g, v)| (g, v.nearest, key(v)))
            .collect();
        pairs.sort_by(|a, b| a.2.total_cmp(&b.2));
        pairs.truncate(CLOSEST_PAIRS);
        pairs
    };
    Ok(Memorisation {
        training_images: searched,
        ratio: generated_median / held_out_median.max(f64::MIN_POSITIVE),
        generated_median,
        held_out_median,
        closer_than_held_out_1st_percentile: share(&generated_nearest, &|v| v.distance() < first_percentile),
        generated_copy_share: share(&generated_nearest, &copy_like),
        held_out_copy_share: share(&held_out_nearest, &copy_like),
        closest: pairs(&Neighbours::distance),
        most_copy_like: pairs(&Neighbours::copy_ratio),
    })
}

/// A query's nearest training row and the squared distances to its nearest and second
/// nearest.
#[derive(Debug, Clone, Copy)]
struct Neighbours {
    nearest: usize,
    first: f64,
    second: f64,
}

impl Neighbours {
    /// Euclidean distance to the nearest training row.
    fn distance(&self) -> f64 {
        self.first.sqrt()
    }

    /// NN1/NN2: 0 for an exact copy (also of an image the training set holds twice), 1 when
    /// there is no second training row to compare with.
    fn copy_ratio(&self) -> f64 {
        if self.second == 0.0 {
            0.0
        } else if self.second.is_infinite() {
            1.0
        } else {
            (self.first / self.second).sqrt()
        }
    }
}

/// The two nearest training rows of every query, updated one chunk of training rows at a
/// time.
struct NearestTraining {
    queries: Tensor,
    query_norms: Vec<f64>,
    neighbours: Vec<Neighbours>,
}

impl NearestTraining {
    fn new(queries: Tensor) -> Result<Self> {
        let query_norms = squared_norms(&queries)?;
        let none = Neighbours {
            nearest: 0,
            first: f64::INFINITY,
            second: f64::INFINITY,
        };
        Ok(NearestTraining {
            neighbours: vec![none; query_norms.len()],
            queries,
            query_norms,
        })
    }

    fn width(&self) -> usize {
        self.queries.dims()[1]
    }

    /// Compares every query with the training rows `chunk`, whose first row has training
    /// index `first_index`.
    ///
    /// The distances that rank the rows come from `|q|² + |t|² − 2 q·t` with f32 products, which
    /// loses the small distances to cancellation (an exact copy of a 16×16 image came out at
    /// 0.013 instead of 0): the two nearest rows of each query are then measured again as
    /// `|q − t|²` in f64, and those are the distances kept.
    fn add(&mut self, chunk: &Tensor, first_index: usize) -> Result<()> {
        let train_norms = squared_norms(chunk)?;
        let chunk_t = chunk.t()?.contiguous()?;
        let n = self.queries.dim(0)?;
        let exact = |block: &Tensor, rows: &[u32]| -> Result<Vec<f64>> {
            let rows = Tensor::new(rows, chunk.device())?;
            let near = chunk.index_select(&rows, 0)?.to_dtype(DType::F64)?;
            Ok((block.to_dtype(DType::F64)? - near)?
                .sqr()?
                .sum(1)?
                .to_vec1::<f64>()?)
        };
        for start in (0..n).step_by(BLOCK) {
            let len = BLOCK.min(n - start);
            let block = self.queries.narrow(0, start, len)?;
            let dots = block.matmul(&chunk_t)?.to_vec2::<f32>()?;
            let (mut firsts, mut seconds) = (Vec::with_capacity(len), Vec::with_capacity(len));
            for (i, row) in dots.iter().enumerate() {
                let q = self.query_norms[start + i];
                let (mut first, mut second) = ((0, f64::INFINITY), (0, f64::INFINITY));
                for (j, &dot) in row.iter().enumerate() {
                    let d = q + train_norms[j] - 2.0 * f64::from(dot);
                    if d < first.1 {
                        second = first;
                        first = (j, d);
                    } else if d < second.1 {
                        second = (j, d);
                    }
                }
                firsts.push(first.0 as u32);
                // A chunk of one row has no second: measure the first twice, then drop it.
                seconds.push(if second.1.is_finite() { second.0 } else { first.0 } as u32);
            }
            let (first_exact, second_exact) = (exact(&block, &firsts)?, exact(&block, &seconds)?);
            let single = chunk.dim(0)? < 2;
            for i in 0..len {
                let best = &mut self.neighbours[start + i];
                let candidates = [
                    (firsts[i] as usize, first_exact[i]),
                    (
                        seconds[i] as usize,
                        if single { f64::INFINITY } else { second_exact[i] },
                    ),
                ];
                for (j, d) in candidates {
                    if d < best.first {
                        best.second = best.first;
                        best.first = d;
                        best.nearest = first_index + j;
                    } else if d < best.second {
                        best.second = d;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Squared Euclidean norm of each row, in f64.
fn squared_norms(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?.sqr()?.sum(1)?.to_vec1::<f64>()?)
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
