//! Skip-layer excitation (FastGAN, Liu et al. 2021): a small, early stage of G gates the
//! channels of a large, late one, so the coarse layout steers the fine texture directly and the
//! gradient reaches the early stage by a short path.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::layers::Mlp;

/// The gate from a stage of side r ≥ 4 to the stage of side 16·r: the small stage's features
/// pooled to 4×4, a linear layer (FastGAN's 4×4 valid convolution) to the large stage's
/// width, leaky ReLU, a linear layer, and a sigmoid per channel.
#[derive(Debug, Clone)]
pub(crate) struct Excitation {
    mlp: Mlp,
    channels: usize,
}

/// The side of the stage a gate from a stage of side `small` multiplies.
pub(crate) fn excited_side(small: usize) -> usize {
    16 * small
}

impl Excitation {
    /// The gate `<vb>.fc.0`, `<vb>.out` from `c_small` channels to `c_large`.
    pub fn new(vb: VarBuilder, c_small: usize, c_large: usize, slope: f64) -> Result<Self> {
        Ok(Excitation {
            mlp: Mlp::new(vb, 16 * c_small, &[c_large], c_large, slope)?,
            channels: c_large,
        })
    }

    /// Multiply-accumulates per image.
    pub fn macs(&self) -> u64 {
        self.mlp.macs()
    }

    /// The gate of the small stage's features `small` `(B, C, r, r)`: `(B, channels, 1, 1)`
    /// in (0, 1).
    pub fn gate(&self, small: &Tensor) -> Result<Tensor> {
        let (b, _, side, _) = small.dims4()?;
        let pooled = match side {
            4 => small.clone(),
            _ => crate::ops::downsample_area(small, side / 4)?,
        };
        let logits = self.mlp.forward(&pooled.flatten_from(1)?)?;
        candle_nn::ops::sigmoid(&logits)?.reshape((b, self.channels, 1, 1))
    }

    /// `large` `(B, channels, R, R)` with each channel multiplied by the gate of `small`.
    pub fn forward(&self, small: &Tensor, large: &Tensor) -> Result<Tensor> {
        large.broadcast_mul(&self.gate(small)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn the_gate_has_a_value_per_channel_computed_from_the_pooled_small_stage() {
        let store = crate::params::ParamStore::new(3);
        let vb = store.var_builder(&Device::Cpu);
        let excitation = Excitation::new(vb.clone(), 2, 3, 0.2).unwrap();
        // Weights by hand: fc.0 sums the 32 pooled inputs into each of its 3 units (bias 0);
        // out passes unit j to channel j (identity, bias 0).
        let named = store.all();
        let set = |name: &str, value: Tensor| {
            let (_, var) = named.iter().find(|(n, _)| n == name).unwrap();
            var.set(&value).unwrap();
        };
        set(
            "fc.0.weight",
            Tensor::ones((3, 32), DType::F32, &Device::Cpu).unwrap(),
        );
        set("fc.0.bias", Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap());
        set("out.weight", Tensor::eye(3, DType::F32, &Device::Cpu).unwrap());
        set("out.bias", Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap());
        // An 8×8 small stage of constant 0.01 and −0.02 channels: pooled to 4×4 the same
        // values; the sum over 32 inputs is 16·0.01 − 16·0.02 = −0.16, leaky ReLU −0.032.
        let small = Tensor::cat(
            &[
                Tensor::full(0.01f32, (1, 1, 8, 8), &Device::Cpu).unwrap(),
                Tensor::full(-0.02f32, (1, 1, 8, 8), &Device::Cpu).unwrap(),
            ],
            1,
        )
        .unwrap();
        let gate = excitation.gate(&small).unwrap();
        assert_eq!(gate.dims(), &[1, 3, 1, 1]);
        let expected = 1.0 / (1.0 + (0.032f32).exp());
        for value in gate.flatten_all().unwrap().to_vec1::<f32>().unwrap() {
            assert!((value - expected).abs() < 1e-6, "{value} vs {expected}");
        }
        let large = Tensor::full(2f32, (1, 3, 128, 128), &Device::Cpu).unwrap();
        let gated = excitation.forward(&small, &large).unwrap();
        let values = gated.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(values.iter().all(|v| (v - 2.0 * expected).abs() < 1e-6));
        assert_eq!(excited_side(8), 128);
    }
}
