//! Per-pixel noise for G (StyleGAN, Karras et al. 2019): after a stage, one image of standard
//! normal noise per sample, scaled by a learned weight per channel and added to the features,
//! so G has a source of pixel-level detail (texture, speckle) that does not have to come from
//! the few numbers of z.
//!
//! Each sample's noise is drawn from a stream seeded by a per-sample seed mixed with the layer.
//! In sampling and inference the seed is a hash of the sample's latent vector's bits, so G is a
//! deterministic function of z (the same latent gives the same image in every batch, on every
//! run). In a training step the seeds come from the trainer's random stream
//! ([`crate::rng::TrainRng::noise_seeds`]): hashing the latents would read them back from the
//! device in the middle of the step, and a resumed run still sees exactly the noise an
//! uninterrupted one would, since the stream's position is saved.

use candle_core::{Device, Result, Tensor};
use candle_nn::VarBuilder;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::io::fnv1a;

/// One noise input: `weight` `(1, channels, 1, 1)`, zero at initialisation so that G starts
/// exactly as it would without noise.
#[derive(Debug, Clone)]
pub(crate) struct PixelNoise {
    weight: Tensor,
    /// Mixed into each sample's seed so that every layer draws its own noise.
    layer: u64,
}

impl PixelNoise {
    /// The weight `noise` under `vb` for features of `channels`; `layer` tells this input's
    /// noise from the other layers'.
    pub fn new(vb: VarBuilder, channels: usize, layer: u64) -> Result<Self> {
        let weight = vb.get_with_hints((1, channels, 1, 1), "noise", candle_nn::Init::Const(0.0))?;
        Ok(PixelNoise { weight, layer })
    }

    /// `x` `(batch, channels, h, w)` plus this layer's noise for each sample's `seeds` entry.
    pub fn forward(&self, x: &Tensor, seeds: &[u64]) -> Result<Tensor> {
        let (b, _, h, w) = x.dims4()?;
        let noise = self.draw((b, h, w), seeds, x.device())?;
        super::layers::add_noise(x, &self.weight, &noise)
    }

    /// The per-channel weight `(1, channels, 1, 1)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// This layer's noise for `b` samples of features `h` × `w`: one plane `(b, 1, h, w)` of
    /// standard normal values per sample, from each sample's `seeds` entry, in f32.
    pub fn draw(&self, (b, h, w): (usize, usize, usize), seeds: &[u64], device: &Device) -> Result<Tensor> {
        if seeds.len() != b {
            candle_core::bail!("{} noise seeds for a batch of {b}", seeds.len());
        }
        // Each sample's stream is independent of the others', so the samples are drawn in
        // parallel (the same values on any number of threads).
        let mut values = vec![0f32; b * h * w];
        values
            .par_chunks_mut((h * w).max(1))
            .zip(seeds.par_iter())
            .for_each(|(plane, &seed)| {
                let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, self.layer));
                plane
                    .iter_mut()
                    .for_each(|v| *v = StandardNormal.sample(&mut rng));
            });
        Tensor::from_vec(values, (b, 1, h, w), device)
    }
}

/// One seed per latent row of `z` `(batch, latent_dim)`: a hash of its values' bits. On a GPU
/// this reads `z` back to the host, one counted read ([`crate::host_reads`]) per forward pass
/// of G.
pub(crate) fn latent_seeds(z: &Tensor) -> Result<Vec<u64>> {
    let width = z.dim(1)?;
    let values = crate::host::read_f32_in_layer(z)?;
    Ok(values
        .chunks(width.max(1))
        .map(|row| {
            let bytes: Vec<u8> = row.iter().flat_map(|v| v.to_bits().to_le_bytes()).collect();
            fnv1a(&bytes)
        })
        .collect())
}

/// A sample's seed and a layer number mixed into one seed (SplitMix64's finaliser), so that
/// nearby inputs give unrelated streams.
fn mix(seed: u64, layer: u64) -> u64 {
    let mut x = seed ^ layer.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_latent_row_gets_its_own_seed_whatever_the_batch() {
        let device = candle_core::Device::Cpu;
        let z = Tensor::new(&[[0.5f32, -1.0], [0.5, -1.0], [0.25, 2.0]], &device).unwrap();
        let seeds = latent_seeds(&z).unwrap();
        assert_eq!(seeds[0], seeds[1]);
        assert_ne!(seeds[0], seeds[2]);
        let alone = latent_seeds(&z.narrow(0, 2, 1).unwrap()).unwrap();
        assert_eq!(alone[0], seeds[2]);
    }

    #[test]
    fn layers_mix_to_different_seeds() {
        assert_ne!(mix(7, 0), mix(7, 1));
        assert_ne!(mix(7, 0), mix(8, 0));
    }
}
