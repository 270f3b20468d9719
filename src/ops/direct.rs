//! A direct convolution for layers with few output channels, one image at a time.
//!
//! im2col copies every input pixel once per kernel tap (nine times at 3×3) to feed a matrix
//! product whose short side is the output channels. With 3 to 16 of them (E's and Dx's first
//! convolutions, G's RGB output, and the input gradients of those layers) the product leaves
//! gemm's kernels mostly idle and the copy costs as much as the arithmetic. Here each input
//! plane is copied once, padded (and for stride 2 split into its four even/odd phases, so that
//! every tap reads consecutive values), and a tile of [`CHANNEL_BLOCK`] output channels ×
//! [`TILE`] output pixels of one row accumulates in registers over every (channel, tap).
//! The weight gradient reads the same planes: on a CPU with AVX2 and FMA, each block of
//! [`CHANNEL_BLOCK`] channels × [`TAP_BLOCK`] taps sums its products with the output gradient
//! over the image in eight named vector registers; elsewhere it stays im2col and a matrix
//! product (without vectors the sums would be slower than gemm).
//!
//! The kernel is compiled twice: with AVX2 and FMA, chosen at run time where the CPU has them,
//! and for the baseline target. The two round differently, as gemm's kernels for different
//! CPUs do; which one runs depends on the CPU only, never on the thread count. Where the CPU
//! has AVX-512, the forward pass runs tiles of [`WIDE_TILE`] pixels on rows that long (the
//! same sums, so the same bits) and the weight gradient 16-wide vectors (the same sums split
//! into other partial sums, so other rounding).

use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

use super::gemm::Parallelism;
#[cfg(target_arch = "x86_64")]
use super::has_avx512f;
use super::im2col::Geometry;
use super::parallel::each_image;
use super::uninit::written_vec;

/// Most output channels a convolution may have to run here; wider layers keep gemm busy.
pub(crate) const MAX_OUT_CHANNELS: usize = 16;

/// Output channels accumulated together: each tap's input values are loaded once for all of
/// them.
const CHANNEL_BLOCK: usize = 4;

/// Output pixels of one row accumulated together (two 8-wide vectors with AVX2). With
/// [`CHANNEL_BLOCK`] channels that is eight vector accumulators, enough to keep both FMA units
/// of a core busy while leaving registers for the loads.
const TILE: usize = 16;

/// Output pixels of one row accumulated together where the CPU has AVX-512 and the rows are
/// long enough: two 16-wide vectors per channel, eight accumulators again.
const WIDE_TILE: usize = 32;

/// One tile's accumulators: `CHANNEL_BLOCK` channels × `T` pixels.
type Accumulators<const T: usize> = [[f32; T]; CHANNEL_BLOCK];

/// A convolution (stride 1 or 2, any padding) computed directly; see the module.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Direct {
    g: Geometry,
    c_out: usize,
    /// Height and width of each (phase) plane of the padded input.
    plane_h: usize,
    plane_w: usize,
}

impl Direct {
    /// The direct form of the convolution `g` with `c_out` output channels, where it applies:
    /// at most [`MAX_OUT_CHANNELS`] outputs, stride 1 or 2, a kernel larger than 1×1 (gemm
    /// reads a 1×1 convolution's input as it is), a non-empty input, and rows of at least one
    /// tile.
    pub fn new(g: Geometry, c_out: usize) -> Option<Self> {
        let s = g.stride;
        let applies = (1..=MAX_OUT_CHANNELS).contains(&c_out)
            && (s == 1 || s == 2)
            && g.kernel_h * g.kernel_w > 1
            && g.channels * g.in_h * g.in_w > 0
            && g.out_h > 0
            && g.out_w >= TILE;
        applies.then(|| Direct {
            g,
            c_out,
            plane_h: g.out_h + (g.kernel_h - 1) / s,
            plane_w: g.out_w + (g.kernel_w - 1) / s,
        })
    }

    fn plane_len(&self) -> usize {
        self.plane_h * self.plane_w
    }

    fn planes_per_channel(&self) -> usize {
        self.g.stride * self.g.stride
    }

    /// Scratch per thread: the padded (phase) planes, and one tile's reach past their end so
    /// that the last tile of the last row reads memory (its extra values are never written
    /// out).
    fn scratch_len(&self) -> usize {
        self.g.channels * self.planes_per_channel() * self.plane_len() + WIDE_TILE
    }

    /// Where tap `t` (in the weight's order: channel, ky, kx) starts reading, relative to the
    /// output pixel's own position `oy · plane_w + ox`.
    fn tap_offsets(&self) -> Vec<usize> {
        let (g, s) = (self.g, self.g.stride);
        let mut offsets = Vec::with_capacity(g.rows());
        for c in 0..g.channels {
            for ky in 0..g.kernel_h {
                for kx in 0..g.kernel_w {
                    let plane = (c * s + ky % s) * s + kx % s;
                    offsets.push(plane * self.plane_len() + (ky / s) * self.plane_w + kx / s);
                }
            }
        }
        offsets
    }

