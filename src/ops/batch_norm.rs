//! Training-mode batch normalisation followed by a leaky ReLU, fused into one CPU kernel with a
//! hand-written backward pass.
//!
//! Composed from candle operations, batch norm + leaky ReLU costs about fifteen passes over the
//! activations per forward and backward (transposes, reductions over a strided axis,
//! broadcasts, and a zero-filled buffer for every accumulated gradient); in a profile of the
//! lean training step those were a third of the time. Fused, the forward reads the input three
//! times and writes once, the backward reads three tensors twice and writes once.
//!
//! With u = γ·x̂ + β, x̂ = (x − μ)/σ, σ = √(var + ε) (biased variance over batch and pixels, m
//! values per channel), and y = max(u, slope·u):
//!
//! ```text
//! du = dy · (1 if y > 0 else slope)
//! dβ = Σ du        dγ = Σ du·x̂
//! dx = (γ/σ) · (du − dβ/m − x̂·dγ/m)
//! ```
//!
//! [`batch_norm_leaky_relu_plus_noise`] adds G's per-pixel noise to the output in the same
//! kernel (out = y + w_c·n, dw_c = Σ dy·n). The backward pass reads the sign of u from x and
//! the batch statistics instead of from y, so y itself is never stored: composed from this
//! kernel and [`add_scaled_noise`](super::add_scaled_noise), y was kept for the whole step as
//! the noise operation's input, one activation tensor per noised layer of G (a tenth of a
//! lean training step's peak memory).

use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

use super::activation::{check_slope, leaky_gain, per_channel_leaky};
use super::channels::{channel_sum, expand_channels};
use super::uninit::written_vec;
use super::{contiguous_f32, on_cpu_in_f32};

/// Batch norm over (batch, height, width) in training mode, then leaky ReLU with `slope`.
/// Returns the output and the batch statistics per channel (mean, biased variance), detached,
/// for the running averages. `x` is `(batch, channels, h, w)`; `weight` and `bias` are
/// `(channels,)`. On the CPU with f32 this is one fused kernel; elsewhere candle operations.
pub fn batch_norm_leaky_relu(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    slope: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    check_slope(slope)?;
    if !on_cpu_in_f32(&[x, weight, bias]) {
        return composed(x, weight, bias, eps, slope);
    }
    let op = FusedBatchNormLeakyRelu::new(eps, slope, None);
    run_fused(x, weight, &bias.contiguous()?, op)
}

/// [`batch_norm_leaky_relu`], then `noise` `(batch, 1, h, w)` scaled by `noise_weight`
/// (`channels` values, any shape) added to every channel, as
/// [`add_scaled_noise`](super::add_scaled_noise) does; the noise is a constant. On the CPU
/// with f32 one fused kernel, which keeps one activation tensor fewer for the backward pass
/// than the two operations one after the other; elsewhere those two operations.
pub fn batch_norm_leaky_relu_plus_noise(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    noise_weight: &Tensor,
    noise: &Tensor,
    eps: f64,
    slope: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    check_slope(slope)?;
    super::noise::check_noise_shapes("batch norm plus noise", x, noise_weight, noise)?;
    if !on_cpu_in_f32(&[x, weight, bias, noise_weight, noise]) {
        let (y, mean, var) = composed(x, weight, bias, eps, slope)?;
        return Ok((super::add_scaled_noise(&y, noise_weight, noise)?, mean, var));
    }
    let noise_values: Vec<f32> = noise.flatten_all()?.to_vec1()?;
    let op = FusedBatchNormLeakyRelu::new(eps, slope, Some(noise_values));
    // β and the noise weight travel as one argument (a custom operation takes three), the
    // noise itself inside the operation: it gets no gradient.
    let bias_and_noise_weight = Tensor::cat(&[bias.flatten_all()?, noise_weight.flatten_all()?], 0)?;
    run_fused(x, weight, &bias_and_noise_weight, op)
}

