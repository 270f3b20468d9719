//! Fréchet Inception distance (FID, Heusel et al. 2017) and kernel Inception distance (KID,
//! Bińkowski et al. 2018) over feature vectors, e.g. the 2048-d `pool3` features of
//! [`FidInception`](super::FidInception).
//!
//! FID = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½), with covariances over N − 1. The trace of the
//! square root is computed without forming (Σ₁Σ₂)^½: with any factor Σ₁ = F·Fᵀ (Cholesky when
//! Σ₁ is positive definite, otherwise V·Λ^½ from its symmetric eigendecomposition with negative
//! rounding noise clipped), the eigenvalues of Σ₁Σ₂ are those of the symmetric positive
//! semi-definite Fᵀ·Σ₂·F, and Tr((Σ₁Σ₂)^½) = Σ √max(λ, 0). Everything is f64; 2048×2048 takes
//! a few seconds.
//!
//! KID is the unbiased squared MMD with the kernel k(x, y) = (xᵀy / d + 1)³, averaged over
//! random subsets; its mean and standard deviation over subsets are reported.
//!
//! The statistics of a real set can be cached on disk with [`FeatureStats::save`] and
//! [`FeatureStats::load`] (a safetensors file with f64 `mean` and `cov`).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use nalgebra::{DMatrix, SymmetricEigen};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use safetensors::tensor::{Dtype as StDtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use super::bad_input;
use crate::error::{AeganError, Result};
use crate::io::write_atomic;

/// Default KID subset size (clipped to the smaller set).
pub const KID_SUBSET_SIZE: usize = 1000;
/// Default number of KID subsets.
pub const KID_SUBSETS: usize = 100;

/// The mean and covariance of a set of feature vectors: what FID compares.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureStats {
    /// Number of feature vectors they were computed from.
    pub n: usize,
    /// Mean vector, length d.
    pub mean: Vec<f64>,
    /// Covariance matrix, d × d row-major, with the N − 1 denominator.
    pub cov: Vec<f64>,
}

impl FeatureStats {
    /// Mean and covariance (N − 1 denominator) of `features` `(N ≥ 2, d)`, in f64.
    pub fn from_features(features: &Tensor) -> Result<Self> {
        let n = match *features.dims() {
            [n, d] if n >= 2 && d >= 1 => n,
            _ => {
                return Err(bad_input(
                    "features",
                    "(N ≥ 2, d) feature vectors",
                    features.dims(),
                ))
            }
        };
        let x = features.to_device(&Device::Cpu)?.to_dtype(DType::F64)?;
        let mean = x.mean_keepdim(0)?;
        let centred = x.broadcast_sub(&mean)?;
        let cov = (centred.t()?.contiguous()?.matmul(&centred)? / (n - 1) as f64)?;
        Ok(FeatureStats {
            n,
            mean: mean.flatten_all()?.to_vec1::<f64>()?,
            cov: cov.flatten_all()?.to_vec1::<f64>()?,
        })
    }

    /// The feature dimension d.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Writes the statistics to a safetensors file (`mean` of shape `[d]`, `cov` of shape `[d, d]`, f64; `n` in the
    /// metadata), atomically: a crash leaves the old file or the new one.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.check("stats")?;
        let d = self.dim();
        let mean_bytes: Vec<u8> = self.mean.iter().flat_map(|v| v.to_le_bytes()).collect();
        let cov_bytes: Vec<u8> = self.cov.iter().flat_map(|v| v.to_le_bytes()).collect();
        let corrupt = |reason: String| AeganError::CorruptCheckpoint {
            path: path.to_path_buf(),
            reason,
        };
        let views = [
            ("cov", TensorView::new(StDtype::F64, vec![d, d], &cov_bytes)),
            ("mean", TensorView::new(StDtype::F64, vec![d], &mean_bytes)),
        ]
        .into_iter()
        .map(|(name, view)| view.map(|v| (name, v)).map_err(|e| corrupt(e.to_string())))
        .collect::<Result<Vec<_>>>()?;
        let metadata = HashMap::from([
            ("format".to_string(), "aegan feature statistics".to_string()),
            ("n".to_string(), self.n.to_string()),
        ]);
        let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| corrupt(e.to_string()))?;
        write_atomic(path, &bytes)
    }

    /// Reads statistics written by [`FeatureStats::save`]; a file that is not one is an
    /// [`AeganError::CorruptCheckpoint`] naming what is wrong.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| AeganError::io(path, e))?;
        let corrupt = |reason: String| AeganError::CorruptCheckpoint {
            path: path.to_path_buf(),
            reason,
        };
        let st = SafeTensors::deserialize(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let read = |name: &str, rank: usize| -> Result<(Vec<usize>, Vec<f64>)> {
            let view = st
                .tensor(name)
                .map_err(|_| corrupt(format!("no tensor `{name}` (not a feature-statistics file?)")))?;
            if view.dtype() != StDtype::F64 || view.shape().len() != rank {
                return Err(corrupt(format!(
                    "tensor `{name}` is {:?} {:?}, expected F64 of rank {rank}",
                    view.dtype(),
                    view.shape()
                )));
            }
            let values = view
                .data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect();
            Ok((view.shape().to_vec(), values))
        };
        let (mean_shape, mean) = read("mean", 1)?;
        let (cov_shape, cov) = read("cov", 2)?;
        let d = mean_shape[0];
        if cov_shape != [d, d] {
            return Err(corrupt(format!("`cov` is {cov_shape:?}, expected [{d}, {d}]")));
        }
        let (_, metadata) = SafeTensors::read_metadata(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let n = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get("n"))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| corrupt("no sample count `n` in the metadata".into()))?;
        Ok(FeatureStats { n, mean, cov })
    }

    /// Checks that the covariance is d × d and every value is finite.
    fn check(&self, what: &'static str) -> Result<()> {
        let d = self.dim();
        if d == 0 || self.cov.len() != d * d {
            return Err(bad_input(
                what,
                "statistics with a d × d covariance, d ≥ 1",
                &[d, self.cov.len()],
            ));
        }
        if !self.mean.iter().chain(&self.cov).all(|v| v.is_finite()) {
            return Err(bad_input(what, "statistics with finite values only", &[d, d]));
        }
        Ok(())
    }
}

