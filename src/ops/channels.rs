//! Per-channel sums and broadcasts for the generic path, written as matrix products with ones so
//! that their gradients are matrix products too. A per-channel broadcast's gradient is a sum
//! over the batch and pixel axes, which candle's CPU backend takes with a division per element
//! whenever the summed axes are not the trailing ones (batch normalisation and biases spent over
//! a quarter of a generic training step there); a product with ones is one fast pass anywhere.

use candle_core::{Result, Tensor};

/// Σ of `x` (B, C, …) over the batch and every pixel, per channel: (C,).
pub(crate) fn channel_sum(x: &Tensor) -> Result<Tensor> {
    let (b, c) = (x.dim(0)?, x.dim(1)?);
    let per_image = x.reshape((b, c, ()))?.sum(2)?;
    Tensor::ones((1, b), x.dtype(), x.device())?
        .matmul(&per_image)?
        .reshape(c)
}

/// `v` (C,) repeated over the batch and every pixel of `like` (B, C, …), in `like`'s shape.
pub(crate) fn expand_channels(v: &Tensor, like: &Tensor) -> Result<Tensor> {
    let (b, c) = (like.dim(0)?, like.dim(1)?);
    let pixels = like.elem_count() / (b * c).max(1);
    let plane = v
        .reshape((c, 1))?
        .matmul(&Tensor::ones((1, pixels), v.dtype(), v.device())?)?;
    repeat_over_batch(&plane, b)?.reshape(like.shape())
}

/// `t` (any shape) repeated `b` times along a new leading axis: (b, …t's shape).
fn repeat_over_batch(t: &Tensor, b: usize) -> Result<Tensor> {
    let mut shape = vec![b];
    shape.extend_from_slice(t.dims());
    Tensor::ones((b, 1), t.dtype(), t.device())?
        .matmul(&t.reshape((1, t.elem_count()))?)?
        .reshape(shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn sums_and_expansions_match_candles_broadcasts_forward_and_gradients() {
        let dev = Device::Cpu;
        let values: Vec<f32> = (0..2 * 3 * 4 * 5).map(|v| (v as f32 * 0.3).sin()).collect();
        let x = Var::from_vec(values, (2, 3, 4, 5), &dev).unwrap();
        let v = Var::from_vec(vec![0.5f32, -1.0, 2.0], 3, &dev).unwrap();
        let sums = channel_sum(&x).unwrap();
        let reference = x
            .sum_keepdim(0)
            .unwrap()
            .sum_keepdim(2)
            .unwrap()
            .sum_keepdim(3)
            .unwrap();
        let reference = reference.flatten_all().unwrap();
        assert!(crate::ops::max_abs_diff(&sums, &reference) < 1e-5);

        let ours = (x.as_tensor() * expand_channels(&v, &x).unwrap()).unwrap();
        let theirs = x.broadcast_mul(&v.reshape((1, 3, 1, 1)).unwrap()).unwrap();
        assert_eq!(crate::ops::max_abs_diff(&ours, &theirs), 0.0);
        let probe = Tensor::from_vec(
            (0..120).map(|v| (v as f32 * 0.7).cos()).collect(),
            (2, 3, 4, 5),
            &dev,
        )
        .unwrap();
        crate::ops::assert_same_gradients(&ours, &theirs, &probe, &[&x, &v], 1e-4, "expand");
        let sums_again = (channel_sum(&x).unwrap() * v.as_tensor()).unwrap();
        let reference_again = (&reference * v.as_tensor()).unwrap();
        let probe = Tensor::new(&[1.0f32, -2.0, 0.5], &dev).unwrap();
        crate::ops::assert_same_gradients(&sums_again, &reference_again, &probe, &[&x, &v], 1e-4, "sum");
    }
}
