//! Convolutions and transposed convolutions on the CPU as candle custom ops built from
//! im2col/col2im and matrix products, one image at a time, or a few side by side where the
//! output plane is small (`super::grouped`).
//!
//! Three kernels cover both operations and all their gradients (`W` is (C_out, C·k·k)):
//! - forward: `y_b = W · im2col(x_b)`;
//! - transposed: `x_b = col2im(Wᵀ · y_b)`, which is the convolution's input gradient; for a
//!   stride-1 convolution that keeps the size, the flipped convolution of `y_b` instead;
//! - weight gradient: `∇W = Σ_b ∇y_b · im2col(x_b)ᵀ`.
//!
//! An upsampled input is upsampled per image in the scratch buffer, or, with 'same' padding,
//! the whole operation runs in sub-pixel form (`super::subpixel`). A convolution that writes
//! few channels (at most 16: E's and Dx's first layers, G's RGB output), its weight gradient
//! (on CPUs with AVX2 and FMA), and the flipped convolution of an input gradient that writes
//! few channels run without a column matrix (`super::direct`).
//!
//! Working one image at a time keeps each column matrix in cache (a few MB) instead of
//! materialising the batch's columns (hundreds of MB at 32×32, batch 64) and keeping them
//! alive for the backward pass.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::{contiguous_f32, on_cpu_in_f32};

use std::mem::MaybeUninit;
use std::ops::Range;

use super::direct::Direct;
use super::gemm::{matmul, matmul_into, Mat};
use super::grouped::{images_per_product, side_by_side, split_columns};
use super::im2col::{flip_weight, Geometry};
use super::parallel::{each_group, each_image, sum_over_groups};
use super::subpixel::SubPixel;
use super::uninit::{fill, written_vec};
use super::upsample::{sum_blocks, upsample_into};

/// A convolution: its geometry, its number of output channels, and whether its input is
/// upsampled ×2 (nearest) first, in which case `g` describes the upsampled image.
#[derive(Debug, Clone, Copy)]
struct ConvShape {
    g: Geometry,
    c_out: usize,
    upsample: bool,
}

impl ConvShape {
    fn weight(&self) -> [usize; 4] {
        [self.c_out, self.g.channels, self.g.kernel_h, self.g.kernel_w]
    }

    /// The input as the operation receives it (before any upsampling).
    fn input(&self, batch: usize) -> [usize; 4] {
        let factor = if self.upsample { 2 } else { 1 };
        [batch, self.g.channels, self.g.in_h / factor, self.g.in_w / factor]
    }

    fn input_len(&self) -> usize {
        self.input(1).iter().product()
    }

    fn output(&self, batch: usize) -> [usize; 4] {
        [batch, self.c_out, self.g.out_h, self.g.out_w]
    }

    fn output_len(&self) -> usize {
        self.c_out * self.g.cols()
    }

