//! Nearest ×2 upsampling followed by a k×k 'same' convolution, computed as four convolutions
//! of the small image, one per output phase (sub-pixel convolution).
//!
//! Output pixel (2i + a, 2j + b) of the convolution on the upsampled image reads upsampled
//! rows 2i + a + t − p for taps t < k (p = ⌊(k − 1)/2⌋ zero rows above, as PyTorch's 'same'),
//! which are small-image rows i + ⌊(a + t − p)/2⌋: only about k/2 distinct rows per phase a,
//! and likewise for columns. So each phase (a, b) is a small convolution of the small image
//! whose weights are sums of the original taps. For k = 3 every phase is 2×2: 4·4 = 16
//! multiply-adds per small pixel and channel pair instead of 4·9 = 36. For k = 4 the phases
//! read 3 and 2 rows and columns: kernels of 3×3, 3×2, 2×3 and 2×2, 25 multiply-adds instead
//! of 4·16 = 64. The column matrices shrink likewise. The result is the same function (up to
//! the order of floating-point sums).

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::gemm::{matmul, matmul_into, Mat, Parallelism};
use super::grouped::{images_per_product, split_columns};
use super::im2col::{flip_weight, Geometry};
use super::parallel::{each_group, sum_over_groups};
use super::scratch::with_scratch;
use super::uninit::written_vec;

/// An upsample-×2 + k×k convolution (stride 1, ⌊(k − 1)/2⌋ zeros above and left, the rest
/// below and right, so the size is kept) of
/// `c_in`-channel `h`×`w` images to `c_out` channels at 2h×2w.
#[derive(Debug, Clone, Copy)]
pub(super) struct SubPixel {
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
    k: usize,
}

impl SubPixel {
    /// The decomposition of the convolution with kernel `k` and `pad` zeros above and left
    /// of the upsampled image, if it applies ('same' padding with `pad` = ⌊(k − 1)/2⌋).
    pub fn new(c_in: usize, c_out: usize, (h, w): (usize, usize), k: usize, pad: usize) -> Option<Self> {
        (k > 0 && pad == (k - 1) / 2 && h > 0 && w > 0).then_some(SubPixel { c_in, c_out, h, w, k })
    }

    const PHASES: [(usize, usize); 4] = [(0, 0), (0, 1), (1, 0), (1, 1)];

    /// Small-image offset of tap `t` in phase `a`, relative to the phase's first tap.
    fn tap(&self, a: usize, t: usize) -> usize {
        let p = (self.k - 1) / 2;
        let offset = |t: usize| (a as isize + t as isize - p as isize).div_euclid(2);
        (offset(t) - offset(0)) as usize
    }

    /// How many small-image rows (or columns) phase `a` reads: its kernel side.
    fn side(&self, a: usize) -> usize {
        self.tap(a, self.k - 1) + 1
    }

    /// The convolution of the small image that computes phase (a, b).
    fn geometry(&self, (a, b): (usize, usize)) -> Geometry {
        let p = (self.k - 1) / 2;
        let pad = |phase: usize| (-(phase as isize - p as isize).div_euclid(2)) as usize;
        Geometry {
            channels: self.c_in,
            in_h: self.h,
            in_w: self.w,
            kernel_h: self.side(a),
            kernel_w: self.side(b),
            stride: 1,
            pad_top: pad(a),
            pad_left: pad(b),
            out_h: self.h,
            out_w: self.w,
        }
    }

    /// Taps of phase (a, b)'s kernel.
    fn taps(&self, (a, b): (usize, usize)) -> usize {
        self.side(a) * self.side(b)
    }

    /// The most column-matrix rows per input channel of any phase.
    fn max_taps(&self) -> usize {
        Self::PHASES
            .iter()
            .map(|&phase| self.taps(phase))
            .max()
            .unwrap_or(1)
    }

    fn plane(&self) -> usize {
        self.h * self.w
    }

    /// For each phase, the index in its kernel (u·side_b + v) of every original tap (ky·k + kx).
    fn tap_tables(&self) -> Vec<Vec<usize>> {
        let k = self.k;
        Self::PHASES
            .iter()
            .map(|&(a, b)| {
                (0..k * k)
                    .map(|t| self.tap(a, t / k) * self.side(b) + self.tap(b, t % k))
                    .collect()
            })
            .collect()
    }