/// Applies `op` to `x`, γ and its third argument; returns the output and the batch statistics.
fn run_fused(
    x: &Tensor,
    weight: &Tensor,
    third: &Tensor,
    op: FusedBatchNormLeakyRelu,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (_, c, _, _) = x.dims4()?;
    let statistics = op.saved.clone();
    let y = x.contiguous()?.apply_op3(&weight.contiguous()?, third, op)?;
    let saved = read_saved(&statistics)?;
    let mean = Tensor::from_vec(saved.mean, c, x.device())?;
    let var = Tensor::from_vec(saved.var, c, x.device())?;
    Ok((y, mean, var))
}

/// The same computation from candle operations (other devices, and the tests' reference).
pub(crate) fn composed(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    slope: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (_, c, _, _) = x.dims4()?;
    let count = (x.elem_count() / c) as f64;
    let mean = (channel_sum(x)? / count)?;
    let centered = (x - expand_channels(&mean, x)?)?;
    let var = (channel_sum(&centered.sqr()?)? / count)?;
    let scale = (weight / (&var + eps)?.sqrt()?)?;
    let u = ((centered * expand_channels(&scale, x)?)? + expand_channels(bias, x)?)?;
    let y = super::activation::composed_leaky(&u, slope)?;
    Ok((y, mean.detach(), var.detach()))
}

/// Three sums that add up component-wise (for [`per_channel`]).
struct Sum3(f64, f64, f64);

impl std::iter::Sum for Sum3 {
    fn sum<I: Iterator<Item = Sum3>>(iter: I) -> Self {
        iter.fold(Sum3(0.0, 0.0, 0.0), |a, b| Sum3(a.0 + b.0, a.1 + b.1, a.2 + b.2))
    }
}

#[derive(Debug, Clone)]
struct Saved {
    mean: Vec<f32>,
    var: Vec<f32>,
    inv_std: Vec<f32>,
    /// `(a, b)` per channel with u = a·x + b, exactly as the forward pass computed u: the
    /// backward pass recomputes u's sign from them.
    coefficients: Vec<(f32, f32)>,
}

struct FusedBatchNormLeakyRelu {
    eps: f64,
    slope: f32,
    /// G's per-pixel noise, one plane per sample, added after the activation; its per-channel
    /// weight follows β in the third argument.
    noise: Option<Vec<f32>>,
    /// The forward's statistics: read back by the caller and by the backward pass.
    saved: Arc<Mutex<Option<Saved>>>,
}

impl FusedBatchNormLeakyRelu {
    fn new(eps: f64, slope: f64, noise: Option<Vec<f32>>) -> Self {
        FusedBatchNormLeakyRelu {
            eps,
            slope: slope as f32,
            noise,
            saved: Arc::new(Mutex::new(None)),
        }
    }

    /// The number of values the third argument holds for `c` channels: β, and the noise
    /// weight after it when there is noise.
    fn third_len(&self, c: usize) -> usize {
        match self.noise {
            Some(_) => 2 * c,
            None => c,
        }
    }
}

fn read_saved(saved: &Mutex<Option<Saved>>) -> Result<Saved> {
    // A poisoned lock only means a panic elsewhere; the data is still whole.
    let guard = saved.lock().unwrap_or_else(|e| e.into_inner());
    match guard.as_ref() {
        Some(s) => Ok(s.clone()),
        None => candle_core::bail!("fused batch norm: statistics read before the forward pass"),
    }
}

/// Runs `f` on the f32 data of a contiguous CPU tensor.
fn with_cpu_data<T>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<T>) -> Result<T> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => f(contiguous_f32(cpu, layout, "fused batch norm")?),
        _ => candle_core::bail!("fused batch norm: expected a CPU tensor"),
    }
}

/// Lanes of the partial sums below: wide enough for the compiler to keep them in vector
/// registers (the sums are then exact enough in f32 within one plane, and f64 across planes).
const LANES: usize = 16;

