//! im2col and its exact adjoint col2im, on one image at a time.
//!
//! im2col lays out every receptive field of a convolution as a column, so that the
//! convolution becomes one matrix product; col2im sums columns back into pixels, which makes
//! it the adjoint of im2col (and so the input gradient of a convolution, or the forward pass
//! of a transposed one).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::source_table::{SourceTable, PADDING};

thread_local! {
    /// Source tables already made on this thread, by geometry (channels set to one: the table
    /// is the same for every channel). Making one, with its windows, was a percent of a lean32
    /// training step when every convolution made its own; a model has a handful of geometries.
    static SOURCE_TABLES: RefCell<HashMap<Geometry, Rc<SourceTable>>> = RefCell::new(HashMap::new());
}

/// The shape of one 2-D convolution: `kernel_h`×`kernel_w` kernel, equal stride on both axes, `pad_top` zero
/// rows above and `pad_left` zero columns left of the image (the rows/columns below/right
/// follow from the output size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Geometry {
    pub channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl Geometry {
    /// Rows of the column matrix: one per (channel, ky, kx).
    pub fn rows(&self) -> usize {
        self.channels * self.kernel_h * self.kernel_w
    }

    /// Columns of the column matrix: one per output pixel.
    pub fn cols(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Values in one input image.
    pub fn image_len(&self) -> usize {
        self.channels * self.in_h * self.in_w
    }

    /// Whether the column matrix is the image itself (1×1 kernel, stride 1, no padding), so
    /// that im2col can be skipped.
    pub fn is_identity(&self) -> bool {
        self.kernel_h == 1
            && self.kernel_w == 1
            && self.stride == 1
            && self.pad_top == 0
            && self.pad_left == 0
            && self.out_h == self.in_h
            && self.out_w == self.in_w
    }

    /// For a stride-1 convolution that keeps the size, with `c_out` output channels: the
    /// convolution of the output gradient that yields the input gradient (kernel flipped,
    /// padding mirrored; weights from [`flip_weight`]). Its column matrix has C_out·kh·kw rows
    /// instead of the C·kh·kw that a col2im of `Wᵀ·∇y` would write and then scatter.
    pub fn flipped(&self, c_out: usize) -> Option<Geometry> {
        let (kh, kw) = (self.kernel_h, self.kernel_w);
        let same = self.stride == 1 && self.out_h == self.in_h && self.out_w == self.in_w;
        (same && self.pad_top < kh && self.pad_left < kw).then_some(Geometry {
            channels: c_out,
            pad_top: kh - 1 - self.pad_top,
            pad_left: kw - 1 - self.pad_left,
            ..*self
        })
    }

    /// How rows of the column matrix are read off the image: for a stride-1 convolution that
    /// keeps the size, each row is the image plane shifted; for a stride-2 convolution that
    /// halves an even size, each row is one of the plane's four phases (even/odd rows ×
    /// even/odd columns) shifted; anything else is gathered pixel by pixel.
    fn access(&self) -> Access {
        if self.stride == 1 && self.out_h == self.in_h && self.out_w == self.in_w {
            Access::Shifted
        } else if self.stride == 2
            && self.in_h.is_multiple_of(2)
            && self.in_w.is_multiple_of(2)
            && self.out_h * 2 == self.in_h
            && self.out_w * 2 == self.in_w
        {
            Access::Phases
        } else {
            Access::Gathered
        }
    }

    /// For a tap (ky or kx) of a stride-2 convolution: the phase it reads (0 even, 1 odd)
    /// and its shift in phase pixels.
    fn phase_and_shift(tap: usize, pad: usize) -> (usize, isize) {
        let t = tap as isize - pad as isize;
        (t.rem_euclid(2) as usize, t.div_euclid(2))
    }

    /// The shift of a tap of a stride-1 convolution.
    fn shift(tap: usize, pad: usize) -> isize {
        tap as isize - pad as isize
    }

    /// Fills `cols` (rows × cols, row-major) with the receptive fields of `image`
    /// (channels × in_h × in_w); entries that fall on padding become zero.
    pub fn im2col(&self, image: &[f32], cols: &mut [f32]) {
        self.im2col_images(image, cols);
    }

    /// The column matrices of several images side by side: `images` holds `count` images one
    /// after another, `cols` is rows × (count · cols), image `i` in columns `i·cols..(i+1)·cols`
    /// of every row. One matrix product then covers all of them (see `super::grouped`).
    pub fn im2col_images(&self, images: &[f32], cols: &mut [f32]) {
        let count = self.image_count(images.len(), "im2col");
        let (n, plane, taps) = (self.cols(), self.in_h * self.in_w, self.kernel_h * self.kernel_w);
        let ld = count * n;
        assert_eq!(cols.len(), self.rows() * ld, "im2col: column length");
        // Row `r` of image `i`'s column matrix.
        let row = |r: usize, i: usize| r * ld + i * n..r * ld + (i + 1) * n;
        if self.is_identity() {
            for (i, image) in images.chunks_exact(self.image_len()).enumerate() {
                for (r, src) in image.chunks_exact(n).enumerate() {
                    cols[row(r, i)].copy_from_slice(src);
                }
            }
            return;
        }
        if n <= TABLE_MAX_COLS {
            let table = self.source_table();
            for (i, image) in images.chunks_exact(self.image_len()).enumerate() {
                table.read_image(image, cols, ld, i * n);
            }
            return;
        }
        let out = (self.out_h, self.out_w);
        let access = self.access();
        let mut phases = match access {
            Access::Phases => vec![0f32; plane],
            _ => Vec::new(),
        };
        for (i, image) in images.chunks_exact(self.image_len()).enumerate() {
            for (c, src) in image.chunks_exact(plane).enumerate() {
                if access == Access::Phases {
                    split_phases(src, self.in_w, &mut phases);
                }
                for tap in 0..taps {
                    let dst = &mut cols[row(c * taps + tap, i)];
                    let (ky, kx) = (tap / self.kernel_w, tap % self.kernel_w);
                    match access {
                        Access::Shifted => shifted_copy(
                            src,
                            out,
                            (Self::shift(ky, self.pad_top), Self::shift(kx, self.pad_left)),
                            dst,
                        ),
                        Access::Phases => {
                            let (a, dy) = Self::phase_and_shift(ky, self.pad_top);
                            let (b, dx) = Self::phase_and_shift(kx, self.pad_left);
                            let phase = &phases[(2 * a + b) * n..(2 * a + b + 1) * n];
                            shifted_copy(phase, out, (dy, dx), dst);
                        }
                        Access::Gathered => self.gather_row(src, ky, kx, dst),
                    }
                }
            }
        }
    }

    /// How many images of this geometry `len` values hold; panics (a kernel bug) unless whole.
    fn image_count(&self, len: usize, what: &str) -> usize {
        let image = self.image_len();
        assert!(image > 0 && len.is_multiple_of(image), "{what}: image length");
        len / image
    }

    /// This geometry's source table ([`Geometry::make_source_table`]), made once per thread.
    fn source_table(&self) -> Rc<SourceTable> {
        let key = Geometry { channels: 1, ..*self };
        SOURCE_TABLES.with(|tables| {
            Rc::clone(
                tables
                    .borrow_mut()
                    .entry(key)
                    .or_insert_with(|| Rc::new(key.make_source_table())),
            )
        })
    }

    /// For every tap (ky, kx) and output pixel (oy, ox), in the column matrix's order, the
    /// index in its channel's plane of the input pixel it reads, or [`PADDING`].
    fn make_source_table(&self) -> SourceTable {
        let mut table = Vec::with_capacity(self.kernel_h * self.kernel_w * self.cols());
        for ky in 0..self.kernel_h {
            let (oy_lo, oy_hi) = self.valid_rows(ky);
            for kx in 0..self.kernel_w {
                let (ox_lo, ox_hi) = self.valid_columns(kx);
                for oy in 0..self.out_h {
                    for ox in 0..self.out_w {
                        let inside = (oy_lo..oy_hi).contains(&oy) && (ox_lo..ox_hi).contains(&ox);
                        table.push(if inside {
                            let iy = oy * self.stride + ky - self.pad_top;
                            let ix = ox * self.stride + kx - self.pad_left;
                            (iy * self.in_w + ix) as u32
                        } else {
                            PADDING
                        });
                    }
                }
            }
        }
        SourceTable::new(table, self.cols(), self.in_h * self.in_w)
    }

    /// One row of the column matrix for any geometry, one output row at a time.
    fn gather_row(&self, src: &[f32], ky: usize, kx: usize, dst: &mut [f32]) {
        let (s, w) = (self.stride, self.in_w);
        let (lo, hi) = self.valid_columns(kx);
        let (oy_lo, oy_hi) = self.valid_rows(ky);
        for (oy, line) in dst.chunks_exact_mut(self.out_w).enumerate() {
            if oy < oy_lo || oy >= oy_hi || lo >= hi {
                line.fill(0.0);
                continue;
            }
            let iy = oy * s + ky - self.pad_top;
            let src_row = &src[iy * w..(iy + 1) * w];
            zero_few(&mut line[..lo]);
            zero_few(&mut line[hi..]);
            let first = lo * s + kx - self.pad_left;
            for (i, d) in line[lo..hi].iter_mut().enumerate() {
                *d = src_row[first + i * s];
            }
        }
    }

    /// Output columns `lo..hi` whose input column ox·stride + kx − pad lies in [0, in_w).
    fn valid_columns(&self, kx: usize) -> (usize, usize) {
        Self::valid_range(kx, self.pad_left, self.stride, self.in_w, self.out_w)
    }

    /// Output rows `lo..hi` whose input row oy·stride + ky − pad lies in [0, in_h).
    fn valid_rows(&self, ky: usize) -> (usize, usize) {
        Self::valid_range(ky, self.pad_top, self.stride, self.in_h, self.out_h)
    }

    fn valid_range(tap: usize, pad: usize, stride: usize, input: usize, output: usize) -> (usize, usize) {
        let lo = pad.saturating_sub(tap).div_ceil(stride);
        let hi = if input + pad > tap {
            ((input + pad - tap - 1) / stride + 1).min(output)
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// Adds every entry of `cols` (rows × cols, row-major) into the pixel of `image` it was
    /// read from; entries on padding are dropped. The adjoint of [`Geometry::im2col`].
    pub fn col2im_add(&self, cols: &[f32], image: &mut [f32]) {
        self.col2im_add_images(cols, image);
    }

    /// The adjoint of [`Geometry::im2col_images`]: column matrices side by side in `cols`
    /// (rows × (count · cols)) added into `count` images one after another in `images`.
    pub fn col2im_add_images(&self, cols: &[f32], images: &mut [f32]) {
        let count = self.image_count(images.len(), "col2im");
        let (kh, kw, n, plane) = (self.kernel_h, self.kernel_w, self.cols(), self.in_h * self.in_w);
        let (taps, ld) = (kh * kw, count * n);
        assert_eq!(cols.len(), self.rows() * ld, "col2im: column length");
        let row = |r: usize, i: usize| &cols[r * ld + i * n..r * ld + (i + 1) * n];
        let image_len = self.image_len();
        if n <= TABLE_MAX_COLS {
            // Each pixel receives its taps in the same order as on the other paths, so the
            // sums are the same to the last bit.
            let table = self.source_table();
            for (i, image) in images.chunks_exact_mut(image_len).enumerate() {
                table.add_image(cols, ld, i * n, image);
            }
            return;
        }
        let out = (self.out_h, self.out_w);
        let access = self.access();
        let mut phases = match access {
            Access::Phases => vec![0f32; plane],
            _ => Vec::new(),
        };
        for (i, image) in images.chunks_exact_mut(image_len).enumerate() {
            match access {
                Access::Shifted => {
                    for (c, dst) in image.chunks_exact_mut(plane).enumerate() {
                        for tap in 0..taps {
                            let shift = (
                                Self::shift(tap / kw, self.pad_top),
                                Self::shift(tap % kw, self.pad_left),
                            );
                            shifted_add(row(c * taps + tap, i), out, shift, dst);
                        }
                    }
                }
                Access::Phases => {
                    for (c, dst) in image.chunks_exact_mut(plane).enumerate() {
                        phases.fill(0.0);
                        for tap in 0..taps {
                            let (a, dy) = Self::phase_and_shift(tap / kw, self.pad_top);
                            let (b, dx) = Self::phase_and_shift(tap % kw, self.pad_left);
                            let phase = &mut phases[(2 * a + b) * n..(2 * a + b + 1) * n];
                            shifted_add(row(c * taps + tap, i), out, (dy, dx), phase);
                        }
                        add_phases(&phases, self.in_w, dst);
                    }
                }
                Access::Gathered => self.for_each_tap(|r, out_range, in_start| {
                    let src = &row(r, i)[out_range];
                    if self.stride == 1 {
                        for (d, s) in image[in_start..in_start + src.len()].iter_mut().zip(src) {
                            *d += s;
                        }
                    } else {
                        for (k, s) in src.iter().enumerate() {
                            image[in_start + k * self.stride] += s;
                        }
                    }
                }),
            }
        }
    }

    /// Calls `f(row, out_range, in_start)` for every run of column entries that read real
    /// (not padding) input pixels: `row` is (channel, ky, kx), `out_range` the output pixels
    /// oy·out_w + ox of one output row, `in_start` the input pixel of the run's first entry
    /// (the next ones follow `stride` apart).
    #[inline]
    fn for_each_tap(&self, mut f: impl FnMut(usize, std::ops::Range<usize>, usize)) {
        let (kh, kw) = (self.kernel_h, self.kernel_w);
        for c in 0..self.channels {
            for ky in 0..kh {
                for kx in 0..kw {
                    let row = (c * kh + ky) * kw + kx;
                    let (lo, hi_excl) = self.valid_columns(kx);
                    if lo >= hi_excl {
                        continue;
                    }
                    let (oy_lo, oy_hi) = self.valid_rows(ky);
                    for oy in oy_lo..oy_hi {
                        let iy = oy * self.stride + ky - self.pad_top;
                        let in_base = c * self.in_h * self.in_w + iy * self.in_w;
                        // Input column of output column `lo`.
                        let first_ix = lo * self.stride + kx - self.pad_left;
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

/// The weights (C × C_out·T) of the flipped convolution of [`Geometry::flipped`], from a
/// convolution's weights `weight` (C_out × C·T) with T = kh·kw taps per kernel:
/// `W'[c][o][t] = W[o][c][T − 1 − t]` (both axes reversed).
pub(crate) fn flip_weight(weight: &[f32], c_out: usize, taps: usize) -> Vec<f32> {
    let k2 = taps;
    let c_in = weight.len() / (c_out * k2).max(1);
    let mut flipped = vec![0f32; weight.len()];
    for (oc, taps) in weight.chunks_exact(k2).enumerate() {
        let (o, c) = (oc / c_in, oc % c_in);
        let dst = &mut flipped[(c * c_out + o) * k2..(c * c_out + o + 1) * k2];
        for (d, &v) in dst.iter_mut().zip(taps.iter().rev()) {
            *d = v;
        }
    }
    flipped
}

/// Column matrices of at most this many columns (output pixels) are read and written through
/// a table of source pixels ([`Geometry::source_table`]): on E's and Dx's last planes (8×8 and
/// 4×4) the shifted copies spent most of their time on per-row bookkeeping, not on copying.
const TABLE_MAX_COLS: usize = 64;

/// How [`Geometry::im2col`] reads the image (see [`Geometry::access`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Shifted,
    Phases,
    Gathered,
}

/// The range `lo..hi` of positions `o` in `0..len` whose source `o + shift` lies in `0..len`:
/// [`Geometry::valid_range`] at stride 1 with equal sizes, a shift being tap − padding.
fn overlap(len: usize, shift: isize) -> (usize, usize) {
    let (tap, pad) = (shift.max(0) as usize, (-shift).max(0) as usize);
    Geometry::valid_range(tap, pad, 1, len, len)
}

/// `dst[y][x] = src[y + dy][x + dx]`, zero where that falls outside; both planes `h`×`w`.
/// One contiguous copy, then the wrapped-around columns and the missing rows are zeroed.
fn shifted_copy(src: &[f32], (h, w): (usize, usize), (dy, dx): (isize, isize), dst: &mut [f32]) {
    let (y_lo, y_hi) = overlap(h, dy);
    let (x_lo, x_hi) = overlap(w, dx);
    let (start, end) = (y_lo * w, y_hi * w);
    zero_few(&mut dst[..start]);
    zero_few(&mut dst[end..]);
    if start == end {
        return;
    }
    let offset = dy * w as isize + dx;
    // Destination indices whose source index (j + offset) lies inside the plane; whatever
    // this misses lies in the edge columns, zeroed below.
    let copy_lo = (start as isize).max(-offset) as usize;
    let copy_hi = (end as isize)
        .min(src.len() as isize - offset)
        .max(copy_lo as isize) as usize;
    let src_lo = (copy_lo as isize + offset) as usize;
    dst[copy_lo..copy_hi].copy_from_slice(&src[src_lo..src_lo + copy_hi - copy_lo]);
    zero_few(&mut dst[start..copy_lo]);
    zero_few(&mut dst[copy_hi..end]);
    if x_lo > 0 || x_hi < w {
        for line in dst[start..end].chunks_exact_mut(w) {
            zero_few(&mut line[..x_lo]);
            zero_few(&mut line[x_hi..]);
        }
    }
}

/// Zeroes a slice that is almost always one or two entries long (the columns a kernel tap
/// shifts past the edge) with plain stores: `fill` becomes a call to `memset` per slice, and
/// such calls on one- or two-entry slices were several percent of a training step when E's and
/// Dx's small planes still took this path (they now go through the source table).
#[inline(always)]
fn zero_few(values: &mut [f32]) {
    match values {
        [] => {}
        [a] => *a = 0.0,
        [a, b] => {
            *a = 0.0;
            *b = 0.0;
        }
        longer => longer.fill(0.0),
    }
}

/// `dst[y + dy][x + dx] += src[y][x]` wherever that lies inside; both planes `h`×`w`. The
/// adjoint of [`shifted_copy`].
fn shifted_add(src: &[f32], (h, w): (usize, usize), (dy, dx): (isize, isize), dst: &mut [f32]) {
    let (y_lo, y_hi) = overlap(h, dy);
    let (x_lo, x_hi) = overlap(w, dx);
    for y in y_lo..y_hi {
        let line = &src[y * w + x_lo..y * w + x_hi];
        let start = ((y as isize + dy) * w as isize + x_lo as isize + dx) as usize;
        for (o, &v) in dst[start..start + line.len()].iter_mut().zip(line) {
            *o += v;
        }
    }
}

/// Splits a plane `width` wide (even height and width) into its four phases, stored one after
/// another: (even rows, even columns), (even, odd), (odd, even), (odd, odd).
fn split_phases(plane: &[f32], width: usize, phases: &mut [f32]) {
    let quarter = plane.len() / 4;
    let half = width / 2;
    for (i, pair) in plane.chunks_exact(2 * width).enumerate() {
        let (even_row, odd_row) = pair.split_at(width);
        for (a, row) in [even_row, odd_row].into_iter().enumerate() {
            let (even, odd) = phases[2 * a * quarter..(2 * a + 2) * quarter].split_at_mut(quarter);
            let (even, odd) = (
                &mut even[i * half..(i + 1) * half],
                &mut odd[i * half..(i + 1) * half],
            );
            for ((e, o), px) in even.iter_mut().zip(odd.iter_mut()).zip(row.chunks_exact(2)) {
                *e = px[0];
                *o = px[1];
            }
        }
    }
}

/// The adjoint of [`split_phases`]: adds each phase back into its pixels of `plane`.
fn add_phases(phases: &[f32], width: usize, plane: &mut [f32]) {
    let quarter = plane.len() / 4;
    let half = width / 2;
    for (i, pair) in plane.chunks_exact_mut(2 * width).enumerate() {
        let (even_row, odd_row) = pair.split_at_mut(width);
        for (a, row) in [even_row, odd_row].into_iter().enumerate() {
            let even = &phases[2 * a * quarter + i * half..2 * a * quarter + (i + 1) * half];
            let odd = &phases[(2 * a + 1) * quarter + i * half..(2 * a + 1) * quarter + (i + 1) * half];
            for ((px, &e), &o) in row.chunks_exact_mut(2).zip(even).zip(odd) {
                px[0] += e;
                px[1] += o;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use rand::{Rng, SeedableRng};

    /// (kernel, stride, padding before, padding after, height, width): every access kind
    /// ([`Access`]), each on planes below and above [`TABLE_MAX_COLS`] output pixels.
    const GEOMETRIES: [(usize, usize, usize, usize, usize, usize); 10] = [
        (3, 1, 1, 1, 5, 6),
        (3, 1, 1, 1, 12, 11),
        (3, 2, 1, 0, 8, 8),
        (3, 2, 1, 0, 20, 18),
        (4, 2, 1, 2, 7, 6),
        (4, 2, 1, 2, 19, 17),
        (1, 1, 0, 0, 3, 3),
        (1, 1, 0, 0, 9, 9),
        (5, 2, 2, 2, 6, 9),
        (5, 2, 2, 2, 16, 17),
    ];

    fn geometry(
        (kernel, stride, pad_before, pad_after, h, w): (usize, usize, usize, usize, usize, usize),
    ) -> Geometry {
        Geometry {
            channels: 2,
            in_h: h,
            in_w: w,
            kernel_h: kernel,
            kernel_w: kernel,
            stride,
            pad_top: pad_before,
            pad_left: pad_before,
            out_h: (h + pad_before + pad_after - kernel) / stride + 1,
            out_w: (w + pad_before + pad_after - kernel) / stride + 1,
        }
    }

    /// Both sides of the table's threshold, and every access kind, are exercised.
    #[test]
    fn the_geometries_cover_the_table_and_every_plane_access() {
        let all: Vec<Geometry> = GEOMETRIES.into_iter().map(geometry).collect();
        for access in [Access::Shifted, Access::Phases, Access::Gathered] {
            let of_kind = || all.iter().filter(move |g| g.access() == access);
            assert!(
                of_kind().any(|g| g.cols() <= TABLE_MAX_COLS),
                "{access:?} by table"
            );
            assert!(
                of_kind().any(|g| g.cols() > TABLE_MAX_COLS),
                "{access:?} by planes"
            );
        }
    }

    /// Every entry of the column matrix is the input pixel its definition names, or zero on
    /// padding: `cols[(c·kh + ky)·kw + kx][oy·out_w + ox] = x[c][oy·s + ky − p][ox·s + kx − p]`.
    #[test]
    fn im2col_reads_the_pixel_each_entry_names() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for g in GEOMETRIES.into_iter().map(geometry) {
            let x: Vec<f32> = (0..g.image_len()).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mut cols = vec![f32::NAN; g.rows() * g.cols()];
            g.im2col(&x, &mut cols);
            for c in 0..g.channels {
                for (ky, kx) in (0..g.kernel_h).flat_map(|ky| (0..g.kernel_w).map(move |kx| (ky, kx))) {
                    for (oy, ox) in (0..g.out_h).flat_map(|oy| (0..g.out_w).map(move |ox| (oy, ox))) {
                        let iy = (oy * g.stride + ky) as isize - g.pad_top as isize;
                        let ix = (ox * g.stride + kx) as isize - g.pad_left as isize;
                        let inside = (0..g.in_h as isize).contains(&iy) && (0..g.in_w as isize).contains(&ix);
                        let want = if inside {
                            x[(c * g.in_h + iy as usize) * g.in_w + ix as usize]
                        } else {
                            0.0
                        };
                        let row = (c * g.kernel_h + ky) * g.kernel_w + kx;
                        assert_eq!(cols[row * g.cols() + oy * g.out_w + ox], want, "{g:?}");
                    }
                }
            }
        }
    }

    /// Several images side by side: each image's columns are exactly its own column matrix,
    /// and col2im of the side-by-side matrix adds into each image what col2im of its own block
    /// adds, to the last bit.
    #[test]
    fn images_side_by_side_hold_each_images_own_columns() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let count = 3;
        for g in GEOMETRIES.into_iter().map(geometry) {
            let (rows, n, len) = (g.rows(), g.cols(), g.image_len());
            let x: Vec<f32> = (0..count * len).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mut together = vec![f32::NAN; rows * count * n];
            g.im2col_images(&x, &mut together);
            let c: Vec<f32> = (0..together.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mut images = vec![0.5f32; x.len()];
            g.col2im_add_images(&c, &mut images);
            for i in 0..count {
                let block = |m: &[f32]| -> Vec<f32> {
                    (0..rows)
                        .flat_map(|r| m[(r * count + i) * n..(r * count + i + 1) * n].to_vec())
                        .collect()
                };
                let mut own = vec![f32::NAN; rows * n];
                g.im2col(&x[i * len..(i + 1) * len], &mut own);
                assert_eq!(block(&together), own, "{g:?} image {i}");
                let mut image = vec![0.5f32; len];
                g.col2im_add(&block(&c), &mut image);
                assert_eq!(&images[i * len..(i + 1) * len], &image[..], "{g:?} image {i}");
            }
        }
    }

    /// ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for every geometry: col2im is im2col's adjoint.
    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for g in GEOMETRIES.into_iter().map(geometry) {
            let (kernel, stride) = (g.kernel_h, g.stride);
            let x: Vec<f32> = (0..g.image_len()).map(|_| rng.random_range(-1.0..1.0)).collect();
            let c: Vec<f32> = (0..g.rows() * g.cols())
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let mut cols = vec![f32::NAN; c.len()];
            g.im2col(&x, &mut cols);
            let mut image = vec![0f32; x.len()];
            g.col2im_add(&c, &mut image);
            let lhs: f64 = cols.iter().zip(&c).map(|(a, b)| (a * b) as f64).sum();
            let rhs: f64 = x.iter().zip(&image).map(|(a, b)| (a * b) as f64).sum();
            assert!((lhs - rhs).abs() < 1e-4, "k{kernel} s{stride}: {lhs} vs {rhs}");
        }
    }
}