    /// Each phase's weights (C_out × C·taps), summed from `weight` (C_out × C·k·k).
    fn phase_weights(&self, weight: &[f32]) -> Vec<Vec<f32>> {
        Self::PHASES
            .iter()
            .zip(self.tap_tables())
            .map(|(&phase, table)| {
                let taps = self.taps(phase);
                let mut summed = vec![0f32; self.c_out * self.c_in * taps];
                for (src, dst) in weight
                    .chunks_exact(self.k * self.k)
                    .zip(summed.chunks_exact_mut(taps))
                {
                    for (&v, &u) in src.iter().zip(&table) {
                        dst[u] += v;
                    }
                }
                summed
            })
            .collect()
    }

    /// The four output phases of `image` (C_out × 2h × 2w) copied out in one pass over it:
    /// phase (a, b)'s channel `o` into `phases[(2a + b)·stride + o·ld..][..h·w]` (`ld` = h·w
    /// for images one after another, a multiple of it for images side by side).
    fn split_output_phases(&self, image: &[f32], phases: &mut [f32], stride: usize, ld: usize) {
        let (n, w) = (self.plane(), self.w);
        let (p00, rest) = phases.split_at_mut(stride);
        let (p01, rest) = rest.split_at_mut(stride);
        let (p10, p11) = rest.split_at_mut(stride);
        for (o, plane) in image.chunks_exact(4 * n).enumerate() {
            let at = o * ld..o * ld + n;
            let top = p00[at.clone()]
                .chunks_exact_mut(w)
                .zip(p01[at.clone()].chunks_exact_mut(w));
            let bottom = p10[at.clone()]
                .chunks_exact_mut(w)
                .zip(p11[at].chunks_exact_mut(w));
            for (pair, ((r00, r01), (r10, r11))) in plane.chunks_exact(4 * w).zip(top.zip(bottom)) {
                let (upper, lower) = pair.split_at(2 * w);
                for ((px, e), o) in upper.chunks_exact(2).zip(r00).zip(r01) {
                    *e = px[0];
                    *o = px[1];
                }
                for ((px, e), o) in lower.chunks_exact(2).zip(r10).zip(r11) {
                    *e = px[0];
                    *o = px[1];
                }
            }
        }
    }

    /// The inverse of [`SubPixel::split_output_phases`]: phase p's channel `o` at
    /// `phases[p][o·ld..][..h·w]` written into `image` (C_out × 2h × 2w) in one pass, every
    /// pixel in order.
    fn join_output_phases(&self, phases: [&[f32]; 4], ld: usize, image: &mut [MaybeUninit<f32>]) {
        let (n, w) = (self.plane(), self.w);
        for (o, plane) in image.chunks_exact_mut(4 * n).enumerate() {
            let rows = |p: usize| phases[p][o * ld..o * ld + n].chunks_exact(w);
            let rows = rows(0).zip(rows(1)).zip(rows(2).zip(rows(3)));
            for (pair, ((r00, r01), (r10, r11))) in plane.chunks_exact_mut(4 * w).zip(rows) {
                let (upper, lower) = pair.split_at_mut(2 * w);
                for ((px, &e), &o) in upper.chunks_exact_mut(2).zip(r00).zip(r01) {
                    px[0].write(e);
                    px[1].write(o);
                }
                for ((px, &e), &o) in lower.chunks_exact_mut(2).zip(r10).zip(r11) {
                    px[0].write(e);
                    px[1].write(o);
                }
            }
        }
    }

    /// One phase of the images `xs` (one after another, C × h × w each): `out`
    /// (C_out × images·h·w, the images side by side) = W_phase · columns(xs), with `cols` a
    /// scratch buffer at least as large as the phase's column matrix.
    fn phase_forward(
        &self,
        phase: (usize, usize),
        phase_weight: &[f32],
        xs: &[f32],
        cols: &mut [f32],
        out: &mut [f32],
        par: Parallelism,
    ) {
        let wide = xs.len() / self.c_in;
        let rows = self.c_in * self.taps(phase);
        let cols = &mut cols[..rows * wide];
        self.geometry(phase).im2col_images(xs, cols);
        let w = Mat::new(phase_weight, self.c_out, rows);
        matmul(
            &mut out[..self.c_out * wide],
            w,
            Mat::new(cols, rows, wide),
            false,
            par,
        );
    }

