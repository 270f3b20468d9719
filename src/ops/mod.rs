//! Fast kernels as candle custom ops.
//!
//! candle 0.11 computes every convolution's input gradient with its CPU conv-transpose, which
//! runs about ten times slower than a matrix product of the same size, and every composed
//! operation costs a pass over memory plus a zero-filled gradient buffer. On the CPU in f32
//! aegan therefore runs its own kernels (other devices use candle's operations):
//!
//! - [`conv2d`]: im2col into a per-thread scratch buffer and one matrix product per image (the
//!   `gemm` crate candle itself uses, with its AVX-512 kernels where the CPU has them), or per
//!   few images side by side where the output plane has under 64 pixels, since gemm runs
//!   narrower products at half speed (`grouped`). The
//!   weight gradient is a matrix product per image summed per thread; the input gradient of
//!   a stride-1 convolution that keeps the size is the flipped convolution of the output
//!   gradient, other input gradients a matrix product and col2im. im2col reads shifted
//!   copies of the image plane (stride 1) or of its four even/odd phases (stride 2).
//!   A convolution that writes at most 16 channels on rows of 16 pixels or more (E's and
//!   Dx's first layers, G's RGB output), and the flipped convolution of an input gradient
//!   that writes at most 16, run directly instead: the padded image copied once (its
//!   even/odd phases for stride 2), and 4 channels × 16 pixels accumulated in registers, with
//!   AVX2 and FMA where the CPU has them, 16-wide vectors where it has AVX-512 (`direct`).
//! - [`upsample2x_conv2d`]: ×2 nearest upsampling fused into the convolution; with 'same'
//!   padding it runs as four smaller convolutions of the small image, one per output phase
//!   (sub-pixel form: 16 instead of 36 multiply-adds per pixel and channel pair at 3×3, 25
//!   instead of 64 at 4×4).
//! - [`conv_transpose2d`]: the same kernels in the other order.
//! - [`batch_norm_leaky_relu`] (training), [`scale_shift_leaky_relu`] (evaluation),
//!   [`bias_leaky_relu`], [`leaky_relu`] and [`tanh`]: one vectorised pass forward and one
//!   backward.
//! - [`add_scaled_noise`]: G's per-pixel noise, scaled per channel, in one pass each way.
//! - [`batch_norm_leaky_relu_plus_noise`]: batch norm, leaky ReLU and G's per-pixel noise as one
//!   operation, which stores one activation fewer for the backward pass.
//!
//! Every kernel is tested against candle's own operations (forward and gradients, ≤ 1e-4).
//!
//! On other devices convolutions are im2col (one gather through a precomputed index, whose
//! gradient is a second gather) and one matrix product; upsample-then-convolve layers and
//! transposed convolutions gather from the small image, so their gradients never go through
//! candle's conv-transpose kernel, which is naive on CUDA, nor build the enlarged image
//! (`generic`); [`with_generic_ops`] runs that path on the CPU for the tests.

mod activation;
mod batch_norm;
mod channels;
mod conv;
mod direct;
mod gemm;
mod generic;
mod grouped;
mod im2col;
mod linear;
mod noise;
mod parallel;
mod phases;
mod resample;
mod scratch;
mod source_table;
mod subpixel;
mod tap_gather;
mod uninit;
mod upsample;
mod vectorised_tanh;

/// Whether the CPU has AVX-512F, where the direct kernels' wide forms and the small planes'
/// 16-wide table reads and adds run.
#[cfg(target_arch = "x86_64")]
fn has_avx512f() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

pub use activation::{bias_leaky_relu, leaky_relu, scale_shift_leaky_relu, tanh};
pub use batch_norm::{batch_norm_leaky_relu, batch_norm_leaky_relu_plus_noise};
pub use conv::{conv2d, conv2d_rect, conv_transpose2d, upsample2x_conv2d};
pub(crate) use linear::linear_product;
pub use noise::add_scaled_noise;
pub use resample::{downsample_area, downsample_area_to, try_downsample_area_to, upsample_nearest};
pub use upsample::{pixel_shuffle_2x, upsample_bilinear_2x, upsample_nearest_2x};

thread_local! {
    /// Whether this thread runs the generic path; starts from `AEGAN_GENERIC_OPS=1`.
    static GENERIC: std::cell::Cell<bool> =
        std::cell::Cell::new(std::env::var_os("AEGAN_GENERIC_OPS").is_some_and(|v| v == "1"));
}

/// Runs `f` with aegan's CPU kernels switched off on this thread: every operation then takes
/// exactly the path it takes on CUDA and Metal (candle's operations), so that the GPU code is
/// tested on the CPU and a GPU difference can only be one of numerics. The environment
/// variable `AEGAN_GENERIC_OPS=1` does the same for every thread of a process.
pub fn with_generic_ops<T>(f: impl FnOnce() -> T) -> T {
    /// Puts the previous setting back, also when `f` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            GENERIC.with(|g| g.set(self.0));
        }
    }
    let _restore = Restore(GENERIC.with(|g| g.replace(true)));
    f()
}

/// Whether this thread runs the generic (GPU) path of the operations on the CPU too; see
/// [`with_generic_ops`].
pub fn generic_ops() -> bool {
    GENERIC.with(|g| g.get())
}

/// Whether aegan's own kernels run: every tensor on the CPU in f32 and the generic path not
/// asked for (elsewhere the operations fall back to candle's).
pub(crate) fn on_cpu_in_f32(tensors: &[&candle_core::Tensor]) -> bool {
    !generic_ops()
        && tensors
            .iter()
            .all(|t| t.device().is_cpu() && t.dtype() == candle_core::DType::F32)
}

/// The f32 values of a contiguous CPU tensor's storage, or an error naming `op`.
pub(crate) fn contiguous_f32<'a>(
    storage: &'a candle_core::CpuStorage,
    layout: &candle_core::Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let data = match storage {
        candle_core::CpuStorage::F32(d) => d.as_slice(),
        _ => candle_core::bail!("{op}: only f32 is supported"),
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: inputs must be contiguous"),
    }
}

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

/// The gradients of `Σ ours·probe` and `Σ reference·probe` with respect to every variable
/// agree within `tolerance` (for the kernels' tests).
#[cfg(test)]
pub(crate) fn assert_same_gradients(
    ours: &candle_core::Tensor,
    reference: &candle_core::Tensor,
    probe: &candle_core::Tensor,
    variables: &[&candle_core::Var],
    tolerance: f32,
    label: &str,
) {
    let gradients = |t: &candle_core::Tensor| {
        (t * probe)
            .and_then(|p| p.sum_all())
            .and_then(|s| s.backward())
            .expect("backward pass")
    };
    let (g_ours, g_ref) = (gradients(ours), gradients(reference));
    for (i, v) in variables.iter().enumerate() {
        let t = v.as_tensor();
        let d = max_abs_diff(g_ours.get(t).expect("gradient"), g_ref.get(t).expect("gradient"));
        assert!(d < tolerance, "gradient of variable {i} {label}: {d}");
    }
}
