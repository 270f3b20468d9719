//! Nearest ×2 upsampling followed by a size-keeping convolution, on the generic path, as four
//! convolutions of the small image (the sub-pixel form the CPU kernels use too). The output
//! pixels of one parity (row even or odd, column even or odd: a phase) see the small image
//! through a smaller kernel: at 3×3, each phase's window covers 2×2 small pixels, whose
//! weights are sums of the 3×3 weights. So a phase's columns hold 4 taps per channel where
//! the upsampled image's hold 9 for each of its four times as many pixels: 16 multiply-adds
//! per small pixel and channel pair instead of 36, and columns of four ninths the size.
//!
//! Per phase a gather and one product: the phase's columns (one index over each image's channels
//! and pixels, a row per small pixel of every image) times the phase's weights, the batch
//! folded into the rows; then one gather interleaves the four phase outputs into the image.

use candle_core::{Result, Shape, Tensor};

use super::tap_gather::{gather, IndexKey};

/// One axis of the phase decomposition: for each parity, the small-image offset each tap of
/// the kernel reads (relative to the output pixel's small position), and the slot it takes
/// among that parity's distinct offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Axis {
    kernel: usize,
    pad_before: usize,
}

impl Axis {
    /// The small-image offset tap `i` reads for an output pixel of `parity`.
    fn offset(&self, parity: usize, i: usize) -> isize {
        (parity as isize + i as isize - self.pad_before as isize).div_euclid(2)
    }

    /// The distinct offsets of `parity`, in increasing order.
    fn offsets(&self, parity: usize) -> Vec<isize> {
        let mut offsets: Vec<isize> = (0..self.kernel).map(|i| self.offset(parity, i)).collect();
        offsets.dedup();
        offsets
    }

    /// Slots per parity: the larger count of distinct offsets.
    fn slots(&self) -> usize {
        self.offsets(0).len().max(self.offsets(1).len())
    }

    /// The slot tap `i` adds its weight to, for `parity`.
    fn slot(&self, parity: usize, i: usize) -> usize {
        let offset = self.offset(parity, i);
        self.offsets(parity)
            .iter()
            .position(|&o| o == offset)
            .expect("every tap's offset is listed")
    }
}

/// An upsample-then-convolve layer on (C, H, W) images whose output is (2H, 2W).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PhaseGeometry {
    channels: usize,
    in_h: usize,
    in_w: usize,
    rows: Axis,
    cols: Axis,
}

impl PhaseGeometry {
    /// The geometry, when the convolution keeps the upsampled size (padding k − 1 in all on
    /// each axis, stride 1); otherwise `None`.
    pub fn new(
        (channels, in_h, in_w): (usize, usize, usize),
        (kernel_h, kernel_w): (usize, usize),
        stride: usize,
        (top, bottom, left, right): (usize, usize, usize, usize),
    ) -> Option<Self> {
        let keeps_size =
            kernel_h > 0 && kernel_w > 0 && top + bottom + 1 == kernel_h && left + right + 1 == kernel_w;
        (stride == 1 && keeps_size && in_h > 0 && in_w > 0).then_some(PhaseGeometry {
            channels,
            in_h,
            in_w,
            rows: Axis {
                kernel: kernel_h,
                pad_before: top,
            },
            cols: Axis {
                kernel: kernel_w,
                pad_before: left,
            },
        })
    }

    /// Taps per phase and channel.
    fn taps(&self) -> usize {
        self.rows.slots() * self.cols.slots()
    }

    /// Elements of one image: also the position that reads zero.
    fn image_len(&self) -> usize {
        self.channels * self.in_h * self.in_w
    }

    /// For small pixel (y, x), channel and slot (a, b) of phase `phase` (= 2·py + px), in that
    /// order, the element of the image it reads, or [`Self::image_len`] (zero): the phase's
    /// columns, a row per pixel.
    fn columns_index(&self, phase: usize) -> Vec<u32> {
        let (h, w) = (self.in_h, self.in_w);
        let zero = self.image_len() as u32;
        let stored = |v: isize, len: usize| (0..len as isize).contains(&v).then_some(v as usize);
        let (row_slots, col_slots) = (self.rows.slots(), self.cols.slots());
        let row_offsets = self.rows.offsets(phase / 2);
        let col_offsets = self.cols.offsets(phase % 2);
        let mut index = Vec::with_capacity(h * w * self.channels * row_slots * col_slots);
        for y in 0..h {
            for x in 0..w {
                for c in 0..self.channels {
                    for a in 0..row_slots {
                        let row = row_offsets.get(a).and_then(|&d| stored(y as isize + d, h));
                        for b in 0..col_slots {
                            let col = col_offsets.get(b).and_then(|&d| stored(x as isize + d, w));
                            index.push(match (row, col) {
                                (Some(r), Some(q)) => ((c * h + r) * w + q) as u32,
                                _ => zero,
                            });
                        }
                    }
                }
            }
        }
        index
    }