/// The Fréchet distance between two feature distributions: ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ −
/// 2(Σ₁Σ₂)^½). 0 for identical statistics; never negative beyond rounding.
pub fn fid(a: &FeatureStats, b: &FeatureStats) -> Result<f64> {
    a.check("a")?;
    b.check("b")?;
    let d = a.dim();
    if b.dim() != d {
        return Err(bad_input(
            "b",
            &format!("statistics of dimension {d}"),
            &[b.dim()],
        ));
    }
    let mean_term: f64 = a.mean.iter().zip(&b.mean).map(|(x, y)| (x - y).powi(2)).sum();
    let trace = |cov: &[f64]| (0..d).map(|i| cov[i * d + i]).sum::<f64>();
    let cross = trace_sqrt_product(&a.cov, &b.cov, d)?;
    Ok(mean_term + trace(&a.cov) + trace(&b.cov) - 2.0 * cross)
}

/// Tr((Σ₁Σ₂)^½) for two symmetric positive semi-definite d × d matrices (row-major).
pub fn trace_sqrt_product(sigma1: &[f64], sigma2: &[f64], d: usize) -> Result<f64> {
    if sigma1.len() != d * d || sigma2.len() != d * d {
        return Err(bad_input(
            "covariance",
            &format!("{d} × {d} matrices"),
            &[sigma1.len(), sigma2.len()],
        ));
    }
    if !sigma1.iter().chain(sigma2).all(|v| v.is_finite()) {
        return Err(bad_input("covariance", "finite values only", &[d, d]));
    }
    let s1 = symmetrised(sigma1, d);
    let s2 = symmetrised(sigma2, d);
    let f = psd_factor(s1)?;
    let m = f.transpose() * (s2 * &f);
    let m = (&m + m.transpose()) * 0.5;
    if !m.iter().all(|v| v.is_finite()) {
        return Err(bad_input(
            "covariance",
            "values small enough to multiply in f64",
            &[d, d],
        ));
    }
    Ok(m.symmetric_eigenvalues().iter().map(|&l| l.max(0.0).sqrt()).sum())
}

/// (A + Aᵀ) / 2 of a row-major d × d matrix.
fn symmetrised(values: &[f64], d: usize) -> DMatrix<f64> {
    let a = DMatrix::from_row_slice(d, d, values);
    (&a + a.transpose()) * 0.5
}

/// F with F·Fᵀ = S for a symmetric positive semi-definite S: the Cholesky factor when S is
/// positive definite, otherwise V·Λ^½ over the positive eigenvalues.
fn psd_factor(s: DMatrix<f64>) -> Result<DMatrix<f64>> {
    if let Some(cholesky) = s.clone().cholesky() {
        return Ok(cholesky.l());
    }
    let d = s.nrows();
    let eigen = SymmetricEigen::try_new(s, f64::EPSILON, 1000 * d.max(1))
        .ok_or_else(|| bad_input("covariance", "a matrix whose eigenvalues converge", &[d, d]))?;
    let keep: Vec<usize> = (0..d).filter(|&i| eigen.eigenvalues[i] > 0.0).collect();
    Ok(DMatrix::from_fn(d, keep.len(), |r, c| {
        eigen.eigenvectors[(r, keep[c])] * eigen.eigenvalues[keep[c]].sqrt()
    }))
}

/// KID over subsets: mean and (population) standard deviation of the subsets' unbiased MMD².
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KidScore {
    /// Mean over subsets.
    pub mean: f64,
    /// Standard deviation over subsets.
    pub std: f64,
}

