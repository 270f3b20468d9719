//! Leaky ReLU, optionally after a per-channel bias, as one CPU kernel each way.
//!
//! Composed from candle operations, `leaky_relu(x + b)` is a broadcast add, a scale and a
//! maximum forward, and a comparison, two selections, a strided reduction (for the bias) and a
//! zero-filled buffer per node backward. Fused, the forward reads x once and the backward reads
//! the output and its gradient once.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::channels::expand_channels;
use super::uninit::written_vec;
use super::{contiguous_f32, on_cpu_in_f32};

/// `max(u, slope·u)` for slope in [0, 1): the leaky ReLU, branch-free so that loops over it
/// vectorise (a branch on the sign mispredicts on every other activation).
#[inline]
pub(super) fn leaky(u: f32, slope: f32) -> f32 {
    u.max(slope * u)
}

/// The leaky ReLU's derivative given its output `y`: 1 where y > 0, `slope` elsewhere
/// (branch-free, as [`leaky`]).
#[inline]
pub(super) fn leaky_gain(y: f32, slope: f32) -> f32 {
    let positive = (y > 0.0) as u32 as f32;
    slope + (1.0 - slope) * positive
}

/// `leaky(scale_c·x + shift_c)` over x laid out as planes of `plane` values, plane i in
/// channel i mod C, with `(scale_c, shift_c) = coefficients[c]`, plus, when `noise` is
/// `Some((w, n))`, `w_c·n` with n one plane per sample (plane i in sample i div C): one
/// vectorised pass.
pub(super) fn per_channel_leaky(
    x: &[f32],
    plane: usize,
    coefficients: &[(f32, f32)],
    slope: f32,
    noise: Option<(&[f32], &[f32])>,
) -> Vec<f32> {
    let channels = coefficients.len();
    if plane == 0 || channels == 0 {
        return vec![0f32; x.len()];
    }
    let write = |y: &mut [MaybeUninit<f32>]| {
        y.par_chunks_mut(plane)
            .zip(x.par_chunks(plane))
            .enumerate()
            .for_each(|(i, (y, x))| {
                let (sample, channel) = (i / channels, i % channels);
                let (a, b) = coefficients[channel];
                match noise {
                    None => {
                        for (o, &v) in y.iter_mut().zip(x) {
                            o.write(leaky(a * v + b, slope));
                        }
                    }
                    Some((weight, noise)) => {
                        let wc = weight[channel];
                        let n = &noise[sample * plane..(sample + 1) * plane];
                        for ((o, &v), &e) in y.iter_mut().zip(x).zip(n) {
                            o.write(leaky(a * v + b, slope) + wc * e);
                        }
                    }
                }
            })
    };
    // SAFETY: the planes of `y` pair up with those of `x` (and the sample's noise plane), of
    // the same length, and every value of every plane is written.
    unsafe { written_vec(x.len(), write) }
}

/// Fails unless the leaky ReLU `slope` is in [0, 1), where `max(u, slope·u)` is the leaky ReLU.
pub(super) fn check_slope(slope: f64) -> Result<()> {
    if !(0.0..1.0).contains(&slope) {
        candle_core::bail!("leaky ReLU slope {slope} must be in [0, 1)")
    }
    Ok(())
}

/// Values per parallel task in the element-wise kernels.
const CHUNK: usize = 1 << 14;

/// Fails unless every one of `vectors` has shape (C,) for an input `x` of shape (B, C, …).
fn expect_per_channel(op: &str, x: &Tensor, vectors: &[&Tensor]) -> Result<()> {
    let dims = x.dims();
    if dims.len() < 2 || vectors.iter().any(|v| v.dims() != [dims[1]]) {
        let shapes: Vec<&[usize]> = vectors.iter().map(|v| v.dims()).collect();
        candle_core::bail!("{op}: per-channel {shapes:?} do not match input {dims:?}")
    }
    Ok(())
}

/// A per-channel vector (C,) reshaped to broadcast over `x` of shape (B, C, …).
fn per_channel_view(v: &Tensor, x: &Tensor) -> Result<Tensor> {
    let mut shape = vec![1; x.rank()];
    shape[1] = v.elem_count();
    v.reshape(shape)
}