/// `Σ f(xᵢ)` over a slice, in [`LANES`] f32 partial sums, returned as f64.
#[inline]
fn lane_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut lanes = [0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += f(v);
        }
    }
    lanes.iter().map(|&l| l as f64).sum::<f64>() + tail as f64
}

/// The leaky ReLU's derivative at u = a·x + b: 1 where u > 0, `slope` elsewhere (where the
/// output y = max(u, slope·u) is positive exactly when u is, for slope in [0, 1)).
#[inline]
fn gain_at(x: f32, (a, b): (f32, f32), slope: f32) -> f32 {
    leaky_gain(a * x + b, slope)
}

/// `(Σ du, Σ du·(x − μ), Σ dy·n)` over one plane, with du = dy where u > 0 and slope·dy
/// elsewhere, and n the sample's noise plane (the last sum 0 without noise).
#[inline]
fn gradient_sums(
    x: &[f32],
    dy: &[f32],
    noise: Option<&[f32]>,
    mu: f32,
    coefficients: (f32, f32),
    slope: f32,
) -> (f64, f64, f64) {
    let (mut sum_du, mut sum_du_x) = ([0f32; LANES], [0f32; LANES]);
    let mut tail = (0f64, 0f64);
    let mut chunks = x.chunks_exact(LANES).zip(dy.chunks_exact(LANES));
    for (xc, dc) in chunks.by_ref() {
        for i in 0..LANES {
            let du = dc[i] * gain_at(xc[i], coefficients, slope);
            sum_du[i] += du;
            sum_du_x[i] += du * (xc[i] - mu);
        }
    }
    let done = x.len() / LANES * LANES;
    for i in done..x.len() {
        let du = dy[i] * gain_at(x[i], coefficients, slope);
        tail.0 += du as f64;
        tail.1 += (du * (x[i] - mu)) as f64;
    }
    let total = |lanes: [f32; LANES]| lanes.iter().map(|&l| l as f64).sum::<f64>();
    let noise_sum = match noise {
        Some(n) => dot(dy, n),
        None => 0.0,
    };
    (total(sum_du) + tail.0, total(sum_du_x) + tail.1, noise_sum)
}

/// `Σ aᵢ·bᵢ` in [`LANES`] f32 partial sums, returned as f64.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f64 {
    let mut lanes = [0f32; LANES];
    let chunks = a.chunks_exact(LANES).zip(b.chunks_exact(LANES));
    let done = a.len().min(b.len()) / LANES * LANES;
    for (ac, bc) in chunks {
        for i in 0..LANES {
            lanes[i] += ac[i] * bc[i];
        }
    }
    let tail: f64 = a[done..]
        .iter()
        .zip(&b[done..])
        .map(|(x, y)| (x * y) as f64)
        .sum();
    lanes.iter().map(|&l| l as f64).sum::<f64>() + tail
}

/// Per-channel sums of `f(channel, plane)` over every (batch, channel) plane of `data`
/// (`n` images of `c` planes), in parallel over channels.
fn per_channel<T, F>(data: &[f32], n: usize, c: usize, f: F) -> Vec<T>
where
    T: std::iter::Sum<T> + Send,
    F: Fn(usize, std::ops::Range<usize>) -> T + Sync,
{
    let plane = data.len() / (n * c).max(1);
    (0..c)
        .into_par_iter()
        .map(|ch| {
            (0..n)
                .map(|b| {
                    let start = (b * c + ch) * plane;
                    f(ch, start..start + plane)
                })
                .sum()
        })
        .collect()
}

