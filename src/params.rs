//! [`ParamStore`]: the tensors of one network, created deterministically from a seed.
//!
//! candle's `VarMap` draws initial weights from an unseeded generator, so two runs with the
//! same seed would differ. `ParamStore` is a `VarBuilder` backend that draws each tensor from
//! its own ChaCha stream, keyed by the seed and the tensor's name: the same seed and config
//! always give the same weights, whatever order the layers are built in.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::init::{Init, NormalOrUniform};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::io::fnv1a;

/// Names of tensors that are statistics, not parameters: saved, but never optimised.
const BUFFER_SUFFIXES: [&str; 3] = [
    "running_mean",
    "running_var",
    crate::nets::spectral::BUFFER_SUFFIX,
];

fn is_buffer(name: &str) -> bool {
    BUFFER_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// The named tensors of one network. Cloning shares the tensors.
#[derive(Clone)]
pub struct ParamStore {
    seed: u64,
    tensors: Arc<Mutex<BTreeMap<String, Var>>>,
}

impl ParamStore {
    /// An empty store whose tensors will be initialised from `seed`.
    pub fn new(seed: u64) -> Self {
        ParamStore {
            seed,
            tensors: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// A `VarBuilder` that creates its tensors in this store.
    pub fn var_builder(&self, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self.clone()), DType::F32, device.clone())
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Var>> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
        self.tensors.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// All tensors, sorted by name (parameters and batch-norm statistics).
    pub fn all(&self) -> Vec<(String, Var)> {
        self.lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The trainable parameters, sorted by name (batch-norm running statistics excluded).
    pub fn trainable(&self) -> Vec<(String, Var)> {
        self.all()
            .into_iter()
            .filter(|(name, _)| !is_buffer(name))
            .collect()
    }

    /// The statistics that are saved but never optimised (batch-norm running mean and
    /// variance), sorted by name: [`ParamStore::all`] less [`ParamStore::trainable`].
    pub fn buffers(&self) -> Vec<(String, Var)> {
        self.all()
            .into_iter()
            .filter(|(name, _)| is_buffer(name))
            .collect()
    }

    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        self.trainable().iter().map(|(_, v)| v.elem_count()).sum()
    }

    fn initial_value(
        &self,
        shape: &Shape,
        name: &str,
        init: Init,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ fnv1a(name.as_bytes()));
        let n = shape.elem_count();
        let values: Vec<f32> = match init {
            Init::Const(c) => vec![c as f32; n],
            Init::Uniform { lo, up } => uniform(&mut rng, n, lo, up),
            Init::Randn { mean, stdev } => normal(&mut rng, n, mean, stdev),
            Init::Kaiming {
                dist,
                fan,
                non_linearity,
            } => {
                let std = non_linearity.gain() / (fan.for_shape(shape).max(1) as f64).sqrt();
                match dist {
                    NormalOrUniform::Normal => normal(&mut rng, n, 0.0, std),
                    NormalOrUniform::Uniform => {
                        let bound = 3f64.sqrt() * std;
                        uniform(&mut rng, n, -bound, bound)
                    }
                }
            }
        };
        Tensor::from_vec(values, shape.clone(), device)
    }
}

impl SimpleBackend for ParamStore {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        if let Some(var) = self.lock().get(name) {
            if var.shape() != &shape {
                candle_core::bail!(
                    "parameter {name} exists with shape {:?}, asked for {shape:?}",
                    var.shape()
                )
            }
            return Ok(var.as_tensor().clone());
        }
        let value = self.initial_value(&shape, name, init, device)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&value)?;
        let tensor = var.as_tensor().clone();
        self.lock().insert(name.to_string(), var);
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _device: &Device) -> candle_core::Result<Tensor> {
        match self.lock().get(name) {
            Some(var) => Ok(var.as_tensor().clone()),
            None => candle_core::bail!("parameter {name} has not been created"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }
}

fn uniform(rng: &mut ChaCha8Rng, n: usize, lo: f64, up: f64) -> Vec<f32> {
    if lo >= up {
        return vec![lo as f32; n];
    }
    (0..n).map(|_| rng.random_range(lo..up) as f32).collect()
}

fn normal(rng: &mut ChaCha8Rng, n: usize, mean: f64, std: f64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let x: f64 = StandardNormal.sample(rng);
            (mean + std * x) as f32
        })
        .collect()
}