/// Σ of `t` (B, C, …) over every dimension but the channel one.
fn channel_sums(t: &Tensor) -> Result<Tensor> {
    t.reshape((t.dim(0)?, t.dim(1)?, ()))?.sum(2)?.sum(0)
}

/// Leaky ReLU from candle operations (the generic path): `x` times its gain, 1 where `x > 0`
/// and `slope` elsewhere, the gain a constant. candle's gradient of `max(x, slope·x)` takes
/// two comparisons, two divisions and five more passes; of this product, one multiplication.
pub(crate) fn composed_leaky(x: &Tensor, slope: f64) -> Result<Tensor> {
    let gain = x
        .gt(0.0)?
        .to_dtype(x.dtype())?
        .affine(1.0 - slope, slope)?
        .detach();
    x * gain
}

/// Leaky ReLU `max(x, slope·x)` of any tensor, for `slope` in [0, 1).
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    check_slope(slope)?;
    if !on_cpu_in_f32(&[x]) {
        return composed_leaky(x, slope);
    }
    x.contiguous()?.apply_op1(LeakyRelu(slope as f32))
}

/// tanh of any tensor. On the CPU in f32 one parallel, vectorised pass forward (candle's runs
/// on one thread and calls the C library's `tanhf` per value), within 2 units in the last place
/// of the exact value and the same on every CPU, and one backward, `dy · (1 − y²)` (candle's
/// takes four passes and a zero-filled buffer).
pub fn tanh(x: &Tensor) -> Result<Tensor> {
    if !on_cpu_in_f32(&[x]) {
        return x.tanh();
    }
    x.contiguous()?.apply_op1(Tanh)
}

/// Element-wise tanh; its backward pass is [`OutputGradient`].
struct Tanh;

impl CustomOp1 for Tanh {
    fn name(&self) -> &'static str {
        "aegan-tanh"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, self.name())?;
        Ok((
            CpuStorage::F32(map_values(x, super::vectorised_tanh::tanh)),
            layout.shape().clone(),
        ))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            y.apply_op2_no_bwd(&dy.contiguous()?, &OutputGradient::Tanh)?,
        ))
    }
}

/// `leaky_relu(x + bias)` for `x` of shape (B, C, …) and `bias` of shape (C,).
pub fn bias_leaky_relu(x: &Tensor, bias: &Tensor, slope: f64) -> Result<Tensor> {
    check_slope(slope)?;
    expect_per_channel("bias_leaky_relu", x, &[bias])?;
    if !on_cpu_in_f32(&[x, bias]) {
        return leaky_relu(&(x + expand_channels(bias, x)?)?, slope);
    }
    x.contiguous()?
        .apply_op2(&bias.contiguous()?, BiasLeakyRelu(slope as f32))
}

/// `leaky_relu(scale·x + shift)` with per-channel `scale` and `shift` of shape (C,), for `x` of
/// shape (B, C, …): batch normalisation with fixed statistics (evaluation mode) followed by the
/// activation, in one pass on the CPU.
pub fn scale_shift_leaky_relu(x: &Tensor, scale: &Tensor, shift: &Tensor, slope: f64) -> Result<Tensor> {
    check_slope(slope)?;
    expect_per_channel("scale_shift_leaky_relu", x, &[scale, shift])?;
    if !on_cpu_in_f32(&[x, scale, shift]) {
        let u = ((x * expand_channels(scale, x)?)? + expand_channels(shift, x)?)?;
        return leaky_relu(&u, slope);
    }
    x.contiguous()?.apply_op3(
        &scale.contiguous()?,
        &shift.contiguous()?,
        ScaleShiftLeakyRelu(slope as f32),
    )
}

/// `f(v)` for every value `v` of `x`, in parallel chunks.
fn map_values(x: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    let write = |y: &mut [MaybeUninit<f32>]| {
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| {
                for (o, &v) in y.iter_mut().zip(x) {
                    o.write(f(v));
                }
            })
    };
    // SAFETY: `y` and `x` have the same length and chunks, and every value is written.
    unsafe { written_vec(x.len(), write) }
}

