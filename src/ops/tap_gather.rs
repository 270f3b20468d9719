//! The columns of a convolution (every kernel tap's input pixel for every output pixel) as one
//! gather, for the generic path. A gather is one index lookup per element on any device; its
//! adjoint is a scatter-add, which candle runs on CUDA and Metal with one thread per input
//! row looping over every index (a few thousand threads for tens of thousands of indices).
//! So the backward here is a gather too: each input pixel's gradient is the sum of the
//! column entries that read it, looked up through a precomputed inverse index.
//!
//! The input may also be read as if it were upsampled ×2 (nearest) or dilated by a stride
//! (zeros between pixels): the index maps those virtual pixels to real ones, so neither the
//! enlarged image nor its gradient is ever built. Padding and the dilation's holes read an
//! extra zero element appended to each plane.

use std::cell::RefCell;
use std::collections::HashMap;

use candle_core::backend::{BackendDevice, BackendStorage};
use candle_core::{CpuStorage, CustomOp2, DType, DeviceLocation, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// How the convolved (virtual) image is made from the stored one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    /// The stored image itself.
    Plain,
    /// The stored image upsampled ×2, nearest neighbour.
    Upsampled,
    /// The stored image with `stride − 1` zeros between neighbours (a transposed convolution).
    Dilated(usize),
}

/// Where every tap of a convolution window reads, over an `in_h × in_w` stored plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TapGeometry {
    pub in_h: usize,
    pub in_w: usize,
    pub source: Source,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride: usize,
    /// Zero rows above and columns left of the virtual image; negative crops it.
    pub pad_top: isize,
    pub pad_left: isize,
    pub out_h: usize,
    pub out_w: usize,
}

impl TapGeometry {
    /// The geometry of a convolution of the virtual image padded by `(top, bottom, left,
    /// right)`, or `None` when no output pixel remains.
    pub fn new(
        (in_h, in_w): (usize, usize),
        source: Source,
        (kernel_h, kernel_w): (usize, usize),
        stride: usize,
        (top, bottom, left, right): (isize, isize, isize, isize),
    ) -> Option<Self> {
        let (virtual_h, virtual_w) = match source {
            Source::Plain => (in_h, in_w),
            Source::Upsampled => (2 * in_h, 2 * in_w),
            Source::Dilated(s) => ((in_h.max(1) - 1) * s + 1, (in_w.max(1) - 1) * s + 1),
        };
        let padded_h = virtual_h as isize + top + bottom - kernel_h as isize;
        let padded_w = virtual_w as isize + left + right - kernel_w as isize;
        if stride == 0 || padded_h < 0 || padded_w < 0 || in_h == 0 || in_w == 0 {
            return None;
        }
        Some(TapGeometry {
            in_h,
            in_w,
            source,
            kernel_h,
            kernel_w,
            stride,
            pad_top: top,
            pad_left: left,
            out_h: padded_h as usize / stride + 1,
            out_w: padded_w as usize / stride + 1,
        })
    }

    /// Pixels of the stored plane; also the position of the appended zero.
    pub fn plane_len(&self) -> usize {
        self.in_h * self.in_w
    }

    /// Length of the gathered columns of one plane: taps × output pixels.
    pub fn columns_len(&self) -> usize {
        self.kernel_h * self.kernel_w * self.out_h * self.out_w
    }

    /// The stored pixel along one axis that virtual coordinate `v` shows, if any.
    fn stored(&self, v: isize, len: usize) -> Option<usize> {
        if v < 0 {
            return None;
        }
        let v = v as usize;
        let stored = match self.source {
            Source::Plain => v,
            Source::Upsampled => v / 2,
            Source::Dilated(s) if v.is_multiple_of(s) => v / s,
            Source::Dilated(_) => return None,
        };
        (stored < len).then_some(stored)
    }

    /// For every tap `(i, j)` and output pixel `(y, x)`, in that order, the stored pixel it
    /// reads, or [`Self::plane_len`] (the zero) for padding and holes.
    pub fn forward_index(&self) -> Vec<u32> {
        let zero = self.plane_len() as u32;
        let mut index = Vec::with_capacity(self.columns_len());
        for i in 0..self.kernel_h {
            for j in 0..self.kernel_w {
                for y in 0..self.out_h {
                    let vy = (y * self.stride + i) as isize - self.pad_top;
                    let row = self.stored(vy, self.in_h);
                    for x in 0..self.out_w {
                        let vx = (x * self.stride + j) as isize - self.pad_left;
                        index.push(match (row, self.stored(vx, self.in_w)) {
                            (Some(r), Some(c)) => (r * self.in_w + c) as u32,
                            _ => zero,
                        });
                    }
                }
            }
        }
        index
    }
}

