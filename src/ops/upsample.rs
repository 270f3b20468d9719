//! ×2 upsampling: nearest-neighbour as a tensor operation with a correct gradient and on one
//! image in a slice (for the fused upsample + convolution), bilinear, and the pixel shuffle
//! of a sub-pixel convolution.

use std::mem::MaybeUninit;

use candle_core::{Result, Tensor};

use super::uninit::assume_written;

/// Nearest-neighbour ×2 upsampling of (B, C, H, W) by broadcasting. Its gradient is the sum
/// over each 2×2 block, which candle's `upsample_nearest2d` backward gets wrong when its input
/// is used twice.
pub fn upsample_nearest_2x(x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    x.reshape((b, c, h, 1, w, 1))?
        .broadcast_as((b, c, h, 2, w, 2))?
        .reshape((b, c, 2 * h, 2 * w))
}

/// Bilinear ×2 upsampling of (B, C, H, W) with half-pixel centres and clamped edges (PyTorch's
/// `align_corners=False`): each output pixel is ¾ of the nearest input pixel and ¼ of the next
/// one along each axis. Computed as nearest ×2 followed by the separable filter [1, 2, 1]/4
/// with replicated edges, which is the same thing. That filter has no response at the
/// Nyquist frequency, so unlike nearest upsampling the result holds no pixel-to-pixel
/// alternation for the following convolution to turn into a grid pattern. Composed of tensor
/// operations, so it runs on every device and has exact gradients.
pub fn upsample_bilinear_2x(x: &Tensor) -> Result<Tensor> {
    let up = upsample_nearest_2x(x)?;
    smooth_121(&smooth_121(&up, 3)?, 2)
}

/// Depth to space ×2 (the pixel shuffle of Shi et al. 2016): (B, 4C, H, W) → (B, C, 2H, 2W),
/// where input channel 4c + 2a + b becomes the pixels (2i + a, 2j + b) of output channel c.
/// After a convolution to 4C channels at H×W, every output phase (a, b) has its own kernel,
/// so the upsampled image can hold any content at its Nyquist frequency. Reshapes and one
/// permutation: exact gradients on every device.
pub fn pixel_shuffle_2x(x: &Tensor) -> Result<Tensor> {
    let (b, c4, h, w) = x.dims4()?;
    if c4 % 4 != 0 {
        candle_core::bail!("pixel_shuffle_2x: {c4} channels is not a multiple of 4");
    }
    let c = c4 / 4;
    x.reshape((b, c, 2, 2, h, w))?
        .permute((0, 1, 4, 2, 5, 3))?
        .reshape((b, c, 2 * h, 2 * w))
}

/// The filter [1, 2, 1]/4 along `dim`, edges replicated.
fn smooth_121(x: &Tensor, dim: usize) -> Result<Tensor> {
    let n = x.dim(dim)?;
    let padded = x.pad_with_same(dim, 1, 1)?;
    let sides = (padded.narrow(dim, 0, n)? + padded.narrow(dim, 2, n)?)?;
    (sides * 0.25)? + (padded.narrow(dim, 1, n)? * 0.5)?
}

/// Writes `image` (`planes` planes of `h`×`w`) upsampled ×2 into `out` (planes of 2h×2w).
pub(crate) fn upsample_into(image: &[f32], (planes, h, w): (usize, usize, usize), out: &mut [f32]) {
    assert_eq!(image.len(), planes * h * w, "upsample: image length");
    assert_eq!(out.len(), 4 * image.len(), "upsample: output length");
    for (src_row, dst_rows) in image.chunks_exact(w).zip(out.chunks_exact_mut(4 * w)) {
        let (top, bottom) = dst_rows.split_at_mut(2 * w);
        for (pair, &v) in top.chunks_exact_mut(2).zip(src_row) {
            pair[0] = v;
            pair[1] = v;
        }
        bottom.copy_from_slice(top);
    }
}