    fn weight_mat<'a>(&self, w: &'a [f32]) -> Mat<'a> {
        Mat::new(w, self.c_out, self.g.rows())
    }

    /// Scratch per thread: the upsampled image (if any), then the column matrix (unless the
    /// image is its own column matrix).
    fn scratch_len(&self) -> usize {
        let up = if self.upsample { self.g.image_len() } else { 0 };
        let cols = if self.g.is_identity() {
            0
        } else {
            self.g.rows() * self.g.cols()
        };
        up + cols
    }

    fn split_scratch<'a>(&self, scratch: &'a mut [f32]) -> (&'a mut [f32], &'a mut [f32]) {
        scratch.split_at_mut(if self.upsample { self.g.image_len() } else { 0 })
    }

    /// The column matrix (rows × cols) of one input image, built in `scratch`.
    fn columns<'a>(&self, xb: &'a [f32], scratch: &'a mut [f32]) -> &'a [f32] {
        let g = self.g;
        let (up, cols) = self.split_scratch(scratch);
        let image: &[f32] = if self.upsample {
            upsample_into(xb, (g.channels, g.in_h / 2, g.in_w / 2), up);
            up
        } else {
            xb
        };
        if g.is_identity() {
            image
        } else {
            g.im2col(image, cols);
            cols
        }
    }

    /// The sub-pixel form of an upsampled 'same' convolution, where it pays: from
    /// [`SUBPIXEL_MIN_BATCH`] images on; for a single image only on planes of 16×16 or more,
    /// since smaller phase products split badly over threads (measured: author32's G at batch
    /// 1 ran at half the speed of the upsampled form).
    fn subpixel(&self, batch: usize) -> Option<SubPixel> {
        let g = self.g;
        let same = g.stride == 1 && g.out_h == g.in_h && g.out_w == g.in_w && g.pad_top == g.pad_left;
        let square = g.kernel_h == g.kernel_w;
        // Never a function of the thread count: the two forms round differently, and results
        // must not depend on the machine's core count.
        let pays = batch >= SUBPIXEL_MIN_BATCH || (g.in_h / 2) * (g.in_w / 2) >= 256;
        if !self.upsample || !same || !square || !pays {
            return None;
        }
        SubPixel::new(
            g.channels,
            self.c_out,
            (g.in_h / 2, g.in_w / 2),
            g.kernel_h,
            g.pad_top,
        )
    }

    /// The direct form ([`Direct`]) of a convolution with few output channels whose input is
    /// not upsampled; chosen by shape alone, so that results never depend on the thread count.
    fn direct(&self) -> Option<Direct> {
        (!self.upsample)
            .then(|| Direct::new(self.g, self.c_out))
            .flatten()
    }

    /// `y_b = W · columns(x_b)` for every image.
    fn forward(&self, x: &[f32], w: &[f32], batch: usize) -> Vec<f32> {
        if let Some(sub) = self.subpixel(batch) {
            return sub.forward(x, w, batch);
        }
        if let Some(direct) = self.direct() {
            return direct.forward(x, w, batch);
        }
        if !self.upsample {
            return columns_product(self.g, self.weight_mat(w), x, batch);
        }
        let (rows, cols, in_len) = (self.g.rows(), self.g.cols(), self.input_len());
        let write = |y: &mut [MaybeUninit<f32>]| {
            each_image(y, batch, self.scratch_len(), |b, yb, scratch, par| {
                let columns = self.columns(&x[b * in_len..(b + 1) * in_len], scratch);
                matmul_into(yb, self.weight_mat(w), Mat::new(columns, rows, cols), par);
            })
        };
        // SAFETY: `each_image` hands every image's share of `y` to the closure, which writes
        // all of it (`matmul_into`).
        unsafe { written_vec(batch * self.output_len(), write) }
    }

    /// `x_b = col2im(Wᵀ · y_b)` for every image (then summed over 2×2 blocks if the input was
    /// upsampled): the transposed convolution, or the input gradient of the convolution.
    fn transposed(&self, y: &[f32], w: &[f32], batch: usize) -> Vec<f32> {
        if let Some(sub) = self.subpixel(batch) {
            return sub.input_gradient(y, w, batch);
        }
        let g = self.g;
        let out_len = self.output_len();
        let x_len = batch * self.input_len();
        if let Some(flipped) = g
            .flipped(self.c_out)
            .filter(|_| !self.upsample && !g.is_identity())
        {
            // The flipped convolution of ∇y: a smaller column matrix and no scatter.
            let w_flipped = flip_weight(w, self.c_out, g.kernel_h * g.kernel_w);
            if let Some(direct) = Direct::new(flipped, g.channels) {
                return direct.forward(y, &w_flipped, batch);
            }
            let w_flipped = Mat::new(&w_flipped, g.channels, flipped.rows());
            return columns_product(flipped, w_flipped, y, batch);
        }
        if !self.upsample && !g.is_identity() {
            return self.transposed_by_columns(y, w, batch);
        }
        let write = |x: &mut [MaybeUninit<f32>]| {
            each_image(x, batch, self.scratch_len(), |b, xb, scratch, par| {
                let yb = Mat::new(&y[b * out_len..(b + 1) * out_len], self.c_out, g.cols());
                let (up, cols) = self.split_scratch(scratch);
                if self.upsample {
                    if g.is_identity() {
                        matmul(up, self.weight_mat(w).t(), yb, false, par);
                    } else {
                        matmul(cols, self.weight_mat(w).t(), yb, false, par);
                        up.fill(0.0);
                        g.col2im_add(cols, up);
                    }
                    sum_blocks(up, (g.channels, g.in_h / 2, g.in_w / 2), xb);
                } else {
                    matmul_into(xb, self.weight_mat(w).t(), yb, par);
                }
            })
        };
        // SAFETY: every image's share of `x` is written whole: by `sum_blocks` or by
        // `matmul_into`.
        unsafe { written_vec(x_len, write) }
    }

    /// [`ConvShape::transposed`] of a convolution whose input is not upsampled and not its own
    /// column matrix: `Wᵀ · ∇y` for several images side by side, then col2im into each.
    fn transposed_by_columns(&self, y: &[f32], w: &[f32], batch: usize) -> Vec<f32> {
        let g = self.g;
        let (rows, n, out_len) = (g.rows(), g.cols(), self.output_len());
        let group = images_per_product(n).min(batch.max(1));
        let (cols_len, joined_len) = (rows * group * n, self.c_out * group * n);
        let write = |x: &mut [MaybeUninit<f32>]| {
            each_group(
                x,
                batch,
                group,
                cols_len + joined_len,
                |images, xs, scratch, par| {
                    let wide = images.len() * n;
                    let (cols, joined) = scratch.split_at_mut(cols_len);
                    let ys = &y[images.start * out_len..images.end * out_len];
                    let ys = side_by_side(ys, self.c_out, n, joined);
                    let cols = &mut cols[..rows * wide];
                    matmul(
                        cols,
                        self.weight_mat(w).t(),
                        Mat::new(ys, self.c_out, wide),
                        false,
                        par,
                    );
                    g.col2im_add_images(cols, fill(xs, 0.0));
                },
            )
        };
        // SAFETY: every group's share of `x` is filled with zeros before anything is added.
        unsafe { written_vec(batch * self.input_len(), write) }
    }

    /// `∇W = Σ_b ∇y_b · columns(x_b)ᵀ`, summed as its transpose `Σ_b columns(x_b) · ∇y_bᵀ`
    /// (measured twice as fast with gemm for these shapes: the long column matrix is the
    /// left operand), then transposed once.
    fn weight_gradient(&self, x: &[f32], grad_y: &[f32], batch: usize) -> Vec<f32> {
        if let Some(sub) = self.subpixel(batch) {
            return sub.weight_gradient(x, grad_y, batch);
        }
        if let Some(grad_w) = self.direct().and_then(|d| d.weight_gradient(x, grad_y, batch)) {
            return grad_w;
        }
        let (rows, cols, in_len) = (self.g.rows(), self.g.cols(), self.input_len());
        let out_len = self.output_len();
        let w_len = self.c_out * rows;
        // An upsampled input is built image by image in the scratch buffer (`columns`); other
        // inputs several images side by side on small planes.
        let group = if self.upsample {
            1
        } else {
            images_per_product(cols)
        };
        let cols_len = self.scratch_len().max(rows * group * cols);
        let joined_len = if group > 1 { self.c_out * group * cols } else { 0 };
        let accumulate = |images: Range<usize>, acc_t: &mut [f32], scratch: &mut [f32], first: bool, par| {
            let wide = images.len() * cols;
            let (col_scratch, joined) = scratch.split_at_mut(cols_len);
            let xs = &x[images.start * in_len..images.end * in_len];
            let columns: &[f32] = if images.len() == 1 {
                self.columns(xs, &mut col_scratch[..self.scratch_len()])
            } else {
                self.g.im2col_images(xs, &mut col_scratch[..rows * wide]);
                &col_scratch[..rows * wide]
            };
            let gys = &grad_y[images.start * out_len..images.end * out_len];
            let gys = side_by_side(gys, self.c_out, cols, joined);
            let gy = Mat::new(gys, self.c_out, wide);
            matmul(acc_t, Mat::new(columns, rows, wide), gy.t(), !first, par);
        };
        let sum_t = sum_over_groups(batch, group, w_len, cols_len + joined_len, accumulate);
        // (rows × C_out) → (C_out × rows).
        let mut grad_w = vec![0f32; w_len];
        for (r, line) in sum_t.chunks_exact(self.c_out).enumerate() {
            for (o, &v) in line.iter().enumerate() {
                grad_w[o * rows + r] = v;
            }
        }
        grad_w
    }
}

