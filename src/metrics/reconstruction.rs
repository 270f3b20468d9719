//! Reconstruction error of real images through x → E → G.

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::image_dims;
use crate::error::Result;
use crate::nets::Networks;

/// Images passed through E and G at a time.
const BATCH: usize = 64;

/// How well G(E(x)) reproduces x.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Reconstruction {
    /// Mean |G(E(x)) − x| over every pixel and channel, on the [−1, 1] scale.
    pub l1: f64,
    /// Peak signal-to-noise ratio in dB on the [0, 1] scale, from the mean squared error over
    /// the whole set: 10·log10(1 / MSE) (infinite for a perfect reconstruction).
    pub psnr_db: f64,
}

/// L1 and PSNR of `real` images `(N, 3, H, W)` in [−1, 1] through x → E → G, both networks in
/// evaluation mode (running batch-norm statistics), in batches of 64 on the networks' device.
/// A class-conditional model reconstructs G(E(x), y): `labels` holds each image's class.
pub fn reconstruction_error(
    networks: &Networks,
    real: &Tensor,
    labels: Option<&[usize]>,
) -> Result<Reconstruction> {
    let (n, ..) = image_dims("real", real)?;
    networks.labels_for(labels, n)?;
    let device = networks.device().clone();
    let mut abs_sum = 0f64;
    let mut sq_sum = 0f64;
    for start in (0..n).step_by(BATCH) {
        let len = BATCH.min(n - start);
        let x = real
            .narrow(0, start, len)?
            .to_dtype(DType::F32)?
            .to_device(&device)?;
        let y = labels.map(|l| &l[start..start + len]);
        let diff = (crate::model::reconstruct(networks, &x, y)? - &x)?
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F64)?;
        abs_sum += diff.abs()?.sum_all()?.to_scalar::<f64>()?;
        sq_sum += diff.sqr()?.sum_all()?.to_scalar::<f64>()?;
    }
    let count = real.elem_count() as f64;
    // On the [0, 1] scale a difference is half of what it is on [−1, 1].
    let mse01 = sq_sum / count / 4.0;
    Ok(Reconstruction {
        l1: abs_sum / count,
        psnr_db: -10.0 * mse01.log10(),
    })
}