/// The inverse of a forward index over `plane_len` pixels: for each pixel the column entries
/// that read it, padded to the largest count (the fan-in) with `forward.len()`, which the
/// gather reads as zero. Returns (index, fan-in).
pub(crate) fn inverse_index(forward: &[u32], plane_len: usize) -> (Vec<u32>, usize) {
    let mut readers: Vec<Vec<u32>> = vec![Vec::new(); plane_len];
    for (entry, &pixel) in forward.iter().enumerate() {
        if (pixel as usize) < plane_len {
            readers[pixel as usize].push(entry as u32);
        }
    }
    let fan_in = readers.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let filler = forward.len() as u32;
    let mut inverse = Vec::with_capacity(plane_len * fan_in);
    for list in &readers {
        inverse.extend_from_slice(list);
        inverse.extend(std::iter::repeat_n(filler, fan_in - list.len()));
    }
    (inverse, fan_in)
}

/// What an index is built for: the key of the per-thread cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum IndexKey {
    /// The columns of one of an upsample-then-convolve layer's four output phases, per image
    /// (see [`super::phases`]).
    Phase(super::phases::PhaseGeometry, usize),
    /// The interleaving of four phase outputs (each H · W rows of C_out) into one image:
    /// (C_out, H, W).
    Interleave(usize, usize, usize),
    /// A convolution's columns per image, pixel-major: for each output pixel, every channel's
    /// taps (see [`columns_by_pixel`]); the geometry and the channel count.
    TapsByPixel(TapGeometry, usize),
    /// An image's (pixels, channels) matrix read channel-major: (pixels, channels).
    ChannelMajor(usize, usize),
}

/// An index and its inverse on one device, built once per thread.
#[derive(Clone)]
struct Indices {
    forward: Tensor,
    inverse: Tensor,
    fan_in: usize,
}

thread_local! {
    static INDICES: RefCell<HashMap<(IndexKey, DeviceLocation), Indices>> =
        RefCell::new(HashMap::new());
}

/// `planes` (B, C, …: B · C planes of `plane_len` elements) gathered through the index `build`
/// makes (cached per `key` and device), as a tensor of shape `output`; an index of
/// `plane_len` reads zero. The gradient is gathered back through the inverse index.
pub(crate) fn gather(
    planes: &Tensor,
    key: IndexKey,
    plane_len: usize,
    build: impl FnOnce() -> Vec<u32>,
    output: Shape,
) -> Result<Tensor> {
    let device = planes.device();
    let cache_key = (key, device.location());
    let indices = match INDICES.with(|cache| cache.borrow().get(&cache_key).cloned()) {
        Some(found) => found,
        None => {
            let forward = build();
            let (inverse, fan_in) = inverse_index(&forward, plane_len);
            let entries = forward.len();
            let built = Indices {
                forward: Tensor::from_vec(forward, entries, device)?,
                inverse: Tensor::from_vec(inverse, plane_len * fan_in, device)?,
                fan_in,
            };
            INDICES.with(|cache| cache.borrow_mut().insert(cache_key, built.clone()));
            built
        }
    };
    let op = GatherTaps {
        output,
        inverse: Some((indices.inverse, indices.fan_in)),
        summed: 1,
    };
    planes.contiguous()?.apply_op2(&indices.forward, op)
}

/// The index of [`columns_by_pixel`] over one image of `channels` planes: for output pixel
/// `p`, channel `c` and tap `t`, in that order, the image element that the plane index
/// `forward` (tap-major, then pixel) reads in plane `c`, or the image's length (zero).
fn pixel_major_index(forward: &[u32], channels: usize, plane_len: usize, taps: usize) -> Vec<u32> {
    let pixels = forward.len() / taps.max(1);
    let zero = (channels * plane_len) as u32;
    let mut index = Vec::with_capacity(pixels * channels * taps);
    for p in 0..pixels {
        for c in 0..channels {
            for t in 0..taps {
                let read = forward[t * pixels + p] as usize;
                index.push(match read < plane_len {
                    true => (c * plane_len + read) as u32,
                    false => zero,
                });
            }
        }
    }
    index
}

