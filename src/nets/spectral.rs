//! Spectral normalisation (Miyato et al. 2018): a weight divided by an estimate of its
//! largest singular value σ, so that the layer is (about) 1-Lipschitz and the image
//! discriminator cannot sharpen its decision boundary without limit.
//!
//! σ is estimated by power iteration on the weight viewed as a matrix `(out, in·k·k)`. The
//! left singular vector estimate `u` is a buffer (saved with the network, never optimised);
//! [`SpectralNorm::power_iteration`] advances it one step per training step, and
//! [`SpectralNorm::normalise`] divides the weight by `σ = uᵀ W v`, `v = W̄ᵀu / |W̄ᵀu|`, with `u`
//! and `v` held constant for the gradient (W̄: the weight detached), as PyTorch's
//! `spectral_norm` does.

use candle_core::{Result, Tensor, Var};
use candle_nn::{Init, VarBuilder};

/// Suffix of the saved left singular vector estimate, `<layer>.spectral_u`.
pub(crate) const BUFFER_SUFFIX: &str = "spectral_u";

/// Keeps |x| away from zero when normalising a vector (PyTorch's ε).
const EPS: f64 = 1e-12;

/// The power-iteration state of one weight.
#[derive(Debug, Clone)]
pub(crate) struct SpectralNorm {
    u: Var,
}

impl SpectralNorm {
    /// The state for a weight with `rows` output units, `<vb>.spectral_u` drawn from N(0, 1).
    pub fn new(vb: &VarBuilder, rows: usize) -> Result<Self> {
        let u = vb.get_with_hints(
            rows,
            BUFFER_SUFFIX,
            Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        )?;
        // The stored tensor is a variable: this shares its storage, so updates are saved.
        Ok(SpectralNorm {
            u: Var::from_tensor(&u)?,
        })
    }

    /// One step of power iteration on `weight` (detached): `u ← W v / |W v|`.
    pub fn power_iteration(&self, weight: &Tensor) -> Result<()> {
        let w = as_matrix(&weight.detach())?;
        let v = right_vector(&w, &unit(self.u.as_tensor())?)?;
        let u = unit(&w.matmul(&v.unsqueeze(1)?)?.squeeze(1)?)?;
        self.u.set(&u)
    }

    /// The current estimate of the largest singular value of `weight` (no gradient).
    #[cfg(test)]
    pub fn sigma(&self, weight: &Tensor) -> Result<f32> {
        self.sigma_tensor(&weight.detach())?.to_scalar::<f32>()
    }

    /// `weight / σ`, differentiable in `weight` (σ's own dependence on it included).
    pub fn normalise(&self, weight: &Tensor) -> Result<Tensor> {
        let sigma = self.sigma_tensor(weight)?;
        weight.broadcast_div(&sigma)
    }

    /// `σ = uᵀ W v` as a 0-d tensor, with `u` and `v` constants.
    fn sigma_tensor(&self, weight: &Tensor) -> Result<Tensor> {
        let w = as_matrix(weight)?;
        let u = unit(self.u.as_tensor())?;
        let v = right_vector(&w.detach(), &u)?;
        let wv = w.matmul(&v.unsqueeze(1)?)?.squeeze(1)?;
        (u * wv)?.sum_all()
    }
}

/// `v = Wᵀ u / |Wᵀ u|` for a unit-length `u`.
fn right_vector(w: &Tensor, u: &Tensor) -> Result<Tensor> {
    unit(&w.t()?.matmul(&u.unsqueeze(1)?)?.squeeze(1)?)
}

/// A weight `(out, …)` as a matrix `(out, rest)`.
fn as_matrix(weight: &Tensor) -> Result<Tensor> {
    let rows = weight.dim(0)?;
    weight.reshape((rows, ()))
}

