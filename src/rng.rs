//! [`TrainRng`]: the trainer's random stream, whose position can be saved and restored so that
//! a resumed run draws exactly the numbers an uninterrupted one would.

use candle_core::{Device, Shape, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// A seeded ChaCha8 stream. candle's own CPU random tensors cannot be seeded, so every random
/// number the trainer uses comes from here and is copied to the device.
#[derive(Debug, Clone)]
pub struct TrainRng {
    seed: u64,
    rng: ChaCha8Rng,
}

/// The saved position of a [`TrainRng`] (JSON-friendly: the 128-bit position is a string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    /// The seed the stream was created from.
    pub seed: u64,
    /// Words consumed so far, in decimal.
    pub word_pos: String,
}

impl TrainRng {
    /// A stream starting at the beginning for `seed`.
    pub fn new(seed: u64) -> Self {
        TrainRng {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Where the stream is now.
    pub fn state(&self) -> RngState {
        RngState {
            seed: self.seed,
            word_pos: self.rng.get_word_pos().to_string(),
        }
    }

    /// A stream at a saved position; `None` if the position is not a number.
    pub fn from_state(state: &RngState) -> Option<Self> {
        let pos: u128 = state.word_pos.parse().ok()?;
        let mut rng = TrainRng::new(state.seed);
        rng.rng.set_word_pos(pos);
        Some(rng)
    }

    /// A tensor of standard normal samples, of any shape (a batch of latents `(n, d)`, or an
    /// image batch `(n, c, h, w)` for a test's inputs).
    pub fn normal(&mut self, shape: impl Into<Shape>, device: &Device) -> Result<Tensor> {
        let shape = shape.into();
        let values: Vec<f32> = (0..shape.elem_count())
            .map(|_| StandardNormal.sample(&mut self.rng))
            .collect();
        Ok(Tensor::from_vec(values, shape, device)?)
    }

    /// `n` seeds, one per sample, for G's per-pixel noise in a training step.
    pub fn noise_seeds(&mut self, n: usize) -> Vec<u64> {
        (0..n).map(|_| self.rng.random::<u64>()).collect()
    }

    /// A uniform sample in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    /// A `(n, 1)` mask of ones, each zero with probability `p`.
    pub fn keep_mask(&mut self, n: usize, p: f64, device: &Device) -> Result<Tensor> {
        let values: Vec<f32> = (0..n)
            .map(|_| if self.rng.random::<f64>() < p { 0.0 } else { 1.0 })
            .collect();
        Ok(Tensor::from_vec(values, (n, 1), device)?)
    }
}

#[cfg(test)]
impl TrainRng {
    /// [`TrainRng::normal`] with candle's error type: the unit tests of candle operations
    /// draw their inputs here, so that a failure reproduces.
    pub(crate) fn test_input(
        &mut self,
        shape: impl Into<Shape>,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        self.normal(shape, device)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))
    }
}
