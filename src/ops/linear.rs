//! A linear layer's product x·Wᵀ, and its two gradients, on rayon's threads.
//!
//! candle's CPU matrix product runs on candle's own pool, which aegan keeps at one thread (see
//! `crate::threads`), so E's 2,048 → 128 layer, G's stem and the layers' gradients ran on one
//! core while the others waited: on a 2-core AMD EPYC (Zen 4) an eighth of E's forward pass at
//! batch 64 (a profile's 6 % of samples, all on one of the two threads). Here the same
//! products go through gemm with rayon's threads.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::conv::gradient_of;
use super::gemm::{matmul_into, Mat, Parallelism};
use super::uninit::written_vec;
use super::{contiguous_f32, on_cpu_in_f32};

/// Products with fewer multiply-adds than this run on the calling thread: splitting them costs
/// more than it saves (Dz's layers, Dx's last layer of one output).
const PARALLEL_MIN_MACS: usize = 1 << 18;

/// `x · weightᵀ` for `x` (B × I) and `weight` (O × I), as a linear layer without its bias. On
/// the CPU in f32 through aegan's product on every thread, forward and backward; elsewhere, or
/// for inputs of another rank, candle's `matmul`.
pub(crate) fn linear_product(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    if !on_cpu_in_f32(&[x, weight]) || x.rank() != 2 || weight.rank() != 2 {
        return x.matmul(&weight.t()?);
    }
    x.contiguous()?.apply_op2(&weight.contiguous()?, Product::LINEAR)
}

/// `op(a) · op(b)` for row-major 2-D `a` and `b`, `op` the transpose where asked.
#[derive(Debug, Clone, Copy)]
struct Product {
    transpose_a: bool,
    transpose_b: bool,
}

impl Product {
    /// The layer's product: x · Wᵀ.
    const LINEAR: Product = Product {
        transpose_a: false,
        transpose_b: true,
    };
    /// The gradient of x: ∂y · W.
    const INPUT_GRADIENT: Product = Product {
        transpose_a: false,
        transpose_b: false,
    };
    /// The gradient of W: ∂yᵀ · x.
    const WEIGHT_GRADIENT: Product = Product {
        transpose_a: true,
        transpose_b: false,
    };

    fn read<'a>(data: &'a [f32], dims: &[usize], transpose: bool) -> Mat<'a> {
        let m = Mat::new(data, dims[0], dims[1]);
        if transpose {
            m.t()
        } else {
            m
        }
    }
}

impl CustomOp2 for Product {
    fn name(&self) -> &'static str {
        "aegan-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (da, db) = (l1.dims(), l2.dims());
        if da.len() != 2 || db.len() != 2 {
            candle_core::bail!(
                "{}: expected two matrices, got shapes {da:?} and {db:?}",
                self.name()
            );
        }
        let a = Self::read(contiguous_f32(s1, l1, self.name())?, da, self.transpose_a);
        let b_data = contiguous_f32(s2, l2, self.name())?;
        // gemm multiplies fastest when the right operand is stored row by row as read; a
        // transposed view of it (the layer's Wᵀ) it would repack one strided value at a
        // time, per thread (6 % of E's forward pass, more than the blocked transpose here).
        let b_transposed;
        let b = if self.transpose_b {
            b_transposed = transpose(b_data, db[0], db[1]);
            Mat::new(&b_transposed, db[1], db[0])
        } else {
            Mat::new(b_data, db[0], db[1])
        };
        let (m, k) = (a.rows(), a.cols());
        let (k2, n) = (b.rows(), b.cols());
        if k != k2 {
            candle_core::bail!("{}: inner dimensions {k} and {k2} differ", self.name());
        }
        let parallelism = if m * n * k >= PARALLEL_MIN_MACS {
            Parallelism::Rayon(rayon::current_num_threads())
        } else {
            Parallelism::None
        };
        let write = |dst: &mut [MaybeUninit<f32>]| {
            matmul_into(dst, a, b, parallelism);
        };
        // SAFETY: `matmul_into` writes every element of the m × n destination.
        let values = unsafe { written_vec(m * n, write) };
        Ok((CpuStorage::F32(values), Shape::from((m, n))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        grad_y: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // Only the layer's own product is differentiated; its gradients are never.
        let grad_y = grad_y.contiguous()?;
        let grad_x = gradient_of(x, || grad_y.apply_op2_no_bwd(w, &Product::INPUT_GRADIENT))?;
        let grad_w = gradient_of(w, || grad_y.apply_op2_no_bwd(x, &Product::WEIGHT_GRADIENT))?;
        Ok((grad_x, grad_w))
    }
}

/// Rows of the transpose written per task, and the side of the square tiles they are copied in.
const TRANSPOSE_ROWS: usize = 64;
const TILE: usize = 16;

/// The transpose (cols × rows, row-major) of `src` (rows × cols, row-major), tile by tile so
/// that both sides are read and written a cache line at a time, on rayon's threads.
fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    use rayon::prelude::*;
    assert_eq!(src.len(), rows * cols, "transpose: {rows}×{cols}");
    let write = |dst: &mut [MaybeUninit<f32>]| {
        dst.par_chunks_mut(TRANSPOSE_ROWS * rows.max(1))
            .enumerate()
            .for_each(|(block, out)| {
                let c0 = block * TRANSPOSE_ROWS;
                let block_cols = out.len() / rows.max(1);
                for r0 in (0..rows).step_by(TILE) {
                    for c_tile in (0..block_cols).step_by(TILE) {
                        for r in r0..(r0 + TILE).min(rows) {
                            let line =
                                &src[r * cols + c0 + c_tile..r * cols + c0 + (c_tile + TILE).min(block_cols)];
                            for (j, &v) in line.iter().enumerate() {
                                out[(c_tile + j) * rows + r].write(v);
                            }
                        }
                    }
                }
            });
    };
    // SAFETY: the tasks' chunks cover the destination; each writes its TRANSPOSE_ROWS rows of
    // the transpose (all `rows` values of each), every (row, column) pair once.
    unsafe { written_vec(rows * cols, write) }
}