/// `y_b = W · columns_g(x_b)` for every image of `x` (not upsampled; `W` is C_out × rows):
/// the column matrices of several images side by side on small planes
/// ([`images_per_product`]), one product per group, split back into images.
fn columns_product(g: Geometry, w: Mat, x: &[f32], batch: usize) -> Vec<f32> {
    let (rows, n, in_len) = (g.rows(), g.cols(), g.image_len());
    let c_out = w.rows();
    let group = images_per_product(n).min(batch.max(1));
    let cols_len = if g.is_identity() && group == 1 {
        0
    } else {
        rows * group * n
    };
    let product_len = if group > 1 { c_out * group * n } else { 0 };
    let write = |y: &mut [MaybeUninit<f32>]| {
        each_group(
            y,
            batch,
            group,
            cols_len + product_len,
            |images, ys, scratch, par| {
                let wide = images.len() * n;
                let xs = &x[images.start * in_len..images.end * in_len];
                let (cols, product) = scratch.split_at_mut(cols_len);
                let columns: &[f32] = if g.is_identity() && images.len() == 1 {
                    xs
                } else {
                    g.im2col_images(xs, &mut cols[..rows * wide]);
                    &cols[..rows * wide]
                };
                if images.len() == 1 {
                    matmul_into(ys, w, Mat::new(columns, rows, n), par);
                } else {
                    let product = &mut product[..c_out * wide];
                    matmul(product, w, Mat::new(columns, rows, wide), false, par);
                    split_columns(product, c_out, n, ys);
                }
            },
        )
    };
    // SAFETY: every group's share of `y` is written whole, by `matmul_into` or
    // `split_columns`.
    unsafe { written_vec(batch * c_out * n, write) }
}