impl CustomOp3 for FusedBatchNormLeakyRelu {
    fn name(&self) -> &'static str {
        "aegan-batch-norm-leaky-relu"
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
        let gamma = contiguous_f32(s2, l2, self.name())?;
        let third = contiguous_f32(s3, l3, self.name())?;
        let (n, c, h, w) = l1.shape().dims4()?;
        let plane = h * w;
        if gamma.len() != c || third.len() != self.third_len(c) {
            candle_core::bail!(
                "fused batch norm: {c} channels but {} weights and {} biases and noise weights",
                gamma.len(),
                third.len()
            )
        }
        if let Some(noise) = &self.noise {
            if noise.len() != n * plane {
                candle_core::bail!(
                    "fused batch norm: {} noise values for {n} planes of {plane}",
                    noise.len()
                )
            }
        }
        let beta = &third[..c];
        let m = (n * plane) as f64;
        let sums: Vec<f64> = per_channel(x, n, c, |_, r| lane_sum(&x[r], |v| v));
        let mean: Vec<f64> = sums.iter().map(|s| s / m).collect();
        let squares: Vec<f64> = per_channel(x, n, c, |ch, r| {
            let mu = mean[ch] as f32;
            lane_sum(&x[r], |v| (v - mu) * (v - mu))
        });
        let var: Vec<f64> = squares.iter().map(|s| s / m).collect();
        let inv_std: Vec<f64> = var.iter().map(|v| 1.0 / (v + self.eps).sqrt()).collect();
        // y = lrelu(a·x + b) with a = γ/σ and b = β − μ·a.
        let coefficients: Vec<(f32, f32)> = (0..c)
            .map(|ch| {
                let a = gamma[ch] as f64 * inv_std[ch];
                (a as f32, (beta[ch] as f64 - mean[ch] * a) as f32)
            })
            .collect();
        let noise = self.noise.as_deref().map(|n| (&third[c..], n));
        let y = per_channel_leaky(x, plane, &coefficients, self.slope, noise);
        let mut saved = self.saved.lock().unwrap_or_else(|e| e.into_inner());
        *saved = Some(Saved {
            mean: mean.iter().map(|&v| v as f32).collect(),
            var: var.iter().map(|&v| v as f32).collect(),
            inv_std: inv_std.iter().map(|&v| v as f32).collect(),
            coefficients,
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _third: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let saved = read_saved(&self.saved)?;
        let (n, c, h, w) = x.dims4()?;
        let plane = h * w;
        let m = (n * plane) as f64;
        let slope = self.slope;
        let noise = self.noise.as_deref();
        let (x, dy, gamma) = (x.contiguous()?, dy.contiguous()?, gamma.contiguous()?);
        let gamma: Vec<f32> = gamma.to_vec1()?;
        let (dx, d_gamma, d_beta, d_noise_weight) = with_cpu_data(&x, |x| {
            with_cpu_data(&dy, |dy| {
                let sums: Vec<Sum3> = per_channel(x, n, c, |ch, r| {
                    let sample = r.start / (c * plane).max(1);
                    let noise = noise.map(|n| &n[sample * plane..(sample + 1) * plane]);
                    let coefficients = saved.coefficients[ch];
                    let (du, du_x, dy_n) =
                        gradient_sums(&x[r.clone()], &dy[r], noise, saved.mean[ch], coefficients, slope);
                    Sum3(du, du_x, dy_n)
                });
                let d_beta: Vec<f64> = sums.iter().map(|s| s.0).collect();
                let d_gamma: Vec<f64> = sums
                    .iter()
                    .zip(&saved.inv_std)
                    .map(|(s, &inv)| s.1 * inv as f64)
                    .collect();
                let d_noise_weight: Vec<f64> = sums.iter().map(|s| s.2).collect();
                let write = |dx: &mut [MaybeUninit<f32>]| {
                    dx.par_chunks_mut(plane).enumerate().for_each(|(p, out)| {
                        let ch = p % c;
                        let (mu, inv) = (saved.mean[ch], saved.inv_std[ch]);
                        let coefficients = saved.coefficients[ch];
                        let k = gamma[ch] * inv;
                        let mean_du = (d_beta[ch] / m) as f32;
                        // x̂·dγ/m = (x − μ)·inv·dγ/m: fold inv into the constant.
                        let per_x = (d_gamma[ch] / m) as f32 * inv;
                        let r = p * plane..(p + 1) * plane;
                        for ((o, &xv), &dyv) in out.iter_mut().zip(&x[r.clone()]).zip(&dy[r]) {
                            let du = dyv * gain_at(xv, coefficients, slope);
                            o.write(k * (du - mean_du - (xv - mu) * per_x));
                        }
                    });
                };
                // SAFETY: each plane of `dx` is zipped with the plane of `x` and `dy` of the
                // same length (every tensor here has x's shape), and written whole.
                let dx = unsafe { written_vec(x.len(), write) };
                Ok((dx, d_gamma, d_beta, d_noise_weight))
            })
        })?;
        let device = x.device();
        let to_f32 = |v: Vec<f64>| v.into_iter().map(|s| s as f32).collect::<Vec<f32>>();
        let mut d_third = to_f32(d_beta);
        if noise.is_some() {
            d_third.extend(to_f32(d_noise_weight));
        }
        let third_len = d_third.len();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), device)?),
            Some(Tensor::from_vec(to_f32(d_gamma), c, device)?),
            Some(Tensor::from_vec(d_third, third_len, device)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::TrainRng;
    use candle_core::{Device, Var};

    use crate::ops::max_abs_diff as max_diff;

    #[test]
    fn fused_matches_composed_forward_and_backward() -> Result<()> {
        let mut rng = TrainRng::new(11);
        let dev = Device::Cpu;
        let x = Var::from_tensor(&((rng.test_input((5, 3, 4, 6), &dev)? * 3.0)? + 1.5)?)?;
        let gamma = Var::from_tensor(&Tensor::new(&[1.5f32, -0.7, 0.3], &dev)?)?;
        let beta = Var::from_tensor(&Tensor::new(&[0.2f32, 0.0, -0.4], &dev)?)?;
        // A loss that weights every output differently, so every gradient path matters.
        let weights = rng.test_input((5, 3, 4, 6), &dev)?;
        let run = |fused: bool| -> Result<Vec<Tensor>> {
            let (y, mean, var) = if fused {
                batch_norm_leaky_relu(&x, &gamma, &beta, 1e-5, 0.2)?
            } else {
                composed(&x, &gamma, &beta, 1e-5, 0.2)?
            };
            let grads = (&y * &weights)?.sum_all()?.backward()?;
            let grad = |v: &Var| grads.get(v.as_tensor()).cloned().expect("gradient");
            Ok(vec![y, mean, var, grad(&x), grad(&gamma), grad(&beta)])
        };
        let (fused, reference) = (run(true)?, run(false)?);
        for (i, (a, b)) in fused.iter().zip(&reference).enumerate() {
            let scale = b.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?.max(1.0);
            assert!(
                max_diff(a, b) / scale < 1e-4,
                "output {i} differs by {}",
                max_diff(a, b)
            );
        }
        Ok(())
    }

    #[test]
    fn fused_noise_matches_batch_norm_then_candles_noise_forward_and_backward() -> Result<()> {
        let mut rng = TrainRng::new(12);
        let dev = Device::Cpu;
        let x = Var::from_tensor(&((rng.test_input((4, 3, 5, 3), &dev)? * 2.0)? - 0.5)?)?;
        let gamma = Var::from_tensor(&Tensor::new(&[0.8f32, -1.2, 0.4], &dev)?)?;
        let beta = Var::from_tensor(&Tensor::new(&[0.1f32, -0.3, 0.5], &dev)?)?;
        let noise_weight = Var::from_tensor(&Tensor::new(&[[[[0.7f32]], [[0.0]], [[-0.25]]]], &dev)?)?;
        let noise = rng.test_input((4, 1, 5, 3), &dev)?;
        let probe = rng.test_input((4, 3, 5, 3), &dev)?;
        let (fused, mean, var) =
            batch_norm_leaky_relu_plus_noise(&x, &gamma, &beta, &noise_weight, &noise, 1e-5, 0.2)?;
        let (y, ref_mean, ref_var) = composed(&x, &gamma, &beta, 1e-5, 0.2)?;
        let reference = y.broadcast_add(&noise.broadcast_mul(noise_weight.as_tensor())?)?;
        assert!(
            max_diff(&fused, &reference) < 1e-5,
            "{}",
            max_diff(&fused, &reference)
        );
        assert!(max_diff(&mean, &ref_mean) < 1e-6 && max_diff(&var, &ref_var) < 1e-5);
        let variables = [&x, &gamma, &beta, &noise_weight];
        crate::ops::assert_same_gradients(&fused, &reference, &probe, &variables, 1e-4, "bn+noise");
        // Elsewhere than the CPU kernels: the two operations one after the other.
        let generic = crate::ops::with_generic_ops(|| {
            batch_norm_leaky_relu_plus_noise(&x, &gamma, &beta, &noise_weight, &noise, 1e-5, 0.2)
        })?;
        assert!(max_diff(&generic.0, &reference) < 1e-5);
        Ok(())
    }

    #[test]
    fn fused_noise_gives_the_weight_the_sum_of_gradient_times_noise() -> Result<()> {
        // With γ = 0 every output is leaky(β) + w·n, so d(Σ out)/dw_c = Σ n over the batch and
        // pixels, whatever x is: a value worked by hand from the noise alone.
        let dev = Device::Cpu;
        let x = Tensor::new(&[[[[1.0f32, -2.0]]], [[[0.5, 3.0]]]], &dev)?; // (2, 1, 1, 2)
        let gamma = Tensor::new(&[0.0f32], &dev)?;
        let beta = Var::from_tensor(&Tensor::new(&[-1.0f32], &dev)?)?;
        let noise_weight = Var::from_tensor(&Tensor::new(&[2.0f32], &dev)?)?;
        let noise = Tensor::new(&[[[[0.25f32, -1.0]]], [[[2.0, 0.5]]]], &dev)?;
        let (out, _, _) =
            batch_norm_leaky_relu_plus_noise(&x, &gamma, &beta, &noise_weight, &noise, 1e-5, 0.1)?;
        // leaky(−1) = −0.1, plus 2·n.
        let expected = [-0.1 + 0.5, -0.1 - 2.0, -0.1 + 4.0, -0.1 + 1.0];
        for (got, want) in out.flatten_all()?.to_vec1::<f32>()?.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{got} against {want}");
        }
        let grads = out.sum_all()?.backward()?;
        let d_weight = grads
            .get(noise_weight.as_tensor())
            .expect("gradient")
            .to_vec1::<f32>()?;
        assert!((d_weight[0] - 1.75).abs() < 1e-6, "{d_weight:?}");
        // dβ: four outputs, each with slope 0.1 (u = −1 < 0).
        let d_beta = grads.get(beta.as_tensor()).expect("gradient").to_vec1::<f32>()?;
        assert!((d_beta[0] - 0.4).abs() < 1e-6, "{d_beta:?}");
        Ok(())
    }

    #[test]
    fn noise_of_the_wrong_shape_is_refused() {
        let dev = Device::Cpu;
        let zeros = |shape: &[usize]| Tensor::zeros(shape, candle_core::DType::F32, &dev).unwrap();
        let (x, gamma, beta) = (zeros(&[2, 3, 4, 4]), zeros(&[3]), zeros(&[3]));
        let wrong_noise = zeros(&[2, 3, 4, 4]);
        assert!(
            batch_norm_leaky_relu_plus_noise(&x, &gamma, &beta, &zeros(&[3]), &wrong_noise, 1e-5, 0.2)
                .is_err()
        );
        let noise = zeros(&[2, 1, 4, 4]);
        assert!(
            batch_norm_leaky_relu_plus_noise(&x, &gamma, &beta, &zeros(&[2]), &noise, 1e-5, 0.2).is_err()
        );
    }
}