/// The columns of `x` (B, C, H, W) for `geometry` as one matrix (B · H' · W', C · k_h · k_w):
/// a row per output pixel of every image, its channels major and then its taps, so that the
/// convolution is one product of it with the transposed weight (C_out, C · k_h · k_w)ᵀ, the
/// batch folded into the rows.
pub(crate) fn columns_by_pixel(x: &Tensor, geometry: &TapGeometry) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    if (h, w) != (geometry.in_h, geometry.in_w) {
        candle_core::bail!("columns: input {:?} does not fit {geometry:?}", x.dims())
    }
    let taps = geometry.kernel_h * geometry.kernel_w;
    let pixels = geometry.out_h * geometry.out_w;
    let image_len = c * geometry.plane_len();
    gather(
        &x.reshape((b, 1, image_len))?,
        IndexKey::TapsByPixel(*geometry, c),
        image_len,
        || pixel_major_index(&geometry.forward_index(), c, geometry.plane_len(), taps),
        Shape::from((b * pixels, c * taps)),
    )
}

/// `rows` (B · H · W, C): a row of channels per pixel of every image, as images (B, C, H, W).
pub(crate) fn channel_major(rows: &Tensor, b: usize, (h, w): (usize, usize)) -> Result<Tensor> {
    let c = rows.dim(1)?;
    let pixels = h * w;
    if rows.dim(0)? != b * pixels {
        candle_core::bail!("channel-major: {:?} is not {b} images of {h}×{w}", rows.dims())
    }
    let image_len = pixels * c;
    gather(
        &rows.reshape((b, 1, image_len))?,
        IndexKey::ChannelMajor(pixels, c),
        image_len,
        || {
            (0..c)
                .flat_map(|o| (0..pixels).map(move |p| (p * c + o) as u32))
                .collect()
        },
        Shape::from((b, c, h, w)),
    )
}

/// (planes (B, C, …) of N elements each, index (M,) u32) → `output` (B · C · M elements), each
/// entry its plane's element at the index, or zero where the index is N. The gradient is
/// gathered back through `inverse` (an index over the output's planes and its fan-in).
struct GatherTaps {
    output: Shape,
    inverse: Option<(Tensor, usize)>,
    /// Entries of the index summed into each output element: 1 for a plain gather; more for
    /// the gradient's sum over each pixel's readers, which only the CPU f32 path computes.
    summed: usize,
}

/// Planes and their length of a contiguous (B, C, …) layout.
fn planes_of(layout: &Layout) -> Result<(usize, usize, usize)> {
    let (Some((start, _)), [b, c, rest @ ..]) = (layout.contiguous_offsets(), layout.dims()) else {
        candle_core::bail!(
            "gather-taps: planes {:?} must be contiguous (B, C, …)",
            layout.dims()
        )
    };
    Ok((start, b * c, rest.iter().product()))
}

/// The gather on any backend: the planes copied into a zeroed buffer one element longer each,
/// then candle's `index_select` along the planes.
fn gather_with_zero<S>(planes: &S, layout: &Layout, index: &S, index_layout: &Layout) -> Result<S>
where
    S: BackendStorage,
    S::Device: BackendDevice<Storage = S>,
{
    let (start, rows, len) = planes_of(layout)?;
    let extended_shape = Shape::from((rows, len + 1));
    let mut extended = planes.device().zeros_impl(&extended_shape, planes.dtype())?;
    planes.copy2d(&mut extended, rows, len, len, len + 1, start, 0)?;
    extended.index_select(index, &Layout::contiguous(&extended_shape), index_layout, 1)
}

impl GatherTaps {
    fn checked(&self, planes: &Layout, index: &Layout) -> Result<()> {
        let (_, rows, _) = planes_of(planes)?;
        match index.dims() {
            [m] if rows * m == self.output.elem_count() * self.summed.max(1) => Ok(()),
            d => candle_core::bail!(
                "gather-taps: index {d:?} over {rows} planes does not make {:?}",
                self.output
            ),
        }
    }
}