    /// Images per matrix product: small planes several at a time (`super::grouped`).
    fn group(&self, batch: usize) -> usize {
        images_per_product(self.plane()).min(batch.max(1))
    }

    /// The convolution of every image of `x` (B × C × h × w) with `weight`.
    pub fn forward(&self, x: &[f32], weight: &[f32], batch: usize) -> Vec<f32> {
        let phase_w = self.phase_weights(weight);
        let (n, in_len) = (self.plane(), self.c_in * self.plane());
        let out_len = self.c_out * 4 * n;
        let write = |y: &mut [MaybeUninit<f32>]| {
            if batch < rayon::current_num_threads() {
                // Too few images to share out: the four phases of each image in parallel instead.
                let cols_len = self.c_in * self.max_taps() * n;
                for (img, yb) in y.chunks_exact_mut(out_len).enumerate() {
                    let xb = &x[img * in_len..(img + 1) * in_len];
                    let phases: Vec<Vec<f32>> = Self::PHASES
                        .par_iter()
                        .zip(&phase_w)
                        .map(|(&phase, wp)| {
                            let mut out = vec![0f32; self.c_out * n];
                            with_scratch(cols_len, |cols| {
                                self.phase_forward(phase, wp, xb, cols, &mut out, Parallelism::None)
                            });
                            out
                        })
                        .collect();
                    self.join_output_phases(std::array::from_fn(|p| &phases[p][..]), n, yb);
                }
                return;
            }
            let group = self.group(batch);
            let cols_len = self.c_in * self.max_taps() * group * n;
            let phase_len = self.c_out * group * n;
            each_group(
                y,
                batch,
                group,
                cols_len + 4 * phase_len,
                |images, ys, scratch, par| {
                    let (cols, outs) = scratch.split_at_mut(cols_len);
                    let xs = &x[images.start * in_len..images.end * in_len];
                    let ld = images.len() * n;
                    let phases = Self::PHASES.iter().zip(&phase_w);
                    for ((&phase, wp), out) in phases.zip(outs.chunks_exact_mut(phase_len)) {
                        self.phase_forward(phase, wp, xs, cols, out, par);
                    }
                    for (i, yb) in ys.chunks_exact_mut(out_len).enumerate() {
                        let phases =
                            std::array::from_fn(|p| &outs[p * phase_len + i * n..(p + 1) * phase_len]);
                        self.join_output_phases(phases, ld, yb);
                    }
                },
            );
        };
        // SAFETY: every image of `y` (C_out planes of 2h × 2w) receives its four phases, which
        // between them write every pixel of every plane.
        unsafe { written_vec(batch * out_len, write) }
    }

    /// The input gradient for output gradients `grad_y` (B × C_out × 2h × 2w): per phase,
    /// the flipped convolution of that phase of ∇y (see `Geometry::flipped`), summed.
    pub fn input_gradient(&self, grad_y: &[f32], weight: &[f32], batch: usize) -> Vec<f32> {
        let flipped: Vec<(Geometry, Vec<f32>)> = Self::PHASES
            .iter()
            .zip(self.phase_weights(weight))
            .map(|(&phase, wp)| {
                let g = self
                    .geometry(phase)
                    .flipped(self.c_out)
                    .expect("stride 1, same size");
                (g, flip_weight(&wp, self.c_out, self.taps(phase)))
            })
            .collect();
        let (n, out_len) = (self.plane(), self.c_out * 4 * self.plane());
        let group = self.group(batch);
        let cols_len = self.c_out * self.max_taps() * group * n;
        let (phase_len, sum_len) = (self.c_out * group * n, self.c_in * group * n);
        let scratch_len = cols_len + 4 * phase_len + sum_len;
        let write = |gx: &mut [MaybeUninit<f32>]| {
            each_group(gx, batch, group, scratch_len, |images, gxs, scratch, par| {
                let (cols, rest) = scratch.split_at_mut(cols_len);
                let (gy_phases, sum) = rest.split_at_mut(4 * phase_len);
                let wide = images.len() * n;
                let gys = &grad_y[images.start * out_len..images.end * out_len];
                // Each image's output gradient split into its phases, the images one after
                // another within each phase (as the flipped convolutions' im2col reads them).
                for (i, gyb) in gys.chunks_exact(out_len).enumerate() {
                    self.split_output_phases(gyb, &mut gy_phases[i * self.c_out * n..], phase_len, n);
                }
                // Alone, an image's gradient is written by the first phase's product and added
                // to by the others; several side by side are summed first and then split.
                let (mut unwritten, side_by_side) = match images.len() {
                    1 => (Some(gxs), None),
                    _ => (None, Some(gxs)),
                };
                let mut written: &mut [f32] = &mut sum[..self.c_in * wide];
                for (i, (g, wf)) in flipped.iter().enumerate() {
                    let rows = g.rows();
                    let gy_phase = &gy_phases[i * phase_len..i * phase_len + self.c_out * wide];
                    g.im2col_images(gy_phase, &mut cols[..rows * wide]);
                    let wf = Mat::new(wf, self.c_in, rows);
                    let columns = Mat::new(&cols[..rows * wide], rows, wide);
                    match unwritten.take() {
                        Some(gxb) => written = matmul_into(gxb, wf, columns, par),
                        None => matmul(written, wf, columns, i > 0, par),
                    }
                }
                if let Some(gxs) = side_by_side {
                    split_columns(written, self.c_in, n, gxs);
                }
            })
        };
        // SAFETY: a lone image's share of `gx` is written whole by the first phase's
        // `matmul_into`, several images' shares by `split_columns`.
        unsafe { written_vec(batch * self.c_in * n, write) }
    }

