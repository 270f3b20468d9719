//! Convolution as im2col + matrix product, with col2im as its exact adjoint.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// The shape of one 2-D convolution: square kernel, equal stride on both axes, `pad_before`
/// zeros above/left (the rows/columns below/right follow from the output size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    channels: usize,
    in_h: usize,
    in_w: usize,
    kernel: usize,
    stride: usize,
    pad_before: usize,
    out_h: usize,
    out_w: usize,
}

impl Geometry {
    fn rows(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }

    fn cols(&self) -> usize {
        self.out_h * self.out_w
    }

    fn image_len(&self) -> usize {
        self.channels * self.in_h * self.in_w
    }

    /// Calls `f(row, out_index, in_index)` for every column entry that reads a real (not
    /// padding) input pixel; `row` is (channel, ky, kx), `out_index` is oy·out_w + ox.
    #[inline]
    fn for_each_tap(&self, mut f: impl FnMut(usize, std::ops::Range<usize>, usize)) {
        let k = self.kernel;
        for c in 0..self.channels {
            for ky in 0..k {
                for kx in 0..k {
                    let row = (c * k + ky) * k + kx;
                    for oy in 0..self.out_h {
                        let iy = (oy * self.stride + ky) as isize - self.pad_before as isize;
                        if iy < 0 || iy as usize >= self.in_h {
                            continue;
                        }
                        // Output columns whose input column ox·s + kx − pad lies in [0, in_w).
                        let lo = (self.pad_before.saturating_sub(kx)).div_ceil(self.stride);
                        let hi_excl = if self.in_w + self.pad_before > kx {
                            ((self.in_w + self.pad_before - kx - 1) / self.stride + 1).min(self.out_w)
                        } else {
                            0
                        };
                        if lo >= hi_excl {
                            continue;
                        }
                        let in_base = c * self.in_h * self.in_w + iy as usize * self.in_w;
                        // Input column of output column `lo`.
                        let first_ix = lo * self.stride + kx - self.pad_before;
                        f(
                            row,
                            oy * self.out_w + lo..oy * self.out_w + hi_excl,
                            in_base + first_ix,
                        );
                    }
                }
            }
        }
    }
}

fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let data = match storage {
        CpuStorage::F32(d) => d.as_slice(),
        _ => candle_core::bail!("{op}: only f32 is supported"),
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}

/// (B, C, H, W) → (B, C·k·k, out_h·out_w).
struct Im2Col(Geometry);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "aegan-im2col"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let x = contiguous_f32(storage, layout, self.name())?;
        let batch = layout.dims()[0];
        let (rows, cols) = (g.rows(), g.cols());
        let mut out = vec![0f32; batch * rows * cols];
        out.par_chunks_mut(rows * cols)
            .zip(x.par_chunks(g.image_len()))
            .for_each(|(o, xb)| {
                g.for_each_tap(|row, out_range, in_start| {
                    let dst = &mut o[row * cols + out_range.start..row * cols + out_range.end];
                    if g.stride == 1 {
                        dst.copy_from_slice(&xb[in_start..in_start + dst.len()]);
                    } else {
                        for (i, d) in dst.iter_mut().enumerate() {
                            *d = xb[in_start + i * g.stride];
                        }
                    }
                });
            });
        Ok((CpuStorage::F32(out), Shape::from((batch, rows, cols))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad_res.contiguous()?.apply_op1(Col2Im(self.0))?))
    }
}