/// The adjoint of [`upsample_into`]: `out` (planes of `h`×`w`, memory that need not hold
/// values yet) gets the sum of every 2×2 block of `up` (planes of 2h×2w); returns `out` as
/// values.
pub(crate) fn sum_blocks<'a>(
    up: &[f32],
    (planes, h, w): (usize, usize, usize),
    out: &'a mut [MaybeUninit<f32>],
) -> &'a mut [f32] {
    assert_eq!(out.len(), planes * h * w, "block sum: output length");
    assert_eq!(up.len(), 4 * out.len(), "block sum: input length");
    for (dst_row, src_rows) in out.chunks_exact_mut(w).zip(up.chunks_exact(4 * w)) {
        let (top, bottom) = src_rows.split_at(2 * w);
        for ((d, t), b) in dst_row
            .iter_mut()
            .zip(top.chunks_exact(2))
            .zip(bottom.chunks_exact(2))
        {
            d.write(t[0] + t[1] + b[0] + b[1]);
        }
    }
    // SAFETY: `out` is `h` rows of `w` per plane and `up` 4·w values per output row (both
    // lengths asserted above), so every row of `out` meets its two input rows and each of its
    // `w` values is written from one 2×2 block.
    unsafe { assume_written(out) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn pixel_shuffle_puts_each_channel_of_four_on_its_own_phase() {
        // Channels 0..4 hold the constants 0, 1, 2, 3 on a 2×2 image: the shuffled 4×4 image
        // alternates 0 1 / 2 3 in every 2×2 block.
        let x = Tensor::arange(0f32, 4.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 4, 1, 1))
            .unwrap()
            .broadcast_as((1, 4, 2, 2))
            .unwrap()
            .contiguous()
            .unwrap();
        let y = pixel_shuffle_2x(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let row_even = [0., 1., 0., 1.];
        let row_odd = [2., 3., 2., 3.];
        assert_eq!(y, [row_even, row_odd, row_even, row_odd].concat());
        // Distinct values everywhere: every input value appears once, at its own place.
        let x = Tensor::arange(0f32, 2.0 * 4.0 * 6.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 8, 2, 3))
            .unwrap();
        let y = pixel_shuffle_2x(&x).unwrap();
        assert_eq!(y.dims(), &[1, 2, 4, 6]);
        let xv = x.squeeze(0).unwrap().to_vec3::<f32>().unwrap();
        let yv = y.squeeze(0).unwrap().to_vec3::<f32>().unwrap();
        for (c, plane) in yv.iter().enumerate() {
            for (r, row) in plane.iter().enumerate() {
                for (col, &v) in row.iter().enumerate() {
                    let channel = 4 * c + 2 * (r % 2) + col % 2;
                    assert_eq!(v, xv[channel][r / 2][col / 2], "output ({c}, {r}, {col})");
                }
            }
        }
        assert!(pixel_shuffle_2x(
            &Tensor::zeros((1, 6, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap()
        )
        .is_err());
    }

    #[test]
    fn upsample_repeats_each_pixel_into_a_2x2_block() {
        let x = Tensor::new(&[[[[1f32, 2.0], [3.0, 4.0]]]], &Device::Cpu).unwrap();
        let y = upsample_nearest_2x(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let expected = [1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.];
        assert_eq!(y, expected);
        let mut out = [0f32; 16];
        upsample_into(&[1., 2., 3., 4.], (1, 2, 2), &mut out);
        assert_eq!(out, expected);
    }

    #[test]
    fn block_sum_is_the_adjoint_of_upsampling() {
        let (planes, h, w) = (2, 3, 2);
        let x: Vec<f32> = (0..planes * h * w).map(|i| (i as f32 * 0.7).sin()).collect();
        let g: Vec<f32> = (0..4 * x.len()).map(|i| (i as f32 * 1.3).cos()).collect();
        let mut up = vec![0f32; g.len()];
        upsample_into(&x, (planes, h, w), &mut up);
        let mut summed = vec![MaybeUninit::new(f32::NAN); x.len()];
        let summed = sum_blocks(&g, (planes, h, w), &mut summed);
        let lhs: f32 = up.iter().zip(&g).map(|(a, b)| a * b).sum();
        let rhs: f32 = x.iter().zip(summed.iter()).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-4, "{lhs} vs {rhs}");
    }

    #[test]
    fn upsample_gradient_accumulates_when_the_input_is_used_twice() {
        let x = Var::new(&[[[[1f32, 2.0], [3.0, 4.0]]]], &Device::Cpu).unwrap();
        // x feeds two upsamples; d/dx of sum(up(x)) + sum(up(x)) is 4 + 4 = 8 per pixel.
        let loss = (upsample_nearest_2x(x.as_tensor()).unwrap().sum_all().unwrap()
            + upsample_nearest_2x(x.as_tensor()).unwrap().sum_all().unwrap())
        .unwrap();
        let grad = loss
            .backward()
            .unwrap()
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(grad, [8.0; 4]);
    }

    /// Bilinear ×2 straight from its definition: output pixel o samples the input at
    /// (o + ½)/2 − ½, clamped to the image, and interpolates linearly.
    fn bilinear_by_definition(x: &[f32], h: usize, w: usize) -> Vec<f32> {
        let source = |o: usize, n: usize| {
            let t = ((o as f32 + 0.5) / 2.0 - 0.5).clamp(0.0, (n - 1) as f32);
            let i = t.floor() as usize;
            (i, (i + 1).min(n - 1), t - i as f32)
        };
        let mut out = Vec::with_capacity(4 * h * w);
        for oy in 0..2 * h {
            let (y0, y1, fy) = source(oy, h);
            for ox in 0..2 * w {
                let (x0, x1, fx) = source(ox, w);
                let row = |y: usize| x[y * w + x0] * (1.0 - fx) + x[y * w + x1] * fx;
                out.push(row(y0) * (1.0 - fy) + row(y1) * fy);
            }
        }
        out
    }

    #[test]
    fn bilinear_upsampling_matches_its_definition() {
        let (h, w) = (3, 5);
        let data: Vec<f32> = (0..h * w).map(|i| (i as f32 * 1.7).sin()).collect();
        let x = Tensor::from_vec(data.clone(), (1, 1, h, w), &Device::Cpu).unwrap();
        let y = upsample_bilinear_2x(&x).unwrap();
        assert_eq!(y.dims(), [1, 1, 2 * h, 2 * w]);
        let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (got, want) in y.iter().zip(bilinear_by_definition(&data, h, w)) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }

    #[test]
    fn bilinear_upsampling_spreads_each_pixel_over_four_outputs_edges_included() {
        // Along an axis every input pixel (also at a clamped edge) gives weights summing to 2
        // to the outputs, so the gradient of the output's sum is 4 everywhere.
        let x = Var::new(&[[[[1f32, -2.0, 0.5], [3.0, 4.0, -1.0]]]], &Device::Cpu).unwrap();
        let grads = upsample_bilinear_2x(x.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let grad = grads
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for g in grad {
            assert!((g - 4.0).abs() < 1e-6, "{g}");
        }
    }
}
