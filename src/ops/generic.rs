//! Convolutions for every device other than the CPU, composed of operations that are fast on
//! CUDA and Metal: slices, padding, one matrix product. candle computes a convolution's input
//! gradient with its conv-transpose kernel, which on CUDA is a naive loop (3.06 ms where an
//! upsample and a convolution of the same shapes take 0.85 ms on an H100). Written as im2col
//! (shifted, strided slices of the padded input stacked along the channels) and a matrix
//! product, a convolution's gradients are a matrix product and the slices' adjoints (padding
//! and additions), so conv-transpose is never called; a transposed convolution is the
//! convolution of the zero-dilated input with the flipped kernel. These run on the CPU too
//! under [`super::with_generic_ops`], where the tests compare them with aegan's CPU kernels.

use candle_core::{Result, Tensor};

/// Every `stride`-th element along `dim`, starting at the first; the length along `dim` must be
/// `stride · (n − 1) + 1` for the `n` kept.
fn every_nth(x: &Tensor, dim: usize, stride: usize) -> Result<Tensor> {
    if stride == 1 {
        return Ok(x.clone());
    }
    let len = x.dim(dim)?;
    let n = (len - 1) / stride + 1;
    let padded = x.pad_with_zeros(dim, 0, n * stride - len)?;
    let mut shape = padded.dims().to_vec();
    shape[dim] = n;
    shape.insert(dim + 1, stride);
    padded.reshape(shape)?.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)
}

/// 2-D convolution of `x` (B, C, H, W) with `weight` (C_out, C, k_h, k_w), zero padding
/// `(top, bottom, left, right)`, equal `stride` on both axes.
pub(crate) fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    pads: (usize, usize, usize, usize),
) -> Result<Tensor> {
    let (top, bottom, left, right) = pads;
    let (b, c, h, w) = x.dims4()?;
    let (c_out, _, kh, kw) = weight.dims4()?;
    let x = x.pad_with_zeros(2, top, bottom)?.pad_with_zeros(3, left, right)?;
    let (h, w) = (h + top + bottom, w + left + right);
    let (out_h, out_w) = ((h - kh) / stride + 1, (w - kw) / stride + 1);
    let mut columns = Vec::with_capacity(kh * kw);
    for i in 0..kh {
        let rows = every_nth(&x.narrow(2, i, stride * (out_h - 1) + 1)?, 2, stride)?;
        for j in 0..kw {
            columns.push(every_nth(
                &rows.narrow(3, j, stride * (out_w - 1) + 1)?,
                3,
                stride,
            )?);
        }
    }
    // (B, C, k_h·k_w, H', W'): channel-major, as the weight is laid out.
    let columns = Tensor::stack(&columns, 2)?.reshape((b, c * kh * kw, out_h * out_w))?;
    let weight = weight.reshape((c_out, c * kh * kw))?;
    weight
        .broadcast_matmul(&columns)?
        .reshape((b, c_out, out_h, out_w))
}

/// `x` with `stride − 1` zeros between neighbours along `dim`.
fn dilate(x: &Tensor, dim: usize, stride: usize) -> Result<Tensor> {
    if stride == 1 {
        return Ok(x.clone());
    }
    let len = x.dim(dim)?;
    let zeros = x.zeros_like()?;
    let mut parts = vec![x.clone()];
    parts.extend(std::iter::repeat_n(zeros, stride - 1));
    let mut shape = x.dims().to_vec();
    shape[dim] = len * stride;
    Tensor::stack(&parts, dim + 1)?
        .reshape(shape)?
        .narrow(dim, 0, (len - 1) * stride + 1)
}

/// Transposed convolution of `x` (B, C_in, H, W) with `weight` (C_in, C_out, k, k): the
/// convolution of `x` dilated by `stride` with the kernel flipped and its channels swapped,
/// padded by `k − 1 − padding` (cropped where that is negative).
pub(crate) fn conv_transpose2d(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let k = weight.dim(2)?;
    let reversed: Vec<u32> = (0..k as u32).rev().collect();
    let reversed = Tensor::new(reversed.as_slice(), weight.device())?;
    let flipped = weight
        .index_select(&reversed, 2)?
        .index_select(&reversed, 3)?
        .transpose(0, 1)?
        .contiguous()?;
    let x = dilate(&dilate(x, 2, stride)?, 3, stride)?;
    let pad = (k - 1).saturating_sub(padding);
    let y = conv2d(&x, &flipped, 1, (pad, pad, pad, pad))?;
    let crop = padding.saturating_sub(k - 1);
    if crop == 0 {
        return Ok(y);
    }
    let (h, w) = (y.dim(2)?, y.dim(3)?);
    y.narrow(2, crop, h - 2 * crop)?.narrow(3, crop, w - 2 * crop)
}