/// (B, C·k·k, out_h·out_w) → (B, C, H, W), summing every column entry into its pixel.
struct Col2Im(Geometry);

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "aegan-col2im"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let cols_data = contiguous_f32(storage, layout, self.name())?;
        let batch = layout.dims()[0];
        let (rows, cols) = (g.rows(), g.cols());
        let mut out = vec![0f32; batch * g.image_len()];
        out.par_chunks_mut(g.image_len())
            .zip(cols_data.par_chunks(rows * cols))
            .for_each(|(xb, cb)| {
                g.for_each_tap(|row, out_range, in_start| {
                    let src = &cb[row * cols + out_range.start..row * cols + out_range.end];
                    if g.stride == 1 {
                        for (d, s) in xb[in_start..in_start + src.len()].iter_mut().zip(src) {
                            *d += s;
                        }
                    } else {
                        for (i, s) in src.iter().enumerate() {
                            xb[in_start + i * g.stride] += s;
                        }
                    }
                });
            });
        Ok((
            CpuStorage::F32(out),
            Shape::from((batch, g.channels, g.in_h, g.in_w)),
        ))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad_res.contiguous()?.apply_op1(Im2Col(self.0))?))
    }
}

/// 2-D convolution of `x` (B, C, H, W) with `weight` (C_out, C, k, k): `pad_before` zero
/// rows/columns above/left, `pad_after` below/right, equal `stride` on both axes.
///
/// On the CPU this is im2col + a matrix product, whose gradients are matrix products and a
/// col2im; elsewhere it is candle's convolution (after explicit padding when it is uneven).
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    pad_before: usize,
    pad_after: usize,
) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (c_out, c_in, k, k2) = weight.dims4()?;
    if c_in != c || k != k2 || stride == 0 || h + pad_before + pad_after < k || w + pad_before + pad_after < k
    {
        candle_core::bail!(
            "conv2d: input {:?} does not fit weight {:?} with stride {stride}",
            x.dims(),
            weight.dims()
        )
    }
    if !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
        return if pad_before == pad_after {
            x.conv2d(weight, pad_before, stride, 1, 1)
        } else {
            x.pad_with_zeros(2, pad_before, pad_after)?
                .pad_with_zeros(3, pad_before, pad_after)?
                .conv2d(weight, 0, stride, 1, 1)
        };
    }
    let g = Geometry {
        channels: c,
        in_h: h,
        in_w: w,
        kernel: k,
        stride,
        pad_before,
        out_h: (h + pad_before + pad_after - k) / stride + 1,
        out_w: (w + pad_before + pad_after - k) / stride + 1,
    };
    let cols = x.contiguous()?.apply_op1(Im2Col(g))?;
    let out = weight
        .reshape((c_out, g.rows()))?
        .broadcast_left(b)?
        .matmul(&cols)?;
    out.reshape((b, c_out, g.out_h, g.out_w))
}

