//! Convolutions for every device other than the CPU, composed of operations that are fast on
//! CUDA and Metal: gathers and one matrix product. candle computes a convolution's input
//! gradient with its conv-transpose kernel, which on CUDA is a naive loop (3.06 ms where an
//! upsample and a convolution of the same shapes take 0.85 ms on an H100). Written as im2col
//! (the window's taps gathered through a precomputed index, [`super::tap_gather`]) and a
//! matrix product, a convolution's gradients are a matrix product and a second gather, so
//! conv-transpose is never called. An upsample-then-convolve layer gathers from the small
//! image, and a transposed convolution is the convolution of the zero-dilated input with the
//! flipped kernel, its holes gathered as zeros: neither enlarged image is ever built. These
//! run on the CPU too under [`super::with_generic_ops`], where the tests compare them with
//! aegan's CPU kernels.

use candle_core::{Result, Tensor};

use super::phases::{self, PhaseGeometry};
use super::tap_gather::{channel_major, columns_by_pixel, Source, TapGeometry};

/// Zero padding (top, bottom, left, right) of the convolved image; negative crops it.
type Pads = (isize, isize, isize, isize);

/// 2-D convolution of the image `source` makes of `x` (B, C, H, W) with `weight`
/// (C_out, C, k_h, k_w), padding `pads`, equal `stride` on both axes.
fn convolve(x: &Tensor, weight: &Tensor, source: Source, stride: usize, pads: Pads) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (c_out, _, kh, kw) = weight.dims4()?;
    let Some(geometry) = TapGeometry::new((h, w), source, (kh, kw), stride, pads) else {
        candle_core::bail!(
            "conv2d: input {:?} ({source:?}) leaves no output for weight {:?}, stride {stride}, padding {pads:?}",
            x.dims(),
            weight.dims()
        )
    };
    // One product for the whole batch: the columns' rows are the output pixels of every image,
    // so the weight is shared as it is (no copy per image) and its gradient is one product too.
    let rows = columns_by_pixel(x, &geometry)?.matmul(&weight.reshape((c_out, c * kh * kw))?.t()?)?;
    channel_major(&rows, b, (geometry.out_h, geometry.out_w))
}

fn signed((top, bottom, left, right): (usize, usize, usize, usize)) -> Pads {
    (top as isize, bottom as isize, left as isize, right as isize)
}

/// 2-D convolution of `x` (B, C, H, W) with `weight` (C_out, C, k_h, k_w), zero padding
/// `(top, bottom, left, right)`, equal `stride` on both axes.
pub(crate) fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    pads: (usize, usize, usize, usize),
) -> Result<Tensor> {
    convolve(x, weight, Source::Plain, stride, signed(pads))
}

/// The convolution of `x` upsampled ×2 (nearest), read from `x` itself: as four convolutions
/// of `x`, one per output phase, where the convolution keeps the upsampled size.
pub(crate) fn upsample2x_conv2d(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    pads: (usize, usize, usize, usize),
) -> Result<Tensor> {
    let (_, c, h, w) = x.dims4()?;
    let (_, _, kh, kw) = weight.dims4()?;
    match PhaseGeometry::new((c, h, w), (kh, kw), stride, pads) {
        Some(geometry) => phases::upsample2x_conv2d(x, weight, &geometry),
        None => convolve(x, weight, Source::Upsampled, stride, signed(pads)),
    }
}

/// Transposed convolution of `x` (B, C_in, H, W) with `weight` (C_in, C_out, k, k): the
/// convolution of `x` dilated by `stride` with the kernel flipped and its channels swapped,
/// padded by `k − 1 − padding` (negative: cropped).
pub(crate) fn conv_transpose2d(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let k = weight.dim(2)?;
    let reversed: Vec<u32> = (0..k as u32).rev().collect();
    let reversed = Tensor::new(reversed.as_slice(), weight.device())?;
    let flipped = weight
        .index_select(&reversed, 2)?
        .index_select(&reversed, 3)?
        .transpose(0, 1)?
        .contiguous()?;
    let pad = k as isize - 1 - padding as isize;
    convolve(x, &flipped, Source::Dilated(stride), 1, (pad, pad, pad, pad))
}