/// `f(a, b)` for every pair of values of `a` and `b` (of one length), in parallel chunks.
fn map_pairs(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "element-wise map: lengths");
    let write = |y: &mut [MaybeUninit<f32>]| {
        y.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .for_each(|(y, (a, b))| {
                for ((o, &u), &v) in y.iter_mut().zip(a).zip(b) {
                    o.write(f(u, v));
                }
            })
    };
    // SAFETY: `y`, `a` and `b` have the same length and chunks, and every value is written.
    unsafe { written_vec(a.len(), write) }
}

/// Element-wise leaky ReLU; its backward pass is [`OutputGradient`].
struct LeakyRelu(f32);

impl CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "aegan-leaky-relu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, self.name())?;
        let y = map_values(x, |v| leaky(v, self.0));
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let dy = dy.contiguous()?;
        Ok(Some(y.apply_op2_no_bwd(&dy, &OutputGradient::Leaky(self.0))?))
    }
}

/// (y, dy) → dx for an activation whose gradient follows from its output y.
#[derive(Debug, Clone, Copy)]
enum OutputGradient {
    /// A leaky ReLU of this slope: `dy · (1 where y > 0, slope elsewhere)`.
    Leaky(f32),
    /// tanh: `dy · (1 − y²)`.
    Tanh,
}