/// Smallest batch that takes the sub-pixel form for planes under 16×16 (a single small image
/// runs faster upsampled, measured on author32's G at batch 1).
const SUBPIXEL_MIN_BATCH: usize = 2;

/// Fails unless `layout` has exactly `dims`.
fn expect_dims(layout: &Layout, dims: [usize; 4], what: &str) -> Result<()> {
    if layout.dims() != dims {
        candle_core::bail!("{what}: expected shape {dims:?}, got {:?}", layout.dims())
    }
    Ok(())
}

/// The CPU forward pass shared by the three operations: checks that the arguments have the
/// `expected` shapes (dimension 0 of the first is the batch), runs `kernel` on their data and
/// shapes its result as `result_dims`.
fn run_kernel(
    op: &str,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    expected: impl Fn(usize) -> ([usize; 4], [usize; 4], [usize; 4]),
    kernel: impl FnOnce(&[f32], &[f32], usize) -> Vec<f32>,
) -> Result<(CpuStorage, Shape)> {
    let batch = l1.dims().first().copied().unwrap_or(0);
    let (first, second, result_dims) = expected(batch);
    expect_dims(l1, first, op)?;
    expect_dims(l2, second, op)?;
    let result = kernel(contiguous_f32(s1, l1, op)?, contiguous_f32(s2, l2, op)?, batch);
    Ok((CpuStorage::F32(result), Shape::from(result_dims.to_vec())))
}

/// `gradient()` if backpropagation needs the gradient of `t`, else `None`.
pub(super) fn gradient_of(t: &Tensor, gradient: impl FnOnce() -> Result<Tensor>) -> Result<Option<Tensor>> {
    needs_gradient(t).then(gradient).transpose()
}

/// Whether backpropagation needs the gradient of `t`: it is a variable or computed from one.
/// (candle asks every operation for the gradients of all its arguments; real images and
/// detached samples need none, and the first convolution's input gradient is a large one.)
fn needs_gradient(t: &Tensor) -> bool {
    t.track_op()
}

/// Convolution: (x, W) → y.
struct Conv2dOp(ConvShape);

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "aegan-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let shape = self.0;
        run_kernel(
            self.name(),
            (s1, l1),
            (s2, l2),
            |b| (shape.input(b), shape.weight(), shape.output(b)),
            |x, w, b| shape.forward(x, w, b),
        )
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        grad_y: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_y = grad_y.contiguous()?;
        let grad_x = gradient_of(x, || grad_y.apply_op2_no_bwd(w, &TransposedOp(self.0)))?;
        let grad_w = gradient_of(w, || x.apply_op2_no_bwd(&grad_y, &WeightGradientOp(self.0)))?;
        Ok((grad_x, grad_w))
    }
}

/// Transposed convolution: (y, W) → x, the adjoint of [`Conv2dOp`] in its first argument.
struct TransposedOp(ConvShape);