    /// The weight (C_out, taps) regrouped as blocks of [`CHANNEL_BLOCK`] channels, each a list
    /// of per-tap channel vectors (zero for channels past C_out).
    fn packed_weight(&self, w: &[f32]) -> Vec<[f32; CHANNEL_BLOCK]> {
        let taps = self.g.rows();
        let blocks = self.c_out.div_ceil(CHANNEL_BLOCK);
        let mut packed = vec![[0f32; CHANNEL_BLOCK]; blocks * taps];
        for (o, row) in w.chunks_exact(taps).enumerate().take(self.c_out) {
            let (block, lane) = (o / CHANNEL_BLOCK, o % CHANNEL_BLOCK);
            for (t, &v) in row.iter().enumerate() {
                packed[block * taps + t][lane] = v;
            }
        }
        packed
    }

    /// Copies one image (channels × in_h × in_w) into its padded phase planes: plane (c, a, b)
    /// holds padded pixel (s·i + a, s·j + b) at (i, j), zero where that is padding. Zeroes
    /// the planes, then walks the image row by row (padded pixels that no tap reads, past the
    /// planes' ends, are left out).
    fn fill_planes(&self, image: &[f32], planes: &mut [f32]) {
        let (g, s) = (self.g, self.g.stride);
        let plane_len = self.plane_len();
        let channel_len = s * s * plane_len;
        planes[..g.channels * channel_len].fill(0.0);
        // Source pixels of a row (and rows of a plane) that land inside the planes.
        let cols = g.in_w.min((s * self.plane_w).saturating_sub(g.pad_left));
        let rows = g.in_h.min((s * self.plane_h).saturating_sub(g.pad_top));
        let in_plane = g.in_h * g.in_w;
        for (c, src) in image.chunks_exact(in_plane).enumerate().take(g.channels) {
            let channel = &mut planes[c * channel_len..(c + 1) * channel_len];
            for (iy, src_row) in src.chunks_exact(g.in_w).enumerate().take(rows) {
                let py = iy + g.pad_top;
                let (a, i) = (py % s, py / s);
                let src_row = &src_row[..cols];
                let row = |b: usize| (a * s + b) * plane_len + i * self.plane_w;
                if s == 1 {
                    let start = row(0) + g.pad_left;
                    channel[start..start + cols].copy_from_slice(src_row);
                } else {
                    // Source pixel ix lands in column phase (ix + pad_left) % 2 at column
                    // (ix + pad_left) / 2: even pixels in one phase, odd ones in the other.
                    let split = (a * s + 1) * plane_len;
                    let (first_phase, second_phase) = channel.split_at_mut(split);
                    let phase_rows = (
                        &mut first_phase[row(0)..row(0) + self.plane_w],
                        &mut second_phase[row(1) - split..row(1) - split + self.plane_w],
                    );
                    let (even_row, odd_row) = match g.pad_left % 2 {
                        0 => phase_rows,
                        _ => (phase_rows.1, phase_rows.0),
                    };
                    let even_row = &mut even_row[g.pad_left / 2..];
                    let odd_row = &mut odd_row[g.pad_left.div_ceil(2)..];
                    let pairs = src_row.chunks_exact(2);
                    if let Some(&last) = pairs.remainder().first() {
                        even_row[cols / 2] = last;
                    }
                    for ((e, o), pair) in even_row.iter_mut().zip(odd_row.iter_mut()).zip(pairs) {
                        *e = pair[0];
                        *o = pair[1];
                    }
                }
            }
        }
    }

    /// `y = W ∗ x` for every image of the batch: x (batch, C, in_h, in_w), W (C_out, C, kh, kw).
    /// Images run in parallel; a batch smaller than the thread count runs one image at a time
    /// with each image's rows split among the threads (the same values either way).
    pub fn forward(&self, x: &[f32], w: &[f32], batch: usize) -> Vec<f32> {
        let in_len = self.g.image_len();
        let out_len = self.c_out * self.g.cols();
        let offsets = self.tap_offsets();
        let packed = self.packed_weight(w);
        let all_rows = 0..self.g.out_h;
        let write = |y: &mut [MaybeUninit<f32>]| {
            each_image(y, batch, self.scratch_len(), |b, yb, planes, par| {
                self.fill_planes(&x[b * in_len..(b + 1) * in_len], planes);
                match par {
                    Parallelism::Rayon(threads) if threads > 1 => {
                        self.accumulate_in_bands(planes, &offsets, &packed, threads, yb)
                    }
                    _ => self.accumulate(planes, &offsets, &packed, all_rows.clone(), yb),
                }
            })
        };
        // SAFETY: `accumulate` and `accumulate_in_bands` write every output value of an image.
        unsafe { written_vec(batch * out_len, write) }
    }