/// The kernel Inception distance between feature sets `a` `(N_a, d)` and `b` `(N_b, d)`:
/// `subsets` times, draw `m` = min(`subset_size`, N_a, N_b) rows of each without replacement
/// and compute the unbiased MMD² with k(x, y) = (xᵀy / d + 1)³. Deterministic from `seed`.
/// Needs m ≥ 2 and `subsets` ≥ 1 ([`KID_SUBSET_SIZE`] and [`KID_SUBSETS`] are the usual
/// choices).
pub fn kid(a: &Tensor, b: &Tensor, subset_size: usize, subsets: usize, seed: u64) -> Result<KidScore> {
    let (na, d) = feature_dims("a", a)?;
    let (nb, db) = feature_dims("b", b)?;
    if db != d {
        return Err(bad_input("b", &format!("(N, {d}) features like `a`"), b.dims()));
    }
    let m = subset_size.min(na).min(nb);
    if m < 2 || subsets == 0 {
        return Err(bad_input(
            "kid subsets",
            "subset size ≥ 2 and at least one subset",
            &[subset_size, subsets],
        ));
    }
    let a = a.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
    let b = b.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Whole Gram matrices once, when that is cheaper than one product per subset and fits.
    let whole = (na * na + nb * nb + na * nb) <= subsets * 3 * m * m && na.max(nb) * na.max(nb) <= 25_000_000;
    let grams = if whole {
        Some((gram(&a, &a)?, gram(&b, &b)?, gram(&a, &b)?))
    } else {
        None
    };
    let mut values = Vec::with_capacity(subsets);
    for _ in 0..subsets {
        let ia = rand::seq::index::sample(&mut rng, na, m).into_vec();
        let ib = rand::seq::index::sample(&mut rng, nb, m).into_vec();
        let (xx, yy, xy) = match &grams {
            Some((gaa, gbb, gab)) => (gaa.select(&ia, &ia), gbb.select(&ib, &ib), gab.select(&ia, &ib)),
            None => {
                let x = rows(&a, &ia)?;
                let y = rows(&b, &ib)?;
                (gram(&x, &x)?, gram(&y, &y)?, gram(&x, &y)?)
            }
        };
        values.push(unbiased_mmd2(&xx, &yy, &xy, d));
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
    Ok(KidScore {
        mean,
        std: var.sqrt(),
    })
}

/// `(N, d)` of a 2-D feature tensor with N ≥ 1 and d ≥ 1.
fn feature_dims(what: &'static str, features: &Tensor) -> Result<(usize, usize)> {
    match *features.dims() {
        [n, d] if n >= 1 && d >= 1 => Ok((n, d)),
        _ => Err(bad_input(what, "(N, d) feature vectors", features.dims())),
    }
}

/// The rows `index` of a 2-D tensor.
fn rows(t: &Tensor, index: &[usize]) -> Result<Tensor> {
    let index: Vec<u32> = index.iter().map(|&i| i as u32).collect();
    Ok(t.index_select(&Tensor::new(index.as_slice(), t.device())?, 0)?)
}

/// A matrix of dot products, row-major.
struct Gram {
    cols: usize,
    values: Vec<f32>,
}

impl Gram {
    /// The sub-matrix of rows `r` and columns `c`.
    fn select(&self, r: &[usize], c: &[usize]) -> Gram {
        let values = r
            .iter()
            .flat_map(|&i| c.iter().map(move |&j| self.values[i * self.cols + j]))
            .collect();
        Gram {
            cols: c.len(),
            values,
        }
    }
}

/// x·yᵀ for `(n, d)` x and `(m, d)` y.
fn gram(x: &Tensor, y: &Tensor) -> Result<Gram> {
    let product = x.matmul(&y.t()?.contiguous()?)?;
    Ok(Gram {
        cols: product.dim(1)?,
        values: product.flatten_all()?.to_vec1::<f32>()?,
    })
}

/// Unbiased MMD² of two equally large samples from their dot-product matrices, with the
/// cubic polynomial kernel: (Σ_{i≠j} k(x_i, x_j) + Σ_{i≠j} k(y_i, y_j)) / (m(m − 1)) −
/// 2 Σ k(x_i, y_j) / m².
fn unbiased_mmd2(xx: &Gram, yy: &Gram, xy: &Gram, d: usize) -> f64 {
    let m = xx.cols;
    let kernel = |g: f32| (g as f64 / d as f64 + 1.0).powi(3);
    let off_diagonal = |g: &Gram| -> f64 {
        let all: f64 = g.values.iter().map(|&v| kernel(v)).sum();
        let diagonal: f64 = (0..m).map(|i| kernel(g.values[i * m + i])).sum();
        all - diagonal
    };
    let cross: f64 = xy.values.iter().map(|&v| kernel(v)).sum();
    let mf = m as f64;
    (off_diagonal(xx) + off_diagonal(yy)) / (mf * (mf - 1.0)) - 2.0 * cross / (mf * mf)
}