/// `x / max(|x|, ε)` for a vector, on the device (no copy of the norm to the host: this runs
/// for every Dx layer in every forward pass).
fn unit(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_all()?.sqrt()?.maximum(EPS)?;
    x.broadcast_div(&norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::TrainRng;
    use candle_core::Device;

    /// The largest singular value by many power iterations in f64, independent of the code
    /// under test.
    fn largest_singular_value(w: &Tensor) -> f64 {
        let w = as_matrix(w).unwrap().to_dtype(candle_core::DType::F64).unwrap();
        let gram = w.t().unwrap().matmul(&w).unwrap();
        let n = gram.dim(0).unwrap();
        let mut v = Tensor::ones((n, 1), candle_core::DType::F64, &Device::Cpu).unwrap();
        let mut lambda = 0.0;
        for _ in 0..500 {
            let next = gram.matmul(&v).unwrap();
            lambda = next
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .sqrt()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            v = (next / lambda).unwrap();
        }
        lambda.sqrt()
    }

    #[test]
    fn after_power_iteration_the_normalised_weight_has_largest_singular_value_one() {
        let mut rng = TrainRng::new(11);
        let store = crate::params::ParamStore::new(3);
        let vb = store.var_builder(&Device::Cpu);
        // A spectral gap by construction: a rank-one spike of 20 over noise whose singular
        // values stay below about 5, so power iteration converges as (σ₂/σ₁)^(2k) whatever the
        // draw (on a plain Gaussian matrix the top two can be close and 30 steps fall short).
        let a = unit(&rng.test_input(8, &Device::Cpu).unwrap()).unwrap();
        let b = unit(&rng.test_input(36, &Device::Cpu).unwrap()).unwrap();
        let spike = (a.unsqueeze(1).unwrap().matmul(&b.unsqueeze(0).unwrap()).unwrap() * 20.0).unwrap();
        let noise = (rng.test_input((8, 36), &Device::Cpu).unwrap() * 0.5).unwrap();
        let weight = (spike + noise).unwrap().reshape((8, 4, 3, 3)).unwrap();
        let sn = SpectralNorm::new(&vb.pp("conv"), 8).unwrap();
        let truth = largest_singular_value(&weight);
        assert!(truth > 10.0, "a weight far from 1-Lipschitz: {truth}");
        for _ in 0..30 {
            sn.power_iteration(&weight).unwrap();
        }
        let estimate = sn.sigma(&weight).unwrap() as f64;
        assert!((estimate - truth).abs() / truth < 1e-3, "σ {estimate} vs {truth}");
        let normalised = sn.normalise(&weight).unwrap();
        let sigma = largest_singular_value(&normalised);
        assert!((sigma - 1.0).abs() < 1e-3, "σ of the normalised weight: {sigma}");
        // The state is a buffer of the store, so it is saved with the network.
        let names: Vec<String> = store.buffers().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["conv.spectral_u"]);
    }

    #[test]
    fn one_step_per_update_tracks_a_weight_that_changes_slowly() {
        let mut rng = TrainRng::new(12);
        let store = crate::params::ParamStore::new(5);
        let vb = store.var_builder(&Device::Cpu);
        let mut weight = rng.test_input((16, 32), &Device::Cpu).unwrap();
        let sn = SpectralNorm::new(&vb, 16).unwrap();
        for _ in 0..200 {
            let nudge = (rng.test_input((16, 32), &Device::Cpu).unwrap() * 1e-3).unwrap();
            weight = (weight + nudge).unwrap();
            sn.power_iteration(&weight).unwrap();
        }
        let truth = largest_singular_value(&weight);
        let estimate = sn.sigma(&weight).unwrap() as f64;
        assert!((estimate - truth).abs() / truth < 1e-2, "σ {estimate} vs {truth}");
    }

    #[test]
    fn the_gradient_flows_through_the_weight_and_sigma() {
        let mut rng = TrainRng::new(13);
        // d/dW sum(W/σ(W)) with u, v fixed: 1/σ - sum(W) u vᵀ / σ²; compare with finite differences.
        let store = crate::params::ParamStore::new(9);
        let vb = store.var_builder(&Device::Cpu);
        let w0 = rng.test_input((3, 4), &Device::Cpu).unwrap();
        let sn = SpectralNorm::new(&vb, 3).unwrap();
        for _ in 0..50 {
            sn.power_iteration(&w0).unwrap();
        }
        let var = Var::from_tensor(&w0).unwrap();
        let loss = sn.normalise(var.as_tensor()).unwrap().sum_all().unwrap();
        let grad = loss.backward().unwrap();
        let grad = grad
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let base = w0.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let h = 1e-2f32;
        for i in [0, 5, 11] {
            let at = |delta: f32| {
                let mut w = base.clone();
                w[i] += delta;
                let w = Tensor::from_vec(w, (3, 4), &Device::Cpu).unwrap();
                sn.normalise(&w)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            assert!(
                (numeric - grad[i]).abs() < 2e-2,
                "element {i}: {numeric} vs {}",
                grad[i]
            );
        }
    }
}
