//! Nearest ×2 upsampling followed by a k×k 'same' convolution, computed as four convolutions
//! of the small image, one per output phase (sub-pixel convolution).
//!
//! Output pixel (2i + a, 2j + b) of the convolution on the upsampled image reads upsampled
//! rows 2i + a + t − p for taps t < k (p = ⌊(k − 1)/2⌋ zero rows above, as PyTorch's 'same'),
//! which are small-image rows i + ⌊(a + t − p)/2⌋: only about k/2 distinct rows per phase a,
//! and likewise for columns. So each phase (a, b) is a small convolution of the small image
//! whose weights are sums of the original taps. For k = 3 every phase is 2×2: 4·4 = 16
//! multiply-adds per small pixel and channel pair instead of 4·9 = 36. For k = 4 the phases
//! need 3 and 2 rows; all run as 3×3 with zero weights where a phase has fewer taps: 4·9 = 36
//! instead of 4·16 = 64. The column matrices shrink likewise. The result is the same function
//! (up to the order of floating-point sums).

use super::conv::{each_image, sum_over_images};
use rayon::prelude::*;

use super::gemm::{matmul, Mat, Parallelism};
use super::im2col::{flip_weight, Geometry};
use super::scratch::with_scratch;

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

    /// Kernel side of each phase's convolution: the most small-image rows any phase reads.
    fn k_phase(&self) -> usize {
        (0..2).map(|a| self.tap(a, self.k - 1) + 1).max().unwrap_or(1)
    }

    /// Small-image offset of tap `t` in phase `a`, relative to the phase's first tap.
    fn tap(&self, a: usize, t: usize) -> usize {
        let p = (self.k - 1) / 2;
        let offset = |t: usize| (a as isize + t as isize - p as isize).div_euclid(2);
        (offset(t) - offset(0)) as usize
    }

    /// For each phase (a, b), the phase-weight index (u·k' + v) of every original tap
    /// (ky·k + kx).
    fn tap_tables(&self) -> Vec<Vec<usize>> {
        let (k, kp) = (self.k, self.k_phase());
        Self::PHASES
            .iter()
            .map(|&(a, b)| {
                (0..k * k)
                    .map(|t| self.tap(a, t / k) * kp + self.tap(b, t % k))
                    .collect()
            })
            .collect()
    }

    /// The convolution of the small image that computes phase (a, b).
    fn geometry(&self, a: usize, b: usize) -> Geometry {
        let p = (self.k - 1) / 2;
        let pad = |phase: usize| (-(phase as isize - p as isize).div_euclid(2)) as usize;
        Geometry {
            channels: self.c_in,
            in_h: self.h,
            in_w: self.w,
            kernel: self.k_phase(),
            stride: 1,
            pad_top: pad(a),
            pad_left: pad(b),
            out_h: self.h,
            out_w: self.w,
        }
    }

    const PHASES: [(usize, usize); 4] = [(0, 0), (0, 1), (1, 0), (1, 1)];

    fn rows(&self) -> usize {
        self.c_in * self.k_phase() * self.k_phase()
    }

    fn plane(&self) -> usize {
        self.h * self.w
    }

    /// Each phase's weights (C_out × C·k'²), summed from `weight` (C_out × C·k·k).
    fn phase_weights(&self, weight: &[f32]) -> Vec<Vec<f32>> {
        let kp2 = self.k_phase() * self.k_phase();
        self.tap_tables()
            .iter()
            .map(|table| {
                let mut phase = vec![0f32; self.c_out * self.rows()];
                for (taps, dst) in weight
                    .chunks_exact(self.k * self.k)
                    .zip(phase.chunks_exact_mut(kp2))
                {
                    for (&v, &u) in taps.iter().zip(table) {
                        dst[u] += v;
                    }
                }
                phase
            })
            .collect()
    }

    /// Scratch per thread: a phase's column matrix and one output phase.
    fn scratch_len(&self) -> usize {
        self.rows() * self.plane() + self.c_out * self.plane()
    }

    /// Output phase (a, b) of `image` (C_out × 2h × 2w) copied into `phase` (C_out × h × w).
    fn gather_phase(&self, image: &[f32], (a, b): (usize, usize), phase: &mut [f32]) {
        let w2 = 2 * self.w;
        for (dst, src) in phase
            .chunks_exact_mut(self.w)
            .zip(image.chunks_exact(w2).skip(a).step_by(2))
        {
            for (d, s) in dst.iter_mut().zip(src[b..].iter().step_by(2)) {
                *d = *s;
            }
        }
    }

    /// `phase` (C_out × h × w) written into output phase (a, b) of `image` (C_out × 2h × 2w).
    fn scatter_phase(&self, phase: &[f32], (a, b): (usize, usize), image: &mut [f32]) {
        let w2 = 2 * self.w;
        for (src, dst) in phase
            .chunks_exact(self.w)
            .zip(image.chunks_exact_mut(w2).skip(a).step_by(2))
        {
            for (d, s) in dst[b..].iter_mut().step_by(2).zip(src) {
                *d = *s;
            }
        }
    }

    /// The convolution of every image of `x` (B × C × h × w) with `weight`.
    pub fn forward(&self, x: &[f32], weight: &[f32], batch: usize) -> Vec<f32> {
        let phase_w = self.phase_weights(weight);
        let (n, in_len) = (self.plane(), self.c_in * self.plane());
        let mut y = vec![0f32; batch * self.c_out * 4 * n];
        if batch < rayon::current_num_threads() {
            // Too few images to share out: the four phases of each image in parallel instead.
            for (img, yb) in y.chunks_exact_mut(self.c_out * 4 * n).enumerate() {
                let xb = &x[img * in_len..(img + 1) * in_len];
                let phases: Vec<Vec<f32>> = Self::PHASES
                    .par_iter()
                    .zip(&phase_w)
                    .map(|(&(a, b), wp)| {
                        let mut out = vec![0f32; self.c_out * n];
                        with_scratch(self.rows() * n, |cols| {
                            self.geometry(a, b).im2col(xb, cols);
                            let wp = Mat::new(wp, self.c_out, self.rows());
                            matmul(
                                &mut out,
                                wp,
                                Mat::new(cols, self.rows(), n),
                                false,
                                Parallelism::None,
                            );
                        });
                        out
                    })
                    .collect();
                for (&phase, out) in Self::PHASES.iter().zip(&phases) {
                    self.scatter_phase(out, phase, yb);
                }
            }
            return y;
        }
        each_image(&mut y, batch, self.scratch_len(), |img, yb, scratch, par| {
            let (cols, out) = scratch.split_at_mut(self.rows() * n);
            let xb = &x[img * in_len..(img + 1) * in_len];
            for (&(a, b), wp) in Self::PHASES.iter().zip(&phase_w) {
                self.geometry(a, b).im2col(xb, cols);
                matmul(
                    out,
                    Mat::new(wp, self.c_out, self.rows()),
                    Mat::new(cols, self.rows(), n),
                    false,
                    par,
                );
                self.scatter_phase(out, (a, b), yb);
            }
        });
        y
    }

    /// The input gradient for output gradients `grad_y` (B × C_out × 2h × 2w).
    pub fn input_gradient(&self, grad_y: &[f32], weight: &[f32], batch: usize) -> Vec<f32> {
        let kp = self.k_phase();
        // Per phase, the flipped convolution of that phase of ∇y (see Geometry::flipped).
        let flipped: Vec<(Geometry, Vec<f32>)> = Self::PHASES
            .iter()
            .zip(self.phase_weights(weight))
            .map(|(&(a, b), wp)| {
                let g = self
                    .geometry(a, b)
                    .flipped(self.c_out)
                    .expect("stride 1, same size");
                (g, flip_weight(&wp, self.c_out, kp))
            })
            .collect();
        let (n, out_len) = (self.plane(), self.c_out * 4 * self.plane());
        let flipped_rows = self.c_out * kp * kp;
        let mut gx = vec![0f32; batch * self.c_in * n];
        each_image(
            &mut gx,
            batch,
            (flipped_rows + self.c_out) * n,
            |img, gxb, scratch, par| {
                let (cols, gy_phase) = scratch.split_at_mut(flipped_rows * n);
                let gyb = &grad_y[img * out_len..(img + 1) * out_len];
                for (i, (&phase, (g, wf))) in Self::PHASES.iter().zip(&flipped).enumerate() {
                    self.gather_phase(gyb, phase, gy_phase);
                    g.im2col(gy_phase, cols);
                    let wf = Mat::new(wf, self.c_in, flipped_rows);
                    matmul(gxb, wf, Mat::new(cols, flipped_rows, n), i > 0, par);
                }
            },
        );
        gx
    }

    /// The weight gradient (C_out × C·k·k) for inputs `x` and output gradients `grad_y`.
    pub fn weight_gradient(&self, x: &[f32], grad_y: &[f32], batch: usize) -> Vec<f32> {
        let (n, rows) = (self.plane(), self.rows());
        let (in_len, out_len) = (self.c_in * n, self.c_out * 4 * n);
        let block = rows * self.c_out;
        // Per phase, the transposed gradient Σ_b columns · ∇y_phaseᵀ (rows × C_out).
        let sums = sum_over_images(
            batch,
            4 * block,
            self.scratch_len(),
            |img, acc, scratch, first, par| {
                let (cols, gy_phase) = scratch.split_at_mut(rows * n);
                let (xb, gyb) = (
                    &x[img * in_len..(img + 1) * in_len],
                    &grad_y[img * out_len..(img + 1) * out_len],
                );
                for (i, &(a, b)) in Self::PHASES.iter().enumerate() {
                    self.geometry(a, b).im2col(xb, cols);
                    self.gather_phase(gyb, (a, b), gy_phase);
                    let gy = Mat::new(gy_phase, self.c_out, n).t();
                    matmul(
                        &mut acc[i * block..(i + 1) * block],
                        Mat::new(cols, rows, n),
                        gy,
                        !first,
                        par,
                    );
                }
            },
        );
        // Every original tap gets the gradient of the phase weight it was summed into.
        let (k2, kp2) = (self.k * self.k, self.k_phase() * self.k_phase());
        let mut grad_w = vec![0f32; self.c_out * self.c_in * k2];
        for (phase, table) in sums.chunks_exact(block).zip(self.tap_tables()) {
            for (oc, taps) in grad_w.chunks_exact_mut(k2).enumerate() {
                let (o, c) = (oc / self.c_in, oc % self.c_in);
                for (g, &u) in taps.iter_mut().zip(&table) {
                    *g += phase[(c * kp2 + u) * self.c_out + o];
                }
            }
        }
        grad_w
    }
}
