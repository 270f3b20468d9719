//! Fast kernels as candle custom ops.
//!
//! candle 0.11 computes every convolution's input gradient with its CPU conv-transpose, which
//! runs about ten times slower than a matrix product of the same size. On the CPU aegan
//! therefore convolves through [`conv2d`]: an im2col followed by a matrix product per image,
//! so that the backward pass is matrix products (the `gemm` crate candle itself uses) plus a
//! col2im scatter-add, the adjoint of im2col. Transposed convolutions ([`conv_transpose2d`])
//! are the same kernels in the other order. Other devices use candle's own convolutions.
//!
//! Batch normalisation in training mode and the leaky ReLU after it run as one fused CPU
//! kernel with a hand-written backward pass ([`batch_norm_leaky_relu`]); so do a bias and the
//! leaky ReLU after it ([`bias_leaky_relu`]), and the leaky ReLU alone ([`leaky_relu`]).

mod activation;
mod batch_norm;
mod conv;
mod gemm;
mod im2col;
mod subpixel;
mod upsample;

pub use activation::{bias_leaky_relu, leaky_relu, scale_shift_leaky_relu};
pub use batch_norm::{batch_norm_leaky_relu, composed as batch_norm_leaky_relu_composed};
pub use conv::{conv2d, conv_transpose2d, upsample2x_conv2d};
pub use upsample::upsample_nearest_2x;

/// Largest absolute difference between two tensors of one shape (for the kernels' tests).
#[cfg(test)]
pub(crate) fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    let diff = (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0));
    diff.and_then(|d| d.to_scalar::<f32>())
        .expect("tensors of one shape")
}