    /// The (k_h · k_w, 4 · taps) matrix that sums each tap's weight into its phase slot.
    fn weight_combination(&self) -> Vec<f32> {
        let phase_cols = 4 * self.taps();
        let mut m = vec![0f32; self.rows.kernel * self.cols.kernel * phase_cols];
        for i in 0..self.rows.kernel {
            for j in 0..self.cols.kernel {
                for py in 0..2 {
                    for px in 0..2 {
                        let slot = self.rows.slot(py, i) * self.cols.slots() + self.cols.slot(px, j);
                        let col = (py * 2 + px) * self.taps() + slot;
                        m[(i * self.cols.kernel + j) * phase_cols + col] = 1.0;
                    }
                }
            }
        }
        m
    }
}

/// The index that interleaves four phase outputs, each (H · W, C_out) with a row per small
/// pixel, laid one after another, into one image (C_out, 2H, 2W).
fn interleave_index(c_out: usize, h: usize, w: usize) -> Vec<u32> {
    let phase_len = h * w * c_out;
    let mut index = Vec::with_capacity(4 * phase_len);
    for o in 0..c_out {
        for yy in 0..2 * h {
            for xx in 0..2 * w {
                let phase = (yy % 2) * 2 + xx % 2;
                let pixel = (yy / 2) * w + xx / 2;
                index.push((phase * phase_len + pixel * c_out + o) as u32);
            }
        }
    }
    index
}

/// The convolution (C_out, C, k_h, k_w) of `x` (B, C, H, W) upsampled ×2, for a `geometry`
/// that keeps the upsampled size.
pub(crate) fn upsample2x_conv2d(x: &Tensor, weight: &Tensor, geometry: &PhaseGeometry) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (c_out, _, kh, kw) = weight.dims4()?;
    let taps = geometry.taps();
    let image_len = geometry.image_len();
    let combination = Tensor::from_vec(
        geometry.weight_combination(),
        (kh * kw, 4 * taps),
        weight.device(),
    )?
    .to_dtype(weight.dtype())?;
    // (C_out, C, k_h, k_w) → (4, C_out, C · taps): each phase's weights, its channels major.
    let phase_weights = weight
        .reshape((c_out * c, kh * kw))?
        .matmul(&combination)?
        .reshape((c_out, c, 4, taps))?
        .permute((2, 0, 1, 3))?
        .contiguous()?
        .reshape((4, c_out, c * taps))?;
    let images = x.reshape((b, 1, image_len))?;
    // Per phase, one product for the whole batch (see `generic::convolve`): (B · H · W, C_out).
    let phase_outputs = (0..4)
        .map(|phase| {
            let columns = gather(
                &images,
                IndexKey::Phase(*geometry, phase),
                image_len,
                || geometry.columns_index(phase),
                Shape::from((b * h * w, c * taps)),
            )?;
            columns
                .matmul(&phase_weights.get(phase)?.t()?)?
                .reshape((b, h * w * c_out))
        })
        .collect::<Result<Vec<_>>>()?;
    let plane = 4 * h * w * c_out;
    gather(
        &Tensor::cat(&phase_outputs, 1)?.reshape((b, 1, plane))?,
        IndexKey::Interleave(c_out, h, w),
        plane,
        || interleave_index(c_out, h, w),
        Shape::from((b, c_out, 2 * h, 2 * w)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_3x3_kernel_reads_two_small_pixels_per_axis_in_each_phase() {
        let axis = Axis {
            kernel: 3,
            pad_before: 1,
        };
        // Even outputs read the small pixel before and their own; odd ones their own and after.
        assert_eq!(axis.offsets(0), vec![-1, 0]);
        assert_eq!(axis.offsets(1), vec![0, 1]);
        assert_eq!((0..3).map(|i| axis.slot(0, i)).collect::<Vec<_>>(), vec![0, 1, 1]);
        assert_eq!((0..3).map(|i| axis.slot(1, i)).collect::<Vec<_>>(), vec![0, 0, 1]);
    }

    #[test]
    fn the_phase_weights_sum_the_taps_that_read_the_same_small_pixel() {
        let g = PhaseGeometry::new((1, 2, 2), (3, 3), 1, (1, 1, 1, 1)).unwrap();
        let m = g.weight_combination();
        // Each of the 9 taps goes to exactly one slot in each of the 4 phases.
        for tap in 0..9 {
            assert_eq!(m[tap * 16..tap * 16 + 16].iter().sum::<f32>(), 4.0);
        }
        // Phase (0, 0), slot (1, 1) (the own pixel) collects taps (1..3) × (1..3): 4 of them.
        let own: f32 = (0..9).map(|tap| m[tap * 16 + 3]).sum();
        assert_eq!(own, 4.0);
    }

    #[test]
    fn only_size_keeping_convolutions_take_the_phase_form() {
        assert!(PhaseGeometry::new((1, 4, 4), (3, 3), 1, (1, 1, 1, 1)).is_some());
        assert!(PhaseGeometry::new((1, 4, 4), (4, 4), 1, (1, 2, 1, 2)).is_some());
        assert!(PhaseGeometry::new((1, 4, 4), (3, 3), 1, (0, 0, 0, 0)).is_none());
        assert!(PhaseGeometry::new((1, 4, 4), (3, 3), 2, (1, 1, 1, 1)).is_none());
    }

    #[test]
    fn interleaving_puts_each_phase_on_its_parity() {
        // One channel, 1×1 small image: the four phases become the 2×2 output in order.
        assert_eq!(interleave_index(1, 1, 1), vec![0, 1, 2, 3]);
    }
}
