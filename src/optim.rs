//! [`Adam`] with state that can be saved and restored.
//!
//! candle's `AdamW` keeps its moments private (so a resumed run cannot continue exactly) and
//! defaults to weight decay 0.01; this is plain Adam (Kingma & Ba 2015) without weight decay.
//!
//! Each parameter keeps its own step count, as PyTorch's Adam does, and its bias correction
//! uses that count: a parameter that gets its first gradient late (a progressive block that
//! joins at step 1000) moves by about the learning rate on its first update, not by the ~16×
//! that a shared count of 1000 would give (bias correction of m gone, that of v not).

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::error::{AeganError, Result};

/// Adam over a fixed, named set of parameters. A clone shares the parameters and holds the
/// moments and counts as they are now (moments are replaced, never changed in place, by
/// [`Adam::step`]), so it can serve as a saved state.
#[derive(Clone)]
pub struct Adam {
    params: Vec<(String, Var)>,
    first_moments: Vec<Tensor>,
    second_moments: Vec<Tensor>,
    learning_rate: f64,
    betas: (f64, f64),
    eps: f64,
    steps: u64,
    param_steps: Vec<u64>,
}

impl Adam {
    /// An optimiser for `params` with zeroed moments.
    pub fn new(params: Vec<(String, Var)>, learning_rate: f64, betas: (f64, f64), eps: f64) -> Result<Self> {
        let params_len = params.len();
        let zeros = |p: &Var| p.as_tensor().zeros_like();
        let first_moments = params
            .iter()
            .map(|(_, p)| zeros(p))
            .collect::<candle_core::Result<_>>()?;
        let second_moments = params
            .iter()
            .map(|(_, p)| zeros(p))
            .collect::<candle_core::Result<_>>()?;
        Ok(Adam {
            params,
            first_moments,
            second_moments,
            learning_rate,
            betas,
            eps,
            steps: 0,
            param_steps: vec![0; params_len],
        })
    }

    /// Applies one update from the gradients in `grads`. Parameters without a gradient keep
    /// their value and moments.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.steps += 1;
        let (b1, b2) = self.betas;
        for (i, (_, param)) in self.params.iter().enumerate() {
            let Some(grad) = grads.get(param.as_tensor()) else {
                continue;
            };
            self.param_steps[i] += 1;
            let t = self.param_steps[i].min(i32::MAX as u64) as i32;
            let bias1 = 1.0 - b1.powi(t);
            let bias2 = 1.0 - b2.powi(t);
            // Gradients carry the graph that produced them; detach so the moments do not keep
            // every past step's graph alive.
            let grad = grad.detach();
            let grad = &grad;
            let m = ((&self.first_moments[i] * b1)? + (grad * (1.0 - b1))?)?;
            let v = ((&self.second_moments[i] * b2)? + (grad.sqr()? * (1.0 - b2))?)?;
            let denom = ((&v / bias2)?.sqrt()? + self.eps)?;
            let update = ((&m / bias1)? / denom)?;
            param.set(&(param.as_tensor() - (update * self.learning_rate)?)?)?;
            self.first_moments[i] = m.detach();
            self.second_moments[i] = v.detach();
        }
        Ok(())
    }

    /// Updates applied so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Updates each parameter has received (a parameter without a gradient in a step is not
    /// counted), by name.
    pub fn param_steps(&self) -> Vec<(String, u64)> {
        self.params
            .iter()
            .zip(&self.param_steps)
            .map(|((name, _), &n)| (name.clone(), n))
            .collect()
    }

    /// The current learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    /// Changes the learning rate for the following steps.
    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.learning_rate = learning_rate;
    }

    /// The moments as named tensors: `m.<param>` and `v.<param>`.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.params.len());
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.push((format!("m.{name}"), self.first_moments[i].clone()));
            out.push((format!("v.{name}"), self.second_moments[i].clone()));
        }
        out
    }

    /// Restores moments saved by [`Adam::state_tensors`], the step count and the per-parameter
    /// counts ([`Adam::param_steps`]; a parameter missing from `param_steps`, as in checkpoints
    /// written before they were kept, gets `steps`). `source` names the file they came from,
    /// for errors.
    pub fn load_state(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        steps: u64,
        param_steps: Option<&std::collections::BTreeMap<String, u64>>,
        source: &std::path::Path,
    ) -> Result<()> {
        for (i, (name, param)) in self.params.iter().enumerate() {
            for (prefix, slot) in [
                ("m", &mut self.first_moments[i]),
                ("v", &mut self.second_moments[i]),
            ] {
                let key = format!("{prefix}.{name}");
                let t = tensors.get(&key).ok_or_else(|| AeganError::TensorSetMismatch {
                    path: source.to_path_buf(),
                    tensor: key.clone(),
                    problem: "is missing",
                })?;
                if t.dims() != param.dims() {
                    return Err(AeganError::ShapeMismatch {
                        path: source.to_path_buf(),
                        tensor: key,
                        expected: param.dims().to_vec(),
                        found: t.dims().to_vec(),
                    });
                }
                *slot = t.to_device(param.device())?;
            }
        }
        self.steps = steps;
        for ((name, _), count) in self.params.iter().zip(&mut self.param_steps) {
            *count = param_steps.and_then(|p| p.get(name)).copied().unwrap_or(steps);
        }
        Ok(())
    }
}