impl CustomOp2 for OutputGradient {
    fn name(&self) -> &'static str {
        match self {
            OutputGradient::Leaky(_) => "aegan-leaky-relu-gradient",
            OutputGradient::Tanh => "aegan-tanh-gradient",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = contiguous_f32(s1, l1, self.name())?;
        let dy = contiguous_f32(s2, l2, self.name())?;
        if l1.shape() != l2.shape() {
            candle_core::bail!("{}: shapes {:?} and {:?}", self.name(), l1.dims(), l2.dims())
        }
        let dx = match *self {
            OutputGradient::Leaky(slope) => map_pairs(y, dy, |yv, g| g * leaky_gain(yv, slope)),
            OutputGradient::Tanh => map_pairs(y, dy, |yv, g| g * (1.0 - yv * yv)),
        };
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// `leaky_relu(x + bias)` with a per-channel bias (dimension 1 of x).
struct BiasLeakyRelu(f32);

impl CustomOp2 for BiasLeakyRelu {
    fn name(&self) -> &'static str {
        "aegan-bias-leaky-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, self.name())?;
        let bias = contiguous_f32(s2, l2, self.name())?;
        let plane = l1.dims()[2..].iter().product::<usize>();
        let coefficients: Vec<(f32, f32)> = bias.iter().map(|&b| (1.0, b)).collect();
        let y = per_channel_leaky(x, plane, &coefficients, self.0, None);
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _bias: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dx = y.apply_op2_no_bwd(&dy, &OutputGradient::Leaky(self.0))?;
        let d_bias = channel_sums(&dx)?;
        Ok((Some(dx), Some(d_bias)))
    }
}

/// `leaky_relu(scale·x + shift)` with per-channel scale and shift (dimension 1 of x).
struct ScaleShiftLeakyRelu(f32);

impl CustomOp3 for ScaleShiftLeakyRelu {
    fn name(&self) -> &'static str {
        "aegan-scale-shift-leaky-relu"
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
        let scale = contiguous_f32(s2, l2, self.name())?;
        let shift = contiguous_f32(s3, l3, self.name())?;
        let plane = l1.dims()[2..].iter().product::<usize>();
        let coefficients: Vec<(f32, f32)> = scale.iter().copied().zip(shift.iter().copied()).collect();
        let y = per_channel_leaky(x, plane, &coefficients, self.0, None);
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    /// Rarely needed (evaluation mode), so composed from candle operations after the fused
    /// activation gradient.
    fn bwd(
        &self,
        x: &Tensor,
        scale: &Tensor,
        _shift: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let du = y.apply_op2_no_bwd(&dy.contiguous()?, &OutputGradient::Leaky(self.0))?;
        let dx = du.broadcast_mul(&per_channel_view(scale, x)?)?;
        let d_scale = channel_sums(&(&du * x)?)?;
        let d_shift = channel_sums(&du)?;
        Ok((Some(dx), Some(d_scale), Some(d_shift)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::TrainRng;
    use candle_core::{DType, Device, Var};

    use crate::ops::{assert_same_gradients, max_abs_diff as max_diff};

    #[test]
    fn fused_bias_and_leaky_relu_match_candle_forward_and_gradients() -> Result<()> {
        let mut rng = TrainRng::new(11);
        let dev = Device::Cpu;
        let x = Var::from_tensor(&rng.test_input((3, 4, 5, 2), &dev)?)?;
        let bias = Var::from_tensor(&Tensor::new(&[0.3f32, -0.2, 0.0, 1.1], &dev)?)?;
        let probe = rng.test_input((3, 4, 5, 2), &dev)?;
        let slope = 0.2;
        let reference = {
            let u = x.broadcast_add(&bias.reshape((1, 4, 1, 1))?)?;
            u.maximum(&u.affine(slope, 0.0)?)?
        };
        for (fused, label) in [
            (bias_leaky_relu(&x, &bias, slope)?, "with bias"),
            (
                leaky_relu(&x.broadcast_add(&bias.reshape((1, 4, 1, 1))?)?, slope)?,
                "leaky only",
            ),
        ] {
            assert!(max_diff(&fused, &reference) < 1e-6, "forward {label}");
            assert_same_gradients(&fused, &reference, &probe, &[&x, &bias], 1e-5, label);
        }
        Ok(())
    }

    #[test]
    fn fused_scale_shift_leaky_relu_matches_candle_forward_and_gradients() -> Result<()> {
        let mut rng = TrainRng::new(12);
        let dev = Device::Cpu;
        let x = Var::from_tensor(&rng.test_input((2, 3, 4, 3), &dev)?)?;
        let scale = Var::from_tensor(&Tensor::new(&[0.5f32, -1.2, 2.0], &dev)?)?;
        let shift = Var::from_tensor(&Tensor::new(&[0.1f32, 0.4, -0.3], &dev)?)?;
        let probe = rng.test_input((2, 3, 4, 3), &dev)?;
        let ours = scale_shift_leaky_relu(&x, &scale, &shift, 0.2)?;
        let reference = {
            let u = x
                .broadcast_mul(&scale.reshape((1, 3, 1, 1))?)?
                .broadcast_add(&shift.reshape((1, 3, 1, 1))?)?;
            u.maximum(&u.affine(0.2, 0.0)?)?
        };
        assert!(max_diff(&ours, &reference) < 1e-6, "forward");
        assert_same_gradients(&ours, &reference, &probe, &[&x, &scale, &shift], 1e-5, "");
        Ok(())
    }

    #[test]
    fn tanh_matches_candle_forward_and_gradient() -> Result<()> {
        let mut rng = TrainRng::new(13);
        let dev = Device::Cpu;
        // Large enough values that tanh saturates, and a length over one parallel chunk.
        let x = Var::from_tensor(&(rng.test_input((3, 2, 60, 50), &dev)? * 3.0)?)?;
        let probe = rng.test_input((3, 2, 60, 50), &dev)?;
        let ours = tanh(&x)?;
        let reference = x.tanh()?;
        // Within 2 units in the last place (of values below 1 in magnitude) of candle's.
        assert!(max_diff(&ours, &reference) <= 2.4e-7, "forward");
        assert_same_gradients(&ours, &reference, &probe, &[&x], 1e-6, "tanh");
        let generic = crate::ops::with_generic_ops(|| tanh(&x))?;
        assert!(max_diff(&generic, &reference) == 0.0, "generic path");
        Ok(())
    }

    #[test]
    fn slopes_outside_zero_to_one_are_refused() {
        let x = Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap();
        assert!(leaky_relu(&x, 1.0).is_err());
        assert!(leaky_relu(&x, -0.1).is_err());
    }
}