/// Transposed 2-D convolution of `x` (B, C_in, H, W) with `weight` (C_in, C_out, k, k),
/// `stride` and `padding` as in PyTorch's `ConvTranspose2d` (no output padding): the output is
/// (B, C_out, (H − 1)·stride − 2·padding + k, same for W).
///
/// A transposed convolution is the adjoint of the convolution with the same weight, so on the
/// CPU it is a matrix product `weightᵀ · x` followed by a col2im; its gradients are an im2col
/// and matrix products. Elsewhere it is candle's transposed convolution.
pub fn conv_transpose2d(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
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
    if !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
        return x.conv_transpose2d(weight, padding, 0, stride, 1);
    }
    // The convolution this is the adjoint of: (C_out, out_h, out_w) → (C_in, h, w).
    let g = Geometry {
        channels: c_out,
        in_h: out_h,
        in_w: out_w,
        kernel: k,
        stride,
        pad_before: padding,
        out_h: h,
        out_w: w,
    };
    let cols = weight
        .reshape((c_in, g.rows()))?
        .t()?
        .broadcast_left(b)?
        .matmul(&x.reshape((b, c_in, h * w))?)?;
    cols.contiguous()?.apply_op1(Col2Im(g))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    use crate::ops::max_abs_diff as max_diff;

    /// The gradients of `Σ ours·probe` and `Σ reference·probe` with respect to the input and
    /// the weight agree within `tolerance`.
    fn assert_same_gradients(
        ours: &Tensor,
        reference: &Tensor,
        probe: &Tensor,
        [input, weight]: [&Var; 2],
        tolerance: f32,
        label: &str,
    ) {
        let g_ours = (ours * probe).unwrap().sum_all().unwrap().backward().unwrap();
        let g_ref = (reference * probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (name, v) in [("input", input), ("weight", weight)] {
            let t = v.as_tensor();
            let d = max_diff(g_ours.get(t).unwrap(), g_ref.get(t).unwrap());
            assert!(d < tolerance, "{name} gradient {label}: {d}");
        }
    }

    /// Forward and both gradients against candle's convolution, for strides 1 and 2 and even
    /// and odd kernels, symmetric and uneven padding. (Square inputs: candle's own conv2d
    /// backward assumes them.)
    #[test]
    fn matches_candle_convolution_forward_and_gradients() {
        let dev = Device::Cpu;
        for (k, stride, pb, pa, h) in [
            (3, 1, 1, 1, 8),
            (3, 2, 1, 1, 8),
            (4, 1, 1, 2, 7),
            (5, 1, 2, 2, 6),
            (1, 1, 0, 0, 5),
            (3, 2, 1, 1, 7),
            (3, 1, 0, 0, 6),
        ] {
            let x = Var::randn(0f32, 1.0, (3, 4, h, h), &dev).unwrap();
            let w = Var::randn(0f32, 1.0, (5, 4, k, k), &dev).unwrap();
            let probe =
                Tensor::randn(0f32, 1.0, conv2d(&x, &w, stride, pb, pa).unwrap().shape(), &dev).unwrap();

            let ours = conv2d(&x, &w, stride, pb, pa).unwrap();
            let reference = x
                .pad_with_zeros(2, pb, pa)
                .unwrap()
                .pad_with_zeros(3, pb, pa)
                .unwrap()
                .conv2d(&w, 0, stride, 1, 1)
                .unwrap();
            assert_eq!(ours.dims(), reference.dims());
            assert!(max_diff(&ours, &reference) < 1e-4, "forward k{k} s{stride}");

            let label = format!("k{k} s{stride} pads ({pb},{pa})");
            assert_same_gradients(&ours, &reference, &probe, [&x, &w], 1e-4, &label);
        }
    }

    #[test]
    fn transposed_convolution_matches_candle_forward_and_gradients() {
        let dev = Device::Cpu;
        for (k, stride, padding, h) in [(4, 2, 1, 4), (3, 1, 1, 5), (4, 2, 0, 3), (3, 2, 1, 4)] {
            let x = Var::randn(0f32, 1.0, (2, 5, h, h), &dev).unwrap();
            let w = Var::randn(0f32, 1.0, (5, 3, k, k), &dev).unwrap();
            let ours = conv_transpose2d(&x, &w, stride, padding).unwrap();
            let reference = x.conv_transpose2d(&w, padding, 0, stride, 1).unwrap();
            assert_eq!(ours.dims(), reference.dims(), "k{k} s{stride} p{padding}");
            assert!(
                max_diff(&ours, &reference) < 1e-4,
                "forward k{k} s{stride} p{padding}"
            );
            let probe = Tensor::randn(0f32, 1.0, ours.shape(), &dev).unwrap();
            let label = format!("k{k} s{stride} p{padding}");
            assert_same_gradients(&ours, &reference, &probe, [&x, &w], 1e-3, &label);
        }
    }

    #[test]
    fn non_square_inputs_match_candle_forward() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 6, 9), &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, (4, 3, 3, 3), &dev).unwrap();
        for stride in [1, 2] {
            let ours = conv2d(&x, &w, stride, 1, 1).unwrap();
            let reference = x.conv2d(&w, 1, stride, 1, 1).unwrap();
            assert!(max_diff(&ours, &reference) < 1e-4);
        }
    }
}