impl CustomOp2 for GatherTaps {
    fn name(&self) -> &'static str {
        "aegan-gather-taps"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.checked(l1, l2)?;
        let (CpuStorage::F32(planes), CpuStorage::U32(index)) = (s1, s2) else {
            if self.summed > 1 {
                candle_core::bail!("gather-taps: summed gathers are for f32 on the CPU")
            }
            return Ok((gather_with_zero(s1, l1, s2, l2)?, self.output.clone()));
        };
        let (start, rows, len) = planes_of(l1)?;
        let index = match l2.contiguous_offsets() {
            Some((a, b)) => &index[a..b],
            None => candle_core::bail!("gather-taps: the index must be contiguous"),
        };
        let planes = &planes[start..start + rows * len];
        let summed = self.summed.max(1);
        let per_plane = index.len() / summed;
        let mut out: Vec<f32> = Vec::with_capacity(rows * per_plane);
        // One plane per task: a gather is memory-bound and the planes are independent. Every
        // element is written (the zero included), so the buffer is not zero-filled first.
        out.spare_capacity_mut()[..rows * per_plane]
            .par_chunks_mut(per_plane.max(1))
            .zip(planes.par_chunks(len.max(1)))
            .for_each(|(out, plane)| {
                for (o, readers) in out.iter_mut().zip(index.chunks_exact(summed)) {
                    let sum: f32 = readers
                        .iter()
                        .map(|&i| plane.get(i as usize).copied().unwrap_or(0.0))
                        .sum();
                    o.write(sum);
                }
            });
        // SAFETY: the loop above wrote every one of the `rows · per_plane` elements (a plane
        // per chunk, `per_plane` elements per chunk).
        unsafe { out.set_len(rows * per_plane) };
        Ok((CpuStorage::F32(out), self.output.clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        self.checked(l1, l2)?;
        Ok((gather_with_zero(s1, l1, s2, l2)?, self.output.clone()))
    }

    #[cfg(feature = "metal")]
    fn metal_fwd(
        &self,
        s1: &candle_core::MetalStorage,
        l1: &Layout,
        s2: &candle_core::MetalStorage,
        l2: &Layout,
    ) -> Result<(candle_core::MetalStorage, Shape)> {
        self.checked(l1, l2)?;
        Ok((gather_with_zero(s1, l1, s2, l2)?, self.output.clone()))
    }

    fn bwd(
        &self,
        planes: &Tensor,
        _index: &Tensor,
        _columns: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let Some((inverse, fan_in)) = &self.inverse else {
            candle_core::bail!("gather-taps: no inverse index for the gradient")
        };
        let (b, c) = (planes.dim(0)?, planes.dim(1)?);
        let len = planes.elem_count() / (b * c);
        let grad = grad.reshape((b, c, grad.elem_count() / (b * c)))?;
        if grad.device().is_cpu() && grad.dtype() == DType::F32 {
            // On the CPU each pixel's readers are gathered and summed in one pass.
            let summed = GatherTaps {
                output: planes.shape().clone(),
                inverse: None,
                summed: *fan_in,
            };
            return Ok((Some(grad.apply_op2_no_bwd(inverse, &summed)?), None));
        }
        // Each pixel's readers, then their sum: a product with ones, which every backend's
        // matrix product runs well (a reduction over a short last axis does not everywhere).
        let readers = grad.apply_op2_no_bwd(
            inverse,
            &GatherTaps {
                output: Shape::from((b * c * len, *fan_in)),
                inverse: None,
                summed: 1,
            },
        )?;
        if *fan_in == 1 {
            // A permutation: each pixel has one reader, nothing to sum.
            return Ok((Some(readers.reshape(planes.shape())?), None));
        }
        let ones = Tensor::ones((*fan_in, 1), grad.dtype(), grad.device())?;
        Ok((Some(readers.matmul(&ones)?.reshape(planes.shape())?), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    fn plain(h: usize, k: usize, stride: usize, pad: isize) -> TapGeometry {
        TapGeometry::new((h, h), Source::Plain, (k, k), stride, (pad, pad, pad, pad)).unwrap()
    }

    #[test]
    fn a_3x3_window_over_a_2x2_plane_reads_the_zero_at_the_padding() {
        let g = plain(2, 3, 1, 1);
        assert_eq!((g.out_h, g.out_w), (2, 2));
        let index = g.forward_index();
        // Tap (0, 0) of output (0, 0) is the padding corner; of output (1, 1) it is pixel 0.
        assert_eq!(&index[..4], &[4, 4, 4, 0]);
        // The centre tap (1, 1) reads each pixel once, in order.
        assert_eq!(&index[16..20], &[0, 1, 2, 3]);
    }

    #[test]
    fn an_upsampled_source_reads_each_stored_pixel_for_four_virtual_ones() {
        let g = TapGeometry::new((2, 2), Source::Upsampled, (1, 1), 1, (0, 0, 0, 0)).unwrap();
        assert_eq!(
            g.forward_index(),
            vec![0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3]
        );
    }

    #[test]
    fn a_dilated_source_reads_the_zero_in_its_holes() {
        let g = TapGeometry::new((2, 2), Source::Dilated(2), (1, 1), 1, (0, 0, 0, 0)).unwrap();
        assert_eq!(g.forward_index(), vec![0, 4, 1, 4, 4, 4, 2, 4, 3]);
    }

    #[test]
    fn the_inverse_lists_every_reader_and_pads_with_the_columns_zero() {
        let (inverse, fan_in) = inverse_index(&[0, 2, 0, 1], 2);
        assert_eq!(fan_in, 2);
        // Pixel 0 is read by entries 0 and 2, pixel 1 by entry 3 (4: none).
        assert_eq!(inverse, vec![0, 2, 3, 4]);
    }

    #[test]
    fn pixel_major_columns_hold_each_channels_taps_per_output_pixel() {
        // Two channels of a 1×2 plane, a 1×2 window without padding: one output pixel whose
        // row reads channel 0's two pixels, then channel 1's.
        let g = TapGeometry::new((1, 2), Source::Plain, (1, 2), 1, (0, 0, 0, 0)).unwrap();
        assert_eq!(pixel_major_index(&g.forward_index(), 2, 2, 2), vec![0, 1, 2, 3]);
        // Padding reads the image's zero (its length, 4), in every channel.
        let padded = TapGeometry::new((1, 2), Source::Plain, (1, 2), 1, (0, 0, 1, 0)).unwrap();
        assert_eq!(
            pixel_major_index(&padded.forward_index(), 2, 2, 2),
            vec![4, 0, 4, 2, 0, 1, 2, 3]
        );
    }

    /// The gradient through the inverse gather equals the scatter-add of candle's own
    /// index_select (its adjoint), including at the appended zero.
    #[test]
    fn the_gradient_is_the_adjoint_of_the_gather() {
        let dev = Device::Cpu;
        let g = TapGeometry::new((3, 4), Source::Upsampled, (3, 3), 1, (1, 1, 1, 1)).unwrap();
        let values: Vec<f32> = (0..2 * 3 * 12).map(|v| (v as f32 * 0.37).sin()).collect();
        let x = Var::from_vec(values, (2, 3, 3, 4), &dev).unwrap();
        let ours = columns_by_pixel(&x, &g).unwrap();
        let index = pixel_major_index(&g.forward_index(), 3, 12, 9);
        let index = Tensor::from_vec(index.clone(), index.len(), &dev).unwrap();
        let images = x.reshape((2, 36)).unwrap();
        let zero = Tensor::zeros((2, 1), DType::F32, &dev).unwrap();
        let reference = Tensor::cat(&[&images, &zero], 1)
            .unwrap()
            .index_select(&index, 1)
            .unwrap()
            .reshape(ours.shape())
            .unwrap();
        assert_eq!(ours.dims(), &[2 * g.out_h * g.out_w, 27]);
        assert_eq!(crate::ops::max_abs_diff(&ours, &reference), 0.0);
        // Other dtypes take the path of the GPU backends (candle's index_select on a copy).
        let in_f64 = columns_by_pixel(&x.to_dtype(DType::F64).unwrap(), &g).unwrap();
        assert_eq!(
            in_f64.to_dtype(DType::F32).unwrap().to_vec2::<f32>().unwrap(),
            ours.to_vec2::<f32>().unwrap()
        );
        let probe_values: Vec<f32> = (0..ours.elem_count()).map(|v| (v as f32 * 0.11).cos()).collect();
        let probe = Tensor::from_vec(probe_values, ours.shape(), &dev).unwrap();
        crate::ops::assert_same_gradients(&ours, &reference, &probe, &[&x], 1e-5, "gather");
        // The f64 gradient goes the GPU backends' way too: gather the readers, then a product.
        let through_f64 = in_f64.to_dtype(DType::F32).unwrap();
        crate::ops::assert_same_gradients(&through_f64, &reference, &probe, &[&x], 1e-5, "gather f64");
    }

    #[test]
    fn channel_major_transposes_each_images_pixel_rows_and_its_gradient_back() {
        let dev = Device::Cpu;
        // Two images of 1×2 pixels, three channels: rows (image, pixel), columns channels.
        let rows = Var::from_vec((0..12).map(|v| v as f32).collect(), (4, 3), &dev).unwrap();
        let images = channel_major(&rows, 2, (1, 2)).unwrap();
        let expected = rows.reshape((2, 2, 3)).unwrap().transpose(1, 2).unwrap();
        let expected = expected.reshape((2, 3, 1, 2)).unwrap();
        assert_eq!(crate::ops::max_abs_diff(&images, &expected), 0.0);
        let probe =
            Tensor::from_vec((0..12).map(|v| (v as f32).sin()).collect(), (2, 3, 1, 2), &dev).unwrap();
        crate::ops::assert_same_gradients(&images, &expected, &probe, &[&rows], 1e-6, "channel-major");
    }
}