    /// One image's output computed in bands of rows, one per thread, each into its own buffer
    /// and then copied into place.
    fn accumulate_in_bands(
        &self,
        planes: &[f32],
        offsets: &[usize],
        packed: &[[f32; CHANNEL_BLOCK]],
        threads: usize,
        out: &mut [MaybeUninit<f32>],
    ) {
        let (out_h, out_w) = (self.g.out_h, self.g.out_w);
        let band = out_h.div_ceil(threads).max(1);
        let starts: Vec<usize> = (0..out_h).step_by(band).collect();
        let bands: Vec<(Range<usize>, Vec<f32>)> = starts
            .into_par_iter()
            .map(|start| {
                let rows = start..(start + band).min(out_h);
                let len = self.c_out * rows.len() * out_w;
                let write = |dst: &mut [MaybeUninit<f32>]| {
                    self.accumulate(planes, offsets, packed, rows.clone(), dst)
                };
                // SAFETY: `accumulate` writes every value of the band.
                (rows.clone(), unsafe { written_vec(len, write) })
            })
            .collect();
        for (rows, values) in bands {
            let band_len = rows.len() * out_w;
            for (o, channel) in values.chunks_exact(band_len).enumerate() {
                let start = o * self.g.cols() + rows.start * out_w;
                for (d, &v) in out[start..start + band_len].iter_mut().zip(channel) {
                    d.write(v);
                }
            }
        }
    }