#[cfg(test)]
mod tests {
    use super::*;

    use candle_core::{Device, Var};

    use crate::ops::{assert_same_gradients, max_abs_diff};
    use crate::rng::TrainRng;

    /// The product and both gradients agree with candle's `x.matmul(wᵀ)`, for one sample, a
    /// batch below the threading threshold and one above it.
    #[test]
    fn linear_product_matches_candle_forward_and_backward() {
        let dev = Device::Cpu;
        let mut rng = TrainRng::new(21);
        for (batch, inputs, outputs) in [(1, 7, 5), (3, 16, 4), (64, 300, 40)] {
            let x = Var::from_tensor(&rng.test_input((batch, inputs), &dev).unwrap()).unwrap();
            let w = Var::from_tensor(&rng.test_input((outputs, inputs), &dev).unwrap()).unwrap();
            let ours = linear_product(&x, &w).unwrap();
            let reference = x.matmul(&w.t().unwrap()).unwrap();
            assert_eq!(ours.dims(), &[batch, outputs]);
            let label = format!("{batch}×{inputs} → {outputs}");
            assert!(max_abs_diff(&ours, &reference) < 1e-4, "{label}");
            let probe = rng.test_input((batch, outputs), &dev).unwrap();
            assert_same_gradients(&ours, &reference, &probe, &[&x, &w], 1e-3, &label);
        }
    }

    /// The tiled transpose on shapes that are and are not whole tiles and blocks.
    #[test]
    fn transpose_moves_every_value() {
        for (rows, cols) in [(1, 1), (3, 5), (16, 16), (17, 70), (130, 33)] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let t = transpose(&src, rows, cols);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(t[c * rows + r], src[r * cols + c], "{rows}×{cols} at ({r}, {c})");
                }
            }
        }
    }

    /// A gradient is computed only for what needs one: a constant input gets none.
    #[test]
    fn a_constant_input_gets_no_gradient() {
        let dev = Device::Cpu;
        let mut rng = TrainRng::new(22);
        let x = rng.test_input((4, 6), &dev).unwrap();
        let w = Var::from_tensor(&rng.test_input((3, 6), &dev).unwrap()).unwrap();
        let grads = linear_product(&x, &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(grads.get(&x).is_none());
        let want = x
            .sum(0)
            .unwrap()
            .unsqueeze(0)
            .unwrap()
            .broadcast_as((3, 6))
            .unwrap();
        assert!(max_abs_diff(grads.get(w.as_tensor()).unwrap(), &want) < 1e-5);
    }
}
