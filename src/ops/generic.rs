//! Convolutions for every device other than the CPU, composed of operations that are fast on
//! CUDA and Metal: slices, padding, one matrix product. candle computes a convolution's input
//! gradient with its conv-transpose kernel, which on CUDA is a naive loop (3.06 ms where an
//! upsample and a convolution of the same shapes take 0.85 ms on an H100). Written as im2col
//! (one gather of the padded input over a precomputed index) and a matrix product, a
//! convolution's gradients are a matrix product and the gather's adjoint (one scatter-add,
//! then the padding cropped), so conv-transpose is never called; a transposed convolution is the
//! convolution of the zero-dilated input with the flipped kernel. These run on the CPU too
//! under [`super::with_generic_ops`], where the tests compare them with aegan's CPU kernels.

use candle_core::{Result, Tensor};

/// 2-D convolution of `x` (B, C, H, W) with `weight` (C_out, C, k_h, k_w), zero padding
/// `(top, bottom, left, right)`, equal `stride` on both axes.
///
/// The columns of im2col are one gather (`index_select`) of the padded image over a
/// precomputed index, so the backward pass is one scatter-add, where k² slices and a stack
/// would make k² zero-filled gradient buffers and a concatenation.
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
    if h < kh || w < kw {
        candle_core::bail!("a {kh}×{kw} kernel does not fit a padded {h}×{w} image")
    }
    let (out_h, out_w) = ((h - kh) / stride + 1, (w - kw) / stride + 1);
    let index = column_index((h, w), (kh, kw), stride, (out_h, out_w));
    let index = Tensor::from_vec(index, kh * kw * out_h * out_w, x.device())?;
    // (B, C, k_h·k_w·H'·W'), then (B, C·k_h·k_w, H'·W'): channel-major, as the weight is laid out.
    let columns = x
        .flatten_from(2)?
        .index_select(&index, 2)?
        .reshape((b, c * kh * kw, out_h * out_w))?;
    let weight = weight.reshape((c_out, c * kh * kw))?;
    weight
        .broadcast_matmul(&columns)?
        .reshape((b, c_out, out_h, out_w))
}

/// For every kernel offset (i, j) and output position (y, x), in that order, the position in
/// the flattened `h`×`w` image that the offset reads there: `(y·stride + i)·w + x·stride + j`.
fn column_index(
    (_, w): (usize, usize),
    (kh, kw): (usize, usize),
    stride: usize,
    (out_h, out_w): (usize, usize),
) -> Vec<u32> {
    let mut index = Vec::with_capacity(kh * kw * out_h * out_w);
    for i in 0..kh {
        for j in 0..kw {
            for y in 0..out_h {
                for x in 0..out_w {
                    index.push(((y * stride + i) * w + x * stride + j) as u32);
                }
            }
        }
    }
    index
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