impl CustomOp2 for TransposedOp {
    fn name(&self) -> &'static str {
        "aegan-conv-transpose2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let shape = self.0;
        run_kernel(
            self.name(),
            (s1, l1),
            (s2, l2),
            |b| (shape.output(b), shape.weight(), shape.input(b)),
            |y, w, b| shape.transposed(y, w, b),
        )
    }

    fn bwd(
        &self,
        y: &Tensor,
        w: &Tensor,
        _x: &Tensor,
        grad_x: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_x = grad_x.contiguous()?;
        let grad_y = gradient_of(y, || grad_x.apply_op2_no_bwd(w, &Conv2dOp(self.0)))?;
        let grad_w = gradient_of(w, || grad_x.apply_op2_no_bwd(y, &WeightGradientOp(self.0)))?;
        Ok((grad_y, grad_w))
    }
}

/// The weight gradient of a convolution: (x, ∇y) → ∇W. Used only inside backward passes.
struct WeightGradientOp(ConvShape);

impl CustomOp2 for WeightGradientOp {
    fn name(&self) -> &'static str {
        "aegan-conv2d-weight-gradient"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let shape = self.0;
        run_kernel(
            self.name(),
            (s1, l1),
            (s2, l2),
            |b| (shape.input(b), shape.output(b), shape.weight()),
            |x, grad_y, b| shape.weight_gradient(x, grad_y, b),
        )
    }
}

/// 2-D convolution of `x` (B, C, H, W) with `weight` (C_out, C, k, k): `pad_before` zero
/// rows/columns above/left, `pad_after` below/right, equal `stride` on both axes.
///
/// On the CPU in f32 this is im2col + a matrix product per image, and its gradients are
/// matrix products and a col2im; elsewhere it is candle's convolution (after explicit padding
/// when it is uneven).
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    pad_before: usize,
    pad_after: usize,
) -> Result<Tensor> {
    convolve(x, weight, stride, (pad_before, pad_after), false)
}

/// [`conv2d`] of `x` upsampled ×2 (nearest neighbour) first, without ever storing the
/// upsampled batch on the CPU: with 'same' padding as four convolutions of the small image,
/// one per output phase (sub-pixel form); otherwise each image is upsampled in a per-thread
/// scratch buffer and the input gradient sums 2×2 blocks there.
pub fn upsample2x_conv2d(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    pad_before: usize,
    pad_after: usize,
) -> Result<Tensor> {
    convolve(x, weight, stride, (pad_before, pad_after), true)
}

/// 2-D convolution of `x` (B, C, H, W) with a possibly rectangular `weight`
/// (C_out, C, k_h, k_w): `pad_h` zero rows above and below, `pad_w` zero columns left and
/// right, equal `stride` on both axes (Inception-v3's 1×7 and 7×1 convolutions, for example).
/// The same kernels as [`conv2d`] on the CPU in f32; candle's convolution elsewhere.
pub fn conv2d_rect(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    (pad_h, pad_w): (usize, usize),
) -> Result<Tensor> {
    let pads = Pads {
        top: pad_h,
        bottom: pad_h,
        left: pad_w,
        right: pad_w,
    };
    convolve_padded(x, weight, stride, pads, false)
}

/// Zero padding on each side of a plane.
#[derive(Debug, Clone, Copy)]
struct Pads {
    top: usize,
    bottom: usize,
    left: usize,
    right: usize,
}

fn convolve(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    (pad_before, pad_after): (usize, usize),
    upsample: bool,
) -> Result<Tensor> {
    if weight.dim(2)? != weight.dim(3)? {
        candle_core::bail!(
            "conv2d: kernel {:?} is not square (use conv2d_rect)",
            weight.dims()
        )
    }
    let pads = Pads {
        top: pad_before,
        bottom: pad_after,
        left: pad_before,
        right: pad_after,
    };
    convolve_padded(x, weight, stride, pads, upsample)
}