    /// The output values of one image's `rows` from its padded planes, laid out (C_out,
    /// rows, out_w) in `out`, with the kernel the CPU runs fastest.
    fn accumulate(
        &self,
        planes: &[f32],
        offsets: &[usize],
        packed: &[[f32; CHANNEL_BLOCK]],
        rows: Range<usize>,
        out: &mut [MaybeUninit<f32>],
    ) {
        #[cfg(target_arch = "x86_64")]
        if has_avx512f() && self.g.out_w >= WIDE_TILE {
            // SAFETY: the CPU has AVX-512F, and so AVX2 and FMA (checked just above).
            unsafe { self.accumulate_avx512f(planes, offsets, packed, rows, out) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            unsafe { self.accumulate_avx2_fma(planes, offsets, packed, rows, out) };
            return;
        }
        // aarch64's baseline has a fused multiply-add instruction; elsewhere `mul_add` would
        // be a library call per value.
        self.accumulate_with::<{ cfg!(target_arch = "aarch64") }, TILE>(planes, offsets, packed, rows, out);
    }

    /// [`Direct::accumulate`] in tiles of [`WIDE_TILE`] pixels: each pixel's sum is the same
    /// as in [`TILE`]-pixel tiles, in half the instructions on 16-wide vectors.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn accumulate_avx512f(
        &self,
        planes: &[f32],
        offsets: &[usize],
        packed: &[[f32; CHANNEL_BLOCK]],
        rows: Range<usize>,
        out: &mut [MaybeUninit<f32>],
    ) {
        self.accumulate_with::<true, WIDE_TILE>(planes, offsets, packed, rows, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn accumulate_avx2_fma(
        &self,
        planes: &[f32],
        offsets: &[usize],
        packed: &[[f32; CHANNEL_BLOCK]],
        rows: Range<usize>,
        out: &mut [MaybeUninit<f32>],
    ) {
        self.accumulate_with::<true, TILE>(planes, offsets, packed, rows, out);
    }

    /// The loop over tiles: every block of channels, every row of `rows`, every run of
    /// `T` pixels (the last run of a row computes a full tile and writes only what the row
    /// holds).
    #[inline(always)]
    fn accumulate_with<const FUSED: bool, const T: usize>(
        &self,
        planes: &[f32],
        offsets: &[usize],
        packed: &[[f32; CHANNEL_BLOCK]],
        rows: Range<usize>,
        out: &mut [MaybeUninit<f32>],
    ) {
        let g = self.g;
        let taps = offsets.len();
        let channel_len = rows.len() * g.out_w;
        if rows.is_empty() {
            return;
        }
        // The farthest any tile reads: the last tap's offset is the largest, the last row's
        // last tile the farthest base.
        let last_base = (rows.end - 1) * self.plane_w + (g.out_w - 1) / T * T;
        let reach = offsets.iter().max().map_or(0, |&o| o + last_base + T);
        assert!(
            reach <= planes.len(),
            "direct convolution: tiles read past the planes"
        );
        for (block, weights) in packed.chunks_exact(taps).enumerate() {
            let channels = (self.c_out - block * CHANNEL_BLOCK).min(CHANNEL_BLOCK);
            for oy in rows.clone() {
                for ox in (0..g.out_w).step_by(T) {
                    // SAFETY: every tile reads at most `reach` values into `planes` (checked above).
                    let acc = unsafe { tile::<FUSED, T>(planes, offsets, weights, oy * self.plane_w + ox) };
                    let n = T.min(g.out_w - ox);
                    for (lane, values) in acc.iter().enumerate().take(channels) {
                        let o = block * CHANNEL_BLOCK + lane;
                        let start = o * channel_len + (oy - rows.start) * g.out_w + ox;
                        for (d, &v) in out[start..start + n].iter_mut().zip(values) {
                            d.write(v);
                        }
                    }
                }
            }
        }
    }
}

/// Output pixels summed side by side in the weight gradient (one AVX2 vector).
#[cfg(target_arch = "x86_64")]
const LANES: usize = 8;

/// Taps whose sums are kept together in the weight gradient: with [`CHANNEL_BLOCK`] channels,
/// eight vector accumulators, and each pixel's output gradient loaded once for both taps.
#[cfg(target_arch = "x86_64")]
const TAP_BLOCK: usize = 2;

/// A block's partial sums: [`TAP_BLOCK`] taps × [`CHANNEL_BLOCK`] channels × [`LANES`] pixels.
#[cfg(target_arch = "x86_64")]
type TapSums = [[[f32; LANES]; CHANNEL_BLOCK]; TAP_BLOCK];

// The AVX2 weight gradient names its eight accumulators one by one.
#[cfg(target_arch = "x86_64")]
const _: () = assert!(CHANNEL_BLOCK == 4 && TAP_BLOCK == 2 && LANES == 8);

impl Direct {
    /// `∇W = Σ_b ∇y_b ⋆ x_b` for W (C_out, C, kh, kw): each output channel's gradient times
    /// every tap's view of the padded image, summed over the pixels. Images are summed in the
    /// fixed order of [`super::parallel::sum_over_images`], so the result does not depend on the thread count.
    /// `None` on a CPU without AVX2 and FMA, where im2col and a matrix product are faster
    /// than this kernel's sums would be without vectors.
    pub fn weight_gradient(&self, x: &[f32], grad_y: &[f32], batch: usize) -> Option<Vec<f32>> {
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() {
            let in_len = self.g.image_len();
            let out_len = self.c_out * self.g.cols();
            let offsets = self.tap_offsets();
            let accumulate = |b: usize, acc: &mut [f32], planes: &mut [f32], first: bool, _| {
                if first {
                    acc.fill(0.0);
                }
                self.fill_planes(&x[b * in_len..(b + 1) * in_len], planes);
                let grad = &grad_y[b * out_len..(b + 1) * out_len];
                self.check_correlation_reads(planes, &offsets, grad, acc);
                if has_avx512f() {
                    // SAFETY: the CPU has AVX-512F (checked just above) and every read lies
                    // inside `planes` and `grad` (checked above).
                    unsafe { self.correlate_avx512f(planes, &offsets, grad, acc) };
                } else {
                    // SAFETY: the CPU has AVX2 and FMA (checked above) and every read lies
                    // inside `planes` and `grad` (checked just above).
                    unsafe { self.correlate_avx2_fma(planes, &offsets, grad, acc) };
                }
            };
            return Some(super::parallel::sum_over_images(
                batch,
                self.c_out * offsets.len(),
                self.scratch_len(),
                accumulate,
            ));
        }
        let _ = (x, grad_y, batch);
        None
    }
}

#[cfg(target_arch = "x86_64")]
impl Direct {
    /// Fails unless every read of [`Direct::correlate_avx2_fma`] lies inside `planes` and
    /// `grad` (C_out × out_h × out_w) and `acc` holds C_out × taps sums.
    fn check_correlation_reads(&self, planes: &[f32], offsets: &[usize], grad: &[f32], acc: &[f32]) {
        let g = self.g;
        let reach = offsets
            .iter()
            .max()
            .map_or(0, |&o| o + (g.out_h - 1) * self.plane_w + g.out_w);
        assert!(
            reach <= planes.len(),
            "direct weight gradient: taps read past the planes"
        );
        assert_eq!(
            grad.len(),
            self.c_out * g.cols(),
            "direct weight gradient: output gradient"
        );
        assert_eq!(
            acc.len(),
            self.c_out * offsets.len(),
            "direct weight gradient: weight"
        );
    }

    /// For every block of [`CHANNEL_BLOCK`] channels and [`TAP_BLOCK`] taps, the sums of its
    /// (tap, channel) pairs. Channels past C_out in the last block repeat its first channel and
    /// taps past the last repeat the last tap; both are dropped in [`Direct::add_block`].
    fn blocks(&self, taps: usize) -> impl Iterator<Item = ([usize; CHANNEL_BLOCK], [usize; TAP_BLOCK])> + '_ {
        (0..self.c_out).step_by(CHANNEL_BLOCK).flat_map(move |first| {
            let channels = std::array::from_fn(|l| if first + l < self.c_out { first + l } else { first });
            (0..taps)
                .step_by(TAP_BLOCK)
                .map(move |t| (channels, std::array::from_fn(|p| (t + p).min(taps - 1))))
        })
    }

    /// Adds a block's sums (each the sum of its [`LANES`] partial sums) into `acc`, once per
    /// distinct (channel, tap).
    fn add_block(
        &self,
        (channels, taps): ([usize; CHANNEL_BLOCK], [usize; TAP_BLOCK]),
        sums: &TapSums,
        n_taps: usize,
        acc: &mut [f32],
    ) {
        for (p, (&t, tap_sums)) in taps.iter().zip(sums).enumerate() {
            if p > 0 && t == taps[p - 1] {
                continue;
            }
            for (l, (&o, lanes)) in channels.iter().zip(tap_sums).enumerate() {
                if l > 0 && o == channels[0] {
                    continue;
                }
                acc[o * n_taps + t] += lanes.iter().sum::<f32>();
            }
        }
    }
}

/// One image's weight gradient added to `acc` (C_out × taps), from its padded planes and its
/// output gradient `grad` (C_out × out_h × out_w), for one vector width: per block, eight
/// vector accumulators over a row's pixels a vector at a time, the row's last few pixels (and
/// rows narrower than a vector) one by one. The two widths differ only in the instructions,
/// so one body serves both.
#[cfg(target_arch = "x86_64")]
macro_rules! correlate_kernel {
    ($(#[$doc:meta])* $name:ident, $feature:literal, $width:literal,
     $zero:ident, $load:ident, $fmadd:ident, $store:ident) => {
        $(#[$doc])*
        #[target_feature(enable = $feature)]
        unsafe fn $name(&self, planes: &[f32], offsets: &[usize], grad: &[f32], acc: &mut [f32]) {
            use std::arch::x86_64::{$fmadd, $load, $store, $zero};
            const WIDTH: usize = $width;
            let g = self.g;
            let (cols, w) = (g.cols(), g.out_w);
            let full = w / WIDTH * WIDTH;
            for block in self.blocks(offsets.len()) {
                let (channels, taps) = block;
                let mut s = [[$zero(); CHANNEL_BLOCK]; TAP_BLOCK];
                let mut tail: TapSums = [[[0f32; LANES]; CHANNEL_BLOCK]; TAP_BLOCK];
                for oy in 0..g.out_h {
                    let x_rows = taps.map(|t| offsets[t] + oy * self.plane_w);
                    let g_rows = channels.map(|o| o * cols + oy * w);
                    for ox in (0..full).step_by(WIDTH) {
                        // SAFETY: ox + WIDTH ≤ w, so every read lies inside its row (the
                        // caller checked the rows).
                        let (x0, x1, g0, g1, g2, g3) = unsafe {
                            (
                                $load(planes.as_ptr().add(x_rows[0] + ox)),
                                $load(planes.as_ptr().add(x_rows[1] + ox)),
                                $load(grad.as_ptr().add(g_rows[0] + ox)),
                                $load(grad.as_ptr().add(g_rows[1] + ox)),
                                $load(grad.as_ptr().add(g_rows[2] + ox)),
                                $load(grad.as_ptr().add(g_rows[3] + ox)),
                            )
                        };
                        s[0][0] = $fmadd(x0, g0, s[0][0]);
                        s[0][1] = $fmadd(x0, g1, s[0][1]);
                        s[0][2] = $fmadd(x0, g2, s[0][2]);
                        s[0][3] = $fmadd(x0, g3, s[0][3]);
                        s[1][0] = $fmadd(x1, g0, s[1][0]);
                        s[1][1] = $fmadd(x1, g1, s[1][1]);
                        s[1][2] = $fmadd(x1, g2, s[1][2]);
                        s[1][3] = $fmadd(x1, g3, s[1][3]);
                    }
                    for ox in full..w {
                        for (tap_sums, &x_row) in tail.iter_mut().zip(&x_rows) {
                            let v = planes[x_row + ox];
                            for (lanes, &g_row) in tap_sums.iter_mut().zip(&g_rows) {
                                lanes[ox % LANES] = v.mul_add(grad[g_row + ox], lanes[ox % LANES]);
                            }
                        }
                    }
                }
                let mut sums: TapSums = tail;
                for (p, tap_sums) in sums.iter_mut().enumerate() {
                    for (l, lanes) in tap_sums.iter_mut().enumerate() {
                        let mut vector = [0f32; WIDTH];
                        // SAFETY: `vector` holds WIDTH values.
                        unsafe { $store(vector.as_mut_ptr(), s[p][l]) };
                        for (k, v) in vector.into_iter().enumerate() {
                            lanes[k % LANES] += v;
                        }
                    }
                }
                self.add_block(block, &sums, offsets.len(), acc);
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
impl Direct {
    correlate_kernel!(
        /// The weight gradient's sums on 8-wide vectors ([`correlate_kernel`]).
        ///
        /// # Safety
        /// The CPU must have AVX2 and FMA, and the reads must lie inside `planes` and `grad`
        /// ([`Direct::check_correlation_reads`]).
        correlate_avx2_fma, "avx2,fma", 8,
        _mm256_setzero_ps, _mm256_loadu_ps, _mm256_fmadd_ps, _mm256_storeu_ps
    );

    correlate_kernel!(
        /// The weight gradient's sums on 16-wide vectors ([`correlate_kernel`]): the same eight
        /// accumulators hold twice the pixels, so a row takes half the multiply-adds.
        ///
        /// # Safety
        /// The CPU must have AVX-512F, and the reads must lie inside `planes` and `grad`
        /// ([`Direct::check_correlation_reads`]).
        correlate_avx512f, "avx512f", 16,
        _mm512_setzero_ps, _mm512_loadu_ps, _mm512_fmadd_ps, _mm512_storeu_ps
    );
}

/// Whether the CPU has AVX2 and FMA, where the kernels' vector forms run.
#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// One tile: Σ over taps of the tap's channel weights times the [`TILE`] values it reads at
/// `base` (fused multiply-adds when `FUSED`).
///
/// # Safety
/// `offset + base + TILE ≤ planes.len()` for every offset.
#[inline(always)]
unsafe fn tile<const FUSED: bool, const T: usize>(
    planes: &[f32],
    offsets: &[usize],
    weights: &[[f32; CHANNEL_BLOCK]],
    base: usize,
) -> Accumulators<T> {
    let mut acc = [[0f32; T]; CHANNEL_BLOCK];
    for (&offset, w) in offsets.iter().zip(weights) {
        // SAFETY: the caller guarantees that the tile lies inside `planes`; an array of f32
        // has the alignment of f32.
        let values = unsafe { &*(planes.as_ptr().add(offset + base) as *const [f32; T]) };
        for (lane, acc_lane) in acc.iter_mut().enumerate() {
            for (a, &v) in acc_lane.iter_mut().zip(values) {
                *a = if FUSED {
                    w[lane].mul_add(v, *a)
                } else {
                    w[lane] * v + *a
                };
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A convolution of `channels` × `in_h` × `in_w` with a `kh` × `kw` kernel, padded by
    /// `pad_top` rows above and below and `pad_left` columns left and right.
    fn geometry(
        channels: usize,
        (in_h, in_w): (usize, usize),
        (kh, kw): (usize, usize),
        stride: usize,
        (pad_top, pad_left): (usize, usize),
    ) -> Geometry {
        Geometry {
            channels,
            in_h,
            in_w,
            kernel_h: kh,
            kernel_w: kw,
            stride,
            pad_top,
            pad_left,
            out_h: (in_h + 2 * pad_top - kh) / stride + 1,
            out_w: (in_w + 2 * pad_left - kw) / stride + 1,
        }
    }

    /// Shapes that cover both strides, odd and even and rectangular kernels, non-square
    /// images, uneven and large padding, inputs whose last rows and columns no tap reads,
    /// partial channel blocks, and rows that leave a partial tile or run.
    fn shapes() -> Vec<(Geometry, usize)> {
        vec![
            (geometry(3, (16, 16), (3, 3), 1, (1, 1)), 8),
            (geometry(3, (20, 20), (3, 3), 1, (1, 1)), 3),
            (geometry(5, (32, 32), (3, 3), 2, (1, 1)), 16),
            (geometry(2, (34, 34), (4, 4), 2, (1, 1)), 5),
            (geometry(4, (18, 18), (4, 4), 1, (1, 2)), 7),
            (geometry(2, (17, 17), (5, 5), 1, (2, 2)), 1),
            (geometry(3, (19, 19), (3, 3), 1, (0, 0)), 6),
            (geometry(3, (34, 34), (3, 3), 2, (0, 0)), 4),
            (geometry(2, (32, 32), (5, 5), 2, (2, 2)), 9),
            (geometry(2, (33, 33), (5, 5), 2, (2, 1)), 9),
            (geometry(3, (35, 35), (4, 4), 2, (0, 0)), 4),
            (geometry(3, (9, 21), (3, 5), 1, (1, 2)), 6),
            (geometry(2, (12, 40), (5, 3), 2, (2, 1)), 11),
            (geometry(2, (6, 14), (3, 3), 1, (4, 3)), 2),
            // Rows of 32 pixels or more: the wide tiles where the CPU has AVX-512.
            (geometry(3, (8, 40), (3, 3), 1, (1, 1)), 5),
            (geometry(2, (6, 70), (3, 3), 2, (1, 1)), 3),
        ]
    }

    /// On a CPU with AVX-512, tiles of 32 pixels give every output the same bits as tiles of
    /// 16: each pixel sums its taps in the same order either way.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn wide_tiles_give_the_same_bits_as_narrow_ones() {
        if !has_avx512f() {
            return;
        }
        for (g, c_out) in shapes().into_iter().filter(|(g, _)| g.out_w >= WIDE_TILE) {
            let direct = Direct::new(g, c_out).expect("a direct shape");
            let (offsets, packed) = (
                direct.tap_offsets(),
                direct.packed_weight(&values(c_out * g.rows(), 3)),
            );
            let mut planes = vec![0f32; direct.scratch_len()];
            direct.fill_planes(&values(g.image_len(), 5), &mut planes);
            let run = |wide: bool| {
                let mut out = vec![MaybeUninit::new(f32::NAN); c_out * g.cols()];
                if wide {
                    // SAFETY: the CPU has AVX-512F (checked above).
                    unsafe { direct.accumulate_avx512f(&planes, &offsets, &packed, 0..g.out_h, &mut out) };
                } else {
                    // SAFETY: a CPU with AVX-512F has AVX2 and FMA.
                    unsafe { direct.accumulate_avx2_fma(&planes, &offsets, &packed, 0..g.out_h, &mut out) };
                }
                // SAFETY: both write every output value.
                out.into_iter()
                    .map(|v| unsafe { v.assume_init() }.to_bits())
                    .collect::<Vec<u32>>()
            };
            assert_eq!(run(true), run(false), "{g:?} → {c_out}");
        }
    }

    /// The convolution by its definition, one output value at a time.
    fn reference(g: Geometry, c_out: usize, x: &[f32], w: &[f32]) -> Vec<f32> {
        let mut y = vec![0f32; c_out * g.cols()];
        for o in 0..c_out {
            for oy in 0..g.out_h {
                for ox in 0..g.out_w {
                    let mut sum = 0f64;
                    for c in 0..g.channels {
                        for ky in 0..g.kernel_h {
                            for kx in 0..g.kernel_w {
                                if let Some(xv) = input_at(g, x, c, (oy, ox), (ky, kx)) {
                                    let wv = w[((o * g.channels + c) * g.kernel_h + ky) * g.kernel_w + kx];
                                    sum += f64::from(xv) * f64::from(wv);
                                }
                            }
                        }
                    }
                    y[(o * g.out_h + oy) * g.out_w + ox] = sum as f32;
                }
            }
        }
        y
    }

    /// The input value that tap (ky, kx) of output pixel (oy, ox) reads, `None` on padding.
    fn input_at(
        g: Geometry,
        x: &[f32],
        c: usize,
        (oy, ox): (usize, usize),
        (ky, kx): (usize, usize),
    ) -> Option<f32> {
        let iy = (oy * g.stride + ky) as isize - g.pad_top as isize;
        let ix = (ox * g.stride + kx) as isize - g.pad_left as isize;
        let inside = iy >= 0 && ix >= 0 && iy < g.in_h as isize && ix < g.in_w as isize;
        inside.then(|| x[(c * g.in_h + iy as usize) * g.in_w + ix as usize])
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// Every tap of every block lands where the definition puts it, for a batch run image by
    /// image in parallel and for a single image whose rows are split among threads.
    #[test]
    fn matches_the_definition() {
        for (g, c_out) in shapes() {
            let direct = Direct::new(g, c_out).expect("a direct shape");
            for batch in [1, 3] {
                let x = values(batch * g.image_len(), 7);
                let w = values(c_out * g.rows(), 11);
                let y = direct.forward(&x, &w, batch);
                let out_len = c_out * g.cols();
                for b in 0..batch {
                    let want = reference(g, c_out, &x[b * g.image_len()..(b + 1) * g.image_len()], &w);
                    let got = &y[b * out_len..(b + 1) * out_len];
                    let worst = want
                        .iter()
                        .zip(got)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0f32, f32::max);
                    assert!(worst < 1e-4, "{g:?} → {c_out}, batch {batch}: {worst}");
                }
            }
        }
    }

    /// The weight gradient by its definition: Σ over images and output pixels of the output
    /// gradient times the input value each tap reads (where the CPU runs the direct form).
    /// On a CPU with both, the 16-wide weight gradient and the 8-wide one give the same sums
    /// up to rounding (the definition test above checks whichever the CPU runs).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn both_vector_widths_of_the_weight_gradient_agree() {
        if !(has_avx512f() && has_avx2_fma()) {
            return;
        }
        for (g, c_out) in shapes() {
            let direct = Direct::new(g, c_out).expect("a direct shape");
            let offsets = direct.tap_offsets();
            let mut planes = vec![0f32; direct.scratch_len()];
            direct.fill_planes(&values(g.image_len(), 5), &mut planes);
            let grad = values(c_out * g.cols(), 9);
            let (mut narrow, mut wide) = (
                vec![0f32; c_out * offsets.len()],
                vec![0f32; c_out * offsets.len()],
            );
            direct.check_correlation_reads(&planes, &offsets, &grad, &narrow);
            // SAFETY: the CPU has both (checked above) and the reads were checked just above.
            unsafe {
                direct.correlate_avx2_fma(&planes, &offsets, &grad, &mut narrow);
                direct.correlate_avx512f(&planes, &offsets, &grad, &mut wide);
            }
            let worst = narrow
                .iter()
                .zip(&wide)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-4, "{g:?} → {c_out}: {worst}");
            assert!(narrow.iter().any(|&v| v != 0.0), "{g:?}: sums were computed");
        }
    }

    #[test]
    fn weight_gradient_matches_the_definition() {
        for (g, c_out) in shapes() {
            let direct = Direct::new(g, c_out).expect("a direct shape");
            let batch = 3;
            let x = values(batch * g.image_len(), 5);
            let grad_y = values(batch * c_out * g.cols(), 9);
            let Some(got) = direct.weight_gradient(&x, &grad_y, batch) else {
                return;
            };
            let mut want = vec![0f64; c_out * g.rows()];
            for b in 0..batch {
                let xb = &x[b * g.image_len()..(b + 1) * g.image_len()];
                let gb = &grad_y[b * c_out * g.cols()..(b + 1) * c_out * g.cols()];
                for o in 0..c_out {
                    for c in 0..g.channels {
                        for ky in 0..g.kernel_h {
                            for kx in 0..g.kernel_w {
                                let t = (c * g.kernel_h + ky) * g.kernel_w + kx;
                                for oy in 0..g.out_h {
                                    for ox in 0..g.out_w {
                                        if let Some(v) = input_at(g, xb, c, (oy, ox), (ky, kx)) {
                                            let d = gb[(o * g.out_h + oy) * g.out_w + ox];
                                            want[o * g.rows() + t] += f64::from(v) * f64::from(d);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let worst = want
                .iter()
                .zip(&got)
                .map(|(a, &b)| (a - f64::from(b)).abs())
                .fold(0f64, f64::max);
            assert!(worst < 1e-3, "{g:?} → {c_out}: {worst}");
        }
    }

    /// The same values whatever the thread count: one image alone (rows split among the
    /// threads) equals the same image in a batch (images in parallel), bit for bit.
    #[test]
    fn a_single_image_gives_the_same_bits_as_in_a_batch() {
        let (g, c_out) = (geometry(3, (64, 64), (3, 3), 1, (1, 1)), 8);
        let direct = Direct::new(g, c_out).unwrap();
        let x = values(4 * g.image_len(), 3);
        let w = values(c_out * g.rows(), 4);
        let batch = direct.forward(&x, &w, 4);
        let alone = direct.forward(&x[2 * g.image_len()..3 * g.image_len()], &w, 1);
        let out_len = c_out * g.cols();
        assert_eq!(&batch[2 * out_len..3 * out_len], alone.as_slice());
    }

    #[test]
    fn applies_only_to_few_output_channels_and_wide_rows() {
        let g = geometry(3, (64, 64), (3, 3), 1, (1, 1));
        assert!(Direct::new(g, 8).is_some());
        assert!(Direct::new(g, MAX_OUT_CHANNELS + 1).is_none());
        assert!(Direct::new(geometry(3, (8, 8), (3, 3), 1, (1, 1)), 8).is_none());
        assert!(Direct::new(geometry(3, (64, 64), (1, 1), 1, (0, 0)), 8).is_none());
        assert!(Direct::new(geometry(3, (64, 64), (1, 1), 2, (0, 0)), 8).is_none());
        assert!(Direct::new(geometry(3, (64, 64), (3, 3), 3, (1, 1)), 8).is_none());
        let empty = Geometry {
            in_w: 0,
            ..geometry(3, (4, 4), (3, 3), 1, (10, 10))
        };
        assert!(Direct::new(empty, 8).is_none());
    }
}