    /// The weight gradient (C_out × C·k·k) for inputs `x` and output gradients `grad_y`.
    pub fn weight_gradient(&self, x: &[f32], grad_y: &[f32], batch: usize) -> Vec<f32> {
        let n = self.plane();
        let (in_len, out_len) = (self.c_in * n, self.c_out * 4 * n);
        // Per phase, the transposed gradient Σ_b columns · ∇y_phaseᵀ (C·taps × C_out), one
        // block after another.
        let blocks: Vec<usize> = Self::PHASES
            .iter()
            .map(|&phase| self.c_in * self.taps(phase) * self.c_out)
            .collect();
        let starts: Vec<usize> = blocks
            .iter()
            .scan(0, |at, len| {
                let start = *at;
                *at += len;
                Some(start)
            })
            .collect();
        let total: usize = blocks.iter().sum();
        let group = self.group(batch);
        let cols_len = self.c_in * self.max_taps() * group * n;
        let phase_len = self.c_out * group * n;
        let sums = sum_over_groups(
            batch,
            group,
            total,
            cols_len + 4 * phase_len,
            |images, acc, scratch, first, par| {
                let (cols, gy_phases) = scratch.split_at_mut(cols_len);
                let wide = images.len() * n;
                let xs = &x[images.start * in_len..images.end * in_len];
                let gys = &grad_y[images.start * out_len..images.end * out_len];
                // The output gradients' phases, the images side by side within each phase.
                for (img, gyb) in gys.chunks_exact(out_len).enumerate() {
                    self.split_output_phases(gyb, &mut gy_phases[img * n..], phase_len, wide);
                }
                for (i, &phase) in Self::PHASES.iter().enumerate() {
                    let rows = self.c_in * self.taps(phase);
                    let cols = &mut cols[..rows * wide];
                    self.geometry(phase).im2col_images(xs, cols);
                    let gy_phase = &gy_phases[i * phase_len..i * phase_len + self.c_out * wide];
                    let gy = Mat::new(gy_phase, self.c_out, wide).t();
                    let block = &mut acc[starts[i]..starts[i] + blocks[i]];
                    matmul(block, Mat::new(cols, rows, wide), gy, !first, par);
                }
            },
        );
        // Every original tap gets the gradient of the phase weight it was summed into.
        let k2 = self.k * self.k;
        let mut grad_w = vec![0f32; self.c_out * self.c_in * k2];
        for (i, (&phase, table)) in Self::PHASES.iter().zip(self.tap_tables()).enumerate() {
            let taps = self.taps(phase);
            let block = &sums[starts[i]..starts[i] + blocks[i]];
            for (oc, grads) in grad_w.chunks_exact_mut(k2).enumerate() {
                let (o, c) = (oc / self.c_in, oc % self.c_in);
                for (g, &u) in grads.iter_mut().zip(&table) {
                    *g += block[(c * taps + u) * self.c_out + o];
                }
            }
        }
        grad_w
    }
}
