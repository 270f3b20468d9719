//! `x + weight_c · noise_b`: a noise image per sample, scaled per channel and added to every
//! channel (G's per-pixel noise), as one CPU kernel each way.
//!
//! Composed from candle operations it is a broadcast multiply (a strided pass that makes a
//! full-size tensor) and an add forward, and a broadcast multiply and a reduction backward:
//! at 32×32 about a seventh of a training step. Fused, the forward reads x once, and the
//! backward passes the output gradient through as x's and reduces it once for the weight's.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::tap_gather::channel_major;
use super::uninit::written_vec;
use super::{contiguous_f32, on_cpu_in_f32};

/// `x` (B, C, H, W) plus `weight` (C values, any shape) times `noise` (B, 1, H, W), broadcast
/// over the channels. The noise is a constant: no gradient reaches it.
pub fn add_scaled_noise(x: &Tensor, weight: &Tensor, noise: &Tensor) -> Result<Tensor> {
    check_noise_shapes("add_scaled_noise", x, weight, noise)?;
    let (b, c, h, w) = x.dims4()?;
    let noise = noise.detach();
    if !on_cpu_in_f32(&[x, weight, &noise]) {
        // The outer product of every pixel's noise with the weights, one product for the batch
        // (the weight's gradient a product too, not a reduction of a broadcast), read
        // channel-major.
        let scaled = noise.reshape((b * h * w, 1))?.matmul(&weight.reshape((1, c))?)?;
        return x + channel_major(&scaled, b, (h, w))?;
    }
    x.contiguous()?.apply_op3(
        &weight.flatten_all()?.contiguous()?,
        &noise.contiguous()?,
        AddScaledNoise,
    )
}

/// Fails unless `weight` holds one value per channel of `x` `(batch, channels, h, w)` and
/// `noise` is `(batch, 1, h, w)`; `op` names the operation in the message.
pub(super) fn check_noise_shapes(op: &str, x: &Tensor, weight: &Tensor, noise: &Tensor) -> Result<()> {
    let (b, c, h, w) = x.dims4()?;
    if weight.elem_count() != c || noise.dims() != [b, 1, h, w] {
        candle_core::bail!(
            "{op}: noise weight of {} values and noise {:?} for features {:?}",
            weight.elem_count(),
            noise.dims(),
            x.dims()
        );
    }
    Ok(())
}

struct AddScaledNoise;

impl CustomOp3 for AddScaledNoise {
    fn name(&self) -> &'static str {
        "aegan-add-scaled-noise"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, self.name())?;
        let weight = contiguous_f32(s2, l2, self.name())?;
        let noise = contiguous_f32(s3, l3, self.name())?;
        let channels = weight.len();
        let plane = l1.dims()[2..].iter().product::<usize>();
        if plane == 0 {
            return Ok((CpuStorage::F32(Vec::new()), l1.shape().clone()));
        }
        let write = |y: &mut [MaybeUninit<f32>]| {
            y.par_chunks_mut(plane)
                .zip(x.par_chunks(plane))
                .enumerate()
                .for_each(|(i, (y, x))| {
                    let (sample, channel) = (i / channels, i % channels);
                    let n = &noise[sample * plane..(sample + 1) * plane];
                    let w = weight[channel];
                    for ((o, &v), &e) in y.iter_mut().zip(x).zip(n) {
                        o.write(v + w * e);
                    }
                })
        };
        // SAFETY: each plane of `y` is zipped with the plane of `x` and the sample's noise
        // plane, both of its length, and written whole.
        let y = unsafe { written_vec(x.len(), write) };
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        weight: &Tensor,
        noise: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let d_weight = dy.apply_op2_no_bwd(noise, &WeightGradient)?;
        Ok((Some(dy), Some(d_weight.reshape(weight.shape())?), None))
    }
}

/// Σ over samples and pixels of `dy · noise`, per channel: the weight's gradient.
struct WeightGradient;

impl candle_core::CustomOp2 for WeightGradient {
    fn name(&self) -> &'static str {
        "aegan-scaled-noise-weight-gradient"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dy = contiguous_f32(s1, l1, self.name())?;
        let noise = contiguous_f32(s2, l2, self.name())?;
        let (b, c) = (l1.dims()[0], l1.dims()[1]);
        let plane = l1.dims()[2..].iter().product::<usize>();
        let sums: Vec<f32> = (0..c)
            .into_par_iter()
            .map(|channel| {
                (0..b)
                    .map(|sample| {
                        let start = (sample * c + channel) * plane;
                        let n = &noise[sample * plane..(sample + 1) * plane];
                        dy[start..start + plane]
                            .iter()
                            .zip(n)
                            .map(|(g, e)| g * e)
                            .sum::<f32>()
                    })
                    .sum()
            })
            .collect();
        Ok((CpuStorage::F32(sums), Shape::from(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::TrainRng;
    use candle_core::{Device, Var};

    use crate::ops::{assert_same_gradients, max_abs_diff};

    #[test]
    fn fused_noise_matches_candle_forward_and_gradients() -> Result<()> {
        let mut rng = TrainRng::new(11);
        let dev = Device::Cpu;
        let x = Var::from_tensor(&rng.test_input((3, 4, 5, 2), &dev)?)?;
        let weight = Var::from_tensor(&Tensor::new(&[[[[0.3f32]], [[-0.2]], [[0.0]], [[1.1]]]], &dev)?)?;
        let noise = rng.test_input((3, 1, 5, 2), &dev)?;
        let probe = rng.test_input((3, 4, 5, 2), &dev)?;
        let reference = x.broadcast_add(&noise.broadcast_mul(weight.as_tensor())?)?;
        let fused = add_scaled_noise(&x, &weight, &noise)?;
        assert!(max_abs_diff(&fused, &reference) < 1e-6);
        assert_same_gradients(&fused, &reference, &probe, &[&x, &weight], 1e-5, "noise");
        let generic = crate::ops::with_generic_ops(|| add_scaled_noise(&x, &weight, &noise))?;
        assert!(max_abs_diff(&generic, &reference) < 1e-6);
        Ok(())
    }

    #[test]
    fn noise_of_the_wrong_shape_is_refused() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((2, 3, 4, 4), candle_core::DType::F32, &dev).unwrap();
        let weight = Tensor::zeros(3, candle_core::DType::F32, &dev).unwrap();
        let noise = Tensor::zeros((2, 3, 4, 4), candle_core::DType::F32, &dev).unwrap();
        assert!(add_scaled_noise(&x, &weight, &noise).is_err());
    }
}