fn convolve_padded(x: &Tensor, weight: &Tensor, stride: usize, pads: Pads, upsample: bool) -> Result<Tensor> {
    let (_, c, h, w) = x.dims4()?;
    let (h, w) = if upsample { (2 * h, 2 * w) } else { (h, w) };
    let (c_out, c_in, kh, kw) = weight.dims4()?;
    let (padded_h, padded_w) = (h + pads.top + pads.bottom, w + pads.left + pads.right);
    if c_in != c || stride == 0 || padded_h < kh || padded_w < kw || kh == 0 || kw == 0 {
        candle_core::bail!(
            "conv2d: input {:?}{} does not fit weight {:?} with stride {stride}",
            x.dims(),
            if upsample { " upsampled ×2" } else { "" },
            weight.dims()
        )
    }
    if !on_cpu_in_f32(&[x]) {
        let pads = (pads.top, pads.bottom, pads.left, pads.right);
        return match upsample {
            true => super::generic::upsample2x_conv2d(x, weight, stride, pads),
            false => super::generic::conv2d(x, weight, stride, pads),
        };
    }
    let g = Geometry {
        channels: c,
        in_h: h,
        in_w: w,
        kernel_h: kh,
        kernel_w: kw,
        stride,
        pad_top: pads.top,
        pad_left: pads.left,
        out_h: (padded_h - kh) / stride + 1,
        out_w: (padded_w - kw) / stride + 1,
    };
    let shape = ConvShape { g, c_out, upsample };
    x.contiguous()?.apply_op2(&weight.contiguous()?, Conv2dOp(shape))
}

/// Transposed 2-D convolution of `x` (B, C_in, H, W) with `weight` (C_in, C_out, k, k),
/// `stride` and `padding` as in PyTorch's `ConvTranspose2d` (no output padding): the output is
/// (B, C_out, (H − 1)·stride − 2·padding + k, same for W).
///
/// A transposed convolution is the adjoint of the convolution with the same weight, so on the
/// CPU in f32 it is `weightᵀ · x_b` followed by a col2im per image, and its gradients are that
/// convolution and a weight gradient. Elsewhere it is candle's transposed convolution.
pub fn conv_transpose2d(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let (_, c, h, w) = x.dims4()?;
    let (c_in, c_out, k, k2) = weight.dims4()?;
    if c_in != c || k != k2 || stride == 0 || h == 0 || w == 0 {
        candle_core::bail!(
            "conv_transpose2d: input {:?} does not fit weight {:?} with stride {stride}",
            x.dims(),
            weight.dims()
        )
    }
    let out_h = ((h - 1) * stride + k).checked_sub(2 * padding).filter(|&s| s > 0);
    let out_w = ((w - 1) * stride + k).checked_sub(2 * padding).filter(|&s| s > 0);
    let (Some(out_h), Some(out_w)) = (out_h, out_w) else {
        candle_core::bail!(
            "conv_transpose2d: padding {padding} leaves no output for {:?}",
            x.dims()
        )
    };
    if !on_cpu_in_f32(&[x]) {
        return super::generic::conv_transpose2d(x, weight, stride, padding);
    }
    // The convolution this is the adjoint of: (C_out, out_h, out_w) → (C_in, h, w).
    let g = Geometry {
        channels: c_out,
        in_h: out_h,
        in_w: out_w,
        kernel_h: k,
        kernel_w: k,
        stride,
        pad_top: padding,
        pad_left: padding,
        out_h: h,
        out_w: w,
    };
    x.contiguous()?.apply_op2(
        &weight.contiguous()?,
        TransposedOp(ConvShape {
            g,
            c_out: c_in,
            upsample: false,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::super::upsample::upsample_nearest_2x;
    use super::*;
    use crate::rng::TrainRng;
    use candle_core::{Device, Var};

    use crate::ops::{assert_same_gradients, max_abs_diff as max_diff};

    /// Forward and both gradients against candle's convolution, for strides 1 and 2 and even
    /// and odd kernels, symmetric and uneven padding. (Square inputs: candle's own conv2d
    /// backward assumes them.)
    #[test]
    fn matches_candle_convolution_forward_and_gradients() {
        let mut rng = TrainRng::new(11);
        let dev = Device::Cpu;
        // Batch 1 takes the one-image-at-a-time path with a parallel product.
        for (k, stride, pb, pa, h, batch) in [
            (3, 1, 1, 1, 8, 3),
            (3, 2, 1, 1, 8, 1),
            (4, 1, 1, 2, 7, 3),
            (5, 1, 2, 2, 6, 1),
            (1, 1, 0, 0, 5, 3),
            (1, 1, 0, 0, 5, 1),
            (3, 2, 1, 1, 7, 3),
            (3, 1, 0, 0, 6, 3),
            // Planes under 64 pixels go several images to a product (`grouped`): 4×4 outputs
            // four at a time, so 6 images are a group of 4 and one of 2, and 5 images a group
            // of 4 and a lone image; 5×5 ones three at a time, so 4 are 3 and 1.
            (3, 2, 1, 1, 8, 6),
            (3, 1, 1, 1, 4, 5),
            (1, 1, 0, 0, 5, 4),
        ] {
            let x = Var::from_tensor(&rng.test_input((batch, 4, h, h), &dev).unwrap()).unwrap();
            let w = Var::from_tensor(&rng.test_input((5, 4, k, k), &dev).unwrap()).unwrap();
            let label = format!("k{k} s{stride} pads ({pb},{pa})");
            assert_matches_candle(&mut rng, (&x, &w), stride, (pb, pa), 1e-4, &label);
        }
    }

    /// `conv2d` against candle's convolution of the zero-padded input: the output's shape,
    /// its values (≤ 1e-4), and the gradients of x and W under a random probe (≤
    /// `gradient_tolerance`).
    fn assert_matches_candle(
        rng: &mut TrainRng,
        (x, w): (&Var, &Var),
        stride: usize,
        (pb, pa): (usize, usize),
        gradient_tolerance: f32,
        label: &str,
    ) {
        let ours = conv2d(x, w, stride, pb, pa).unwrap();
        let reference = x
            .pad_with_zeros(2, pb, pa)
            .unwrap()
            .pad_with_zeros(3, pb, pa)
            .unwrap()
            .conv2d(w, 0, stride, 1, 1)
            .unwrap();
        assert_eq!(ours.dims(), reference.dims(), "{label}");
        assert!(max_diff(&ours, &reference) < 1e-4, "forward {label}");
        let probe = rng.test_input(ours.shape(), &Device::Cpu).unwrap();
        assert_same_gradients(&ours, &reference, &probe, &[x, w], gradient_tolerance, label);
    }

    /// The direct form (few output channels, rows of 16 or more): forward, the input gradient
    /// (its flipped convolution writes few channels too) and the weight gradient against
    /// candle's convolution.
    #[test]
    fn few_output_channels_match_candle_forward_and_gradients() {
        let mut rng = TrainRng::new(17);
        let dev = Device::Cpu;
        for (c_in, c_out, side, k, stride, pb, pa, batch) in [
            (3, 8, 16, 3, 1, 1, 1, 3),
            (8, 3, 20, 3, 1, 1, 1, 1),
            (8, 16, 32, 3, 2, 1, 1, 2),
            (4, 5, 17, 4, 1, 1, 2, 3),
            (3, 16, 34, 4, 2, 1, 1, 2),
        ] {
            let x = Var::from_tensor(&rng.test_input((batch, c_in, side, side), &dev).unwrap()).unwrap();
            let w = Var::from_tensor(&rng.test_input((c_out, c_in, k, k), &dev).unwrap()).unwrap();
            let label = format!("{c_in} → {c_out}, {side}², k{k} s{stride} pads ({pb},{pa})");
            assert_matches_candle(&mut rng, (&x, &w), stride, (pb, pa), 1e-3, &label);
        }
    }

    #[test]
    fn transposed_convolution_matches_candle_forward_and_gradients() {
        let mut rng = TrainRng::new(12);
        let dev = Device::Cpu;
        for (k, stride, padding, h, batch) in [
            (4, 2, 1, 4, 2),
            (3, 1, 1, 5, 1),
            (4, 2, 0, 3, 3),
            (3, 2, 1, 4, 2),
            (1, 1, 0, 3, 2),
            // Few output channels on rows of 16: the direct kernels, forward and backward.
            (3, 1, 1, 16, 2),
            (3, 2, 1, 16, 1),
        ] {
            let x = Var::from_tensor(&rng.test_input((batch, 5, h, h), &dev).unwrap()).unwrap();
            let w = Var::from_tensor(&rng.test_input((5, 3, k, k), &dev).unwrap()).unwrap();
            let ours = conv_transpose2d(&x, &w, stride, padding).unwrap();
            let reference = x.conv_transpose2d(&w, padding, 0, stride, 1).unwrap();
            assert_eq!(ours.dims(), reference.dims(), "k{k} s{stride} p{padding}");
            assert!(
                max_diff(&ours, &reference) < 1e-4,
                "forward k{k} s{stride} p{padding}"
            );
            let probe = rng.test_input(ours.shape(), &dev).unwrap();
            let label = format!("k{k} s{stride} p{padding}");
            assert_same_gradients(&ours, &reference, &probe, &[&x, &w], 1e-3, &label);
        }
    }

    #[test]
    fn fused_upsample_matches_upsampling_then_convolving() {
        let mut rng = TrainRng::new(13);
        let dev = Device::Cpu;
        // 'Same' stride-1 convolutions take the sub-pixel form (odd and even kernels, batch 1
        // with phases in parallel); other paddings and strides the upsampled scratch. The
        // 4×5 planes go four images to a product: 9 images are groups of 4, 4 and a lone one,
        // 6 images 4 and 2.
        for (k, stride, pb, pa, batch) in [
            (3, 1, 1, 1, 9),
            (4, 1, 1, 2, 6),
            (3, 1, 1, 1, 3),
            (3, 1, 1, 1, 1),
            (5, 1, 2, 2, 2),
            (4, 1, 1, 2, 1),
            (4, 1, 1, 2, 3),
            (2, 1, 0, 1, 2),
            (1, 1, 0, 0, 2),
            (3, 1, 0, 0, 2),
            (3, 2, 1, 1, 2),
        ] {
            let x = Var::from_tensor(&rng.test_input((batch, 3, 4, 5), &dev).unwrap()).unwrap();
            let w = Var::from_tensor(&rng.test_input((2, 3, k, k), &dev).unwrap()).unwrap();
            let ours = upsample2x_conv2d(&x, &w, stride, pb, pa).unwrap();
            let reference = conv2d(&upsample_nearest_2x(&x).unwrap(), &w, stride, pb, pa).unwrap();
            assert_eq!(ours.dims(), reference.dims());
            let label = format!("k{k} s{stride} pads ({pb},{pa})");
            assert!(max_diff(&ours, &reference) < 1e-4, "forward {label}");
            let probe = rng.test_input(ours.shape(), &dev).unwrap();
            assert_same_gradients(&ours, &reference, &probe, &[&x, &w], 1e-4, &label);
        }
    }

    /// A single image of 16×16 or more takes the sub-pixel form with its phases in parallel.
    #[test]
    fn fused_upsample_of_one_large_image_matches_upsampling_then_convolving() {
        let mut rng = TrainRng::new(14);
        let dev = Device::Cpu;
        for k in [3, 4] {
            let x = Var::from_tensor(&rng.test_input((1, 2, 16, 16), &dev).unwrap()).unwrap();
            let w = Var::from_tensor(&rng.test_input((3, 2, k, k), &dev).unwrap()).unwrap();
            let (pb, pa) = ((k - 1) / 2, k / 2);
            let ours = upsample2x_conv2d(&x, &w, 1, pb, pa).unwrap();
            let reference = conv2d(&upsample_nearest_2x(&x).unwrap(), &w, 1, pb, pa).unwrap();
            assert!(max_diff(&ours, &reference) < 1e-4, "forward k{k}");
            let probe = rng.test_input(ours.shape(), &dev).unwrap();
            assert_same_gradients(&ours, &reference, &probe, &[&x, &w], 1e-3, &format!("k{k}"));
        }
    }

    #[test]
    fn constant_inputs_get_no_gradient_and_the_weight_gradient_is_unchanged() {
        let mut rng = TrainRng::new(15);
        let dev = Device::Cpu;
        let x = rng.test_input((2, 3, 6, 6), &dev).unwrap();
        let w = Var::from_tensor(&rng.test_input((4, 3, 3, 3), &dev).unwrap()).unwrap();
        let ours = conv2d(&x, &w, 1, 1, 1)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let reference = x
            .conv2d(&w, 1, 1, 1, 1)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(ours.get(&x).is_none(), "a constant input got a gradient");
        let d = max_diff(
            ours.get(w.as_tensor()).unwrap(),
            reference.get(w.as_tensor()).unwrap(),
        );
        assert!(d < 1e-4, "weight gradient differs by {d}");
    }

    #[test]
    fn non_square_inputs_match_candle_forward() {
        let mut rng = TrainRng::new(16);
        let dev = Device::Cpu;
        let x = rng.test_input((2, 3, 6, 9), &dev).unwrap();
        let w = rng.test_input((4, 3, 3, 3), &dev).unwrap();
        for stride in [1, 2] {
            let ours = conv2d(&x, &w, stride, 1, 1).unwrap();
            let reference = x.conv2d(&w, 1, stride, 1, 1).unwrap();
            assert!(max_diff(&ours, &reference) < 1e-4);
        }
    }
}
