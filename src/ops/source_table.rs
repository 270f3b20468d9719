//! Reading a small plane's column-matrix rows through a table of source pixels, and adding them
//! back: im2col and col2im for the planes where shifted copies spend their time on per-row
//! bookkeeping (E's and Dx's 8×8 and 4×4 outputs, G's first sub-pixel stages).
//!
//! A table row names, for every output pixel of one kernel tap, the input pixel it reads (or
//! [`PADDING`]). Three forms do the same thing: one value at a time; sixteen at a time with
//! AVX-512's gather and scatter; and sixteen at a time from a window of 64 consecutive pixels
//! held in four registers and rearranged with permutes. The last needs every sixteen entries
//! of a row to fall within 64 pixels of each other, which the small planes' rows do (a 4×4
//! output reads an 8×8 plane; two rows of an 8×8 output read at most three rows of 16 pixels);
//! it exists because the gather and scatter instructions are slow on AMD's Zen 4, where a
//! profile of the lean32 step put a tenth of it in them.

/// A table entry that reads padding (zero); beyond every plane.
pub(crate) const PADDING: u32 = u32::MAX;

/// Lanes of an AVX-512 vector of f32.
const LANES: usize = 16;

/// Pixels a window spans: four vectors.
const WINDOW: usize = 4 * LANES;

/// One tap's view of a plane for every output pixel, row by row: the entries of row `tap` are
/// `entries[tap·cols..(tap+1)·cols]`.
#[derive(Debug, Clone)]
pub(crate) struct SourceTable {
    entries: Vec<u32>,
    cols: usize,
    plane: usize,
    form: Form,
}

/// How the rows are read and added back.
#[derive(Debug, Clone)]
enum Form {
    OneByOne,
    #[cfg(target_arch = "x86_64")]
    Gather,
    #[cfg(target_arch = "x86_64")]
    Windows(Vec<Window>),
}

/// Where one row's sixteen consecutive entries lie: the 64 pixels from `base`, which of the
/// four vectors' lanes lie inside the plane (`loads`), which pixels the entries name (`hits`),
/// and for each such pixel the lane that names it (`lane_of`, vector by vector).
#[derive(Debug, Clone)]
struct Window {
    base: u32,
    loads: [u16; 4],
    hits: [u16; 4],
    lane_of: [[u32; LANES]; 4],
}

/// The fastest form the CPU supports, or one form on purpose (the tests compare them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    Fastest,
    #[cfg(test)]
    OneByOne,
    #[cfg(all(test, target_arch = "x86_64"))]
    Gather,
}

impl SourceTable {
    /// A table of `entries` (rows of `cols` each) into planes of `plane` pixels. Every entry
    /// must be [`PADDING`] or inside the plane for a vector form to be chosen; a table that
    /// breaks this (a bug) is read one value at a time, which ignores such entries.
    pub(crate) fn new(entries: Vec<u32>, cols: usize, plane: usize) -> Self {
        Self::with_choice(entries, cols, plane, Choice::Fastest)
    }

    fn with_choice(entries: Vec<u32>, cols: usize, plane: usize, choice: Choice) -> Self {
        assert!(
            cols > 0 && entries.len().is_multiple_of(cols),
            "source table: {} entries in rows of {cols}",
            entries.len()
        );
        let form = Self::form(&entries, cols, plane, choice);
        SourceTable {
            entries,
            cols,
            plane,
            form,
        }
    }

    fn form(entries: &[u32], cols: usize, plane: usize, choice: Choice) -> Form {
        #[cfg(target_arch = "x86_64")]
        {
            let vectors = super::has_avx512f()
                && plane <= i32::MAX as usize
                && entries.iter().all(|&at| at == PADDING || (at as usize) < plane);
            match choice {
                #[cfg(test)]
                Choice::OneByOne => {}
                #[cfg(test)]
                Choice::Gather if vectors => return Form::Gather,
                #[cfg(test)]
                Choice::Gather => {}
                Choice::Fastest if vectors => {
                    return match windows(entries, cols, plane) {
                        Some(windows) => Form::Windows(windows),
                        None => Form::Gather,
                    };
                }
                Choice::Fastest => {}
            }
        }
        let _ = (entries, cols, plane, choice);
        Form::OneByOne
    }

    fn row(&self, tap: usize) -> &[u32] {
        &self.entries[tap * self.cols..(tap + 1) * self.cols]
    }

    /// `dst[j] = src[entry j of row tap]`, zero for padding; `src` is one plane, `dst` one row
    /// of `cols` values.
    pub(crate) fn read(&self, tap: usize, src: &[f32], dst: &mut [f32]) {
        assert!(
            src.len() == self.plane && dst.len() == self.cols,
            "source table: read sizes"
        );
        let entries = self.row(tap);
        let done = match &self.form {
            Form::OneByOne => 0,
            // SAFETY (both): a vector form is chosen only on a CPU with AVX-512F and once every
            // entry is checked to be padding or inside a plane of `self.plane` = `src.len()`
            // pixels; a window form's windows were made from these rows.
            #[cfg(target_arch = "x86_64")]
            Form::Gather => unsafe { gather_avx512f(src, entries, dst) },
            #[cfg(target_arch = "x86_64")]
            Form::Windows(windows) => unsafe {
                read_windows_avx512f(src, entries, self.row_windows(windows, tap), None, dst)
            },
        };
        read_one_by_one(src, &entries[done..], &mut dst[done..]);
    }

    /// `dst[entry j of row tap] += values[j]` wherever the entry is not padding. The entries
    /// of a row name distinct pixels (one tap's view of the plane), so every form adds each
    /// value once to its pixel and the sums have the same bits whichever form runs.
    pub(crate) fn add(&self, tap: usize, values: &[f32], dst: &mut [f32]) {
        assert!(
            dst.len() == self.plane && values.len() == self.cols,
            "source table: add sizes"
        );
        let entries = self.row(tap);
        let done = match &self.form {
            Form::OneByOne => 0,
            // SAFETY: as in `read`.
            #[cfg(target_arch = "x86_64")]
            Form::Gather => unsafe { scatter_add_avx512f(values, entries, dst) },
            #[cfg(target_arch = "x86_64")]
            Form::Windows(windows) => unsafe {
                add_windows_avx512f(values, self.row_windows(windows, tap), dst)
            },
        };
        add_one_by_one(&values[done..], &entries[done..], dst);
    }

    /// Rows in the table: one per kernel tap.
    fn taps(&self) -> usize {
        self.entries.len() / self.cols
    }

    /// How many planes `image` holds, checking that `rows` rows of `cols` values at `stride`
    /// from `offset` fit in `matrix` (`rows` = planes × taps).
    fn planes(&self, image: usize, matrix: usize, stride: usize, offset: usize) -> usize {
        assert!(
            self.plane > 0 && image.is_multiple_of(self.plane),
            "source table: image of {image} values in planes of {}",
            self.plane
        );
        let rows = image / self.plane * self.taps();
        assert!(
            rows == 0 || (rows - 1) * stride + offset + self.cols <= matrix,
            "source table: {rows} rows of {} at stride {stride} from {offset} in {matrix} values",
            self.cols
        );
        image / self.plane
    }

    /// [`SourceTable::read`] for every tap and every plane of `image` (planes one after
    /// another): row `c·taps + tap` of the column matrix goes to the `cols` values of `matrix`
    /// from `(c·taps + tap)·stride + offset`.
    pub(crate) fn read_image(&self, image: &[f32], matrix: &mut [f32], stride: usize, offset: usize) {
        let planes = self.planes(image.len(), matrix.len(), stride, offset);
        #[cfg(target_arch = "x86_64")]
        if let Form::Windows(windows) = &self.form {
            // SAFETY: the window form is chosen only on a CPU with AVX-512F, from this table's
            // entries, all checked to be padding or inside a plane; `planes` checked the sizes.
            unsafe { read_image_windows_avx512f(self, windows, image, matrix, stride, offset) };
            return;
        }
        let taps = self.taps();
        for (c, src) in image.chunks_exact(self.plane).enumerate().take(planes) {
            for tap in 0..taps {
                let at = (c * taps + tap) * stride + offset;
                self.read(tap, src, &mut matrix[at..at + self.cols]);
            }
        }
    }

    /// The adjoint of [`SourceTable::read_image`]: [`SourceTable::add`] of every row of
    /// `matrix` (laid out as there) into its plane of `image`, tap after tap, so each pixel
    /// receives its values in the same order whatever the form.
    pub(crate) fn add_image(&self, matrix: &[f32], stride: usize, offset: usize, image: &mut [f32]) {
        let planes = self.planes(image.len(), matrix.len(), stride, offset);
        #[cfg(target_arch = "x86_64")]
        if let Form::Windows(windows) = &self.form {
            if self.plane <= WINDOW && self.cols.is_multiple_of(LANES) {
                // SAFETY: as in `read_image`; the plane fits one window and rows have no
                // partial vector, as the function requires.
                unsafe { add_whole_planes_avx512f(self, windows, matrix, stride, offset, image) };
                return;
            }
        }
        let taps = self.taps();
        for (c, dst) in image.chunks_exact_mut(self.plane).enumerate().take(planes) {
            for tap in 0..taps {
                let at = (c * taps + tap) * stride + offset;
                self.add(tap, &matrix[at..at + self.cols], dst);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn row_windows<'a>(&self, windows: &'a [Window], tap: usize) -> &'a [Window] {
        let per_row = self.cols / LANES;
        &windows[tap * per_row..(tap + 1) * per_row]
    }
}

/// The window of every whole vector of sixteen entries, row by row (a row's last `cols % 16`
/// entries are read one at a time), or `None` when some vector's entries span 64 pixels or more.
#[cfg(target_arch = "x86_64")]
fn windows(entries: &[u32], cols: usize, plane: usize) -> Option<Vec<Window>> {
    let mut windows = Vec::new();
    for row in entries.chunks_exact(cols) {
        for vector in row.chunks_exact(LANES) {
            let inside = || vector.iter().copied().filter(|&at| at != PADDING);
            // A plane that fits one window is read from one window at 0 (loaded once per
            // plane, see `read_image_windows_avx512f`).
            let base = if plane <= WINDOW {
                0
            } else {
                inside().min().unwrap_or(0)
            };
            if inside().any(|at| at - base >= WINDOW as u32) {
                return None;
            }
            let mut window = Window {
                base,
                loads: lanes_inside(plane, base as usize),
                hits: [0; 4],
                lane_of: [[0; LANES]; 4],
            };
            for (lane, &at) in vector.iter().enumerate() {
                if at != PADDING {
                    let offset = (at - base) as usize;
                    let (k, q) = (offset / LANES, offset % LANES);
                    window.hits[k] |= 1 << q;
                    window.lane_of[k][q] = lane as u32;
                }
            }
            windows.push(window);
        }
    }
    Some(windows)
}

/// [`SourceTable::read`] one value at a time: `dst[j] = src[entries[j]]`, zero for padding (or
/// any entry outside `src`). Every form reads a row's last few values so.
fn read_one_by_one(src: &[f32], entries: &[u32], dst: &mut [f32]) {
    for (d, &at) in dst.iter_mut().zip(entries) {
        *d = src.get(at as usize).copied().unwrap_or(0.0);
    }
}

/// [`SourceTable::add`] one value at a time: `dst[entries[j]] += values[j]`, padding (or any
/// entry outside `dst`) skipped. Every form adds a row's last few values so.
fn add_one_by_one(values: &[f32], entries: &[u32], dst: &mut [f32]) {
    for (&v, &at) in values.iter().zip(entries) {
        if let Some(d) = dst.get_mut(at as usize) {
            *d += v;
        }
    }
}

/// [`SourceTable::read`] sixteen values at a time: a masked gather whose mask leaves out the
/// padding entries (their lanes stay zero). Returns how many values it wrote: the row's whole
/// vectors, leaving the last few.
///
/// # Safety
/// The CPU must have AVX-512F, and every entry must be [`PADDING`] or below `src.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gather_avx512f(src: &[f32], entries: &[u32], dst: &mut [f32]) -> usize {
    use std::arch::x86_64::{
        _mm512_cmpneq_epi32_mask, _mm512_loadu_si512, _mm512_mask_i32gather_ps, _mm512_set1_epi32,
        _mm512_setzero_ps, _mm512_storeu_ps,
    };
    let full = dst.len().min(entries.len()) / LANES * LANES;
    let padding = _mm512_set1_epi32(PADDING as i32);
    for start in (0..full).step_by(LANES) {
        // SAFETY: start + 16 ≤ len, inside both slices; the gather reads only the lanes
        // whose entry is not padding, each inside `src` (the caller's contract).
        unsafe {
            let at = _mm512_loadu_si512(entries.as_ptr().add(start).cast());
            let inside = _mm512_cmpneq_epi32_mask(at, padding);
            let values = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), inside, at, src.as_ptr());
            _mm512_storeu_ps(dst.as_mut_ptr().add(start), values);
        }
    }
    full
}

/// [`SourceTable::add`] sixteen values at a time: a masked gather of the pixels, the values
/// added, a masked scatter back (the entries of a row are distinct, so no lane overwrites
/// another's sum). Returns how many values it added: the row's whole vectors, leaving the
/// last few.
///
/// # Safety
/// The CPU must have AVX-512F, and every entry must be [`PADDING`] or below `dst.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn scatter_add_avx512f(values: &[f32], entries: &[u32], dst: &mut [f32]) -> usize {
    use std::arch::x86_64::{
        _mm512_add_ps, _mm512_cmpneq_epi32_mask, _mm512_loadu_ps, _mm512_loadu_si512,
        _mm512_mask_i32gather_ps, _mm512_mask_i32scatter_ps, _mm512_set1_epi32, _mm512_setzero_ps,
    };
    let full = values.len().min(entries.len()) / LANES * LANES;
    let padding = _mm512_set1_epi32(PADDING as i32);
    for start in (0..full).step_by(LANES) {
        // SAFETY: start + 16 ≤ len, inside both slices; the gather and the scatter touch
        // only the lanes whose entry is not padding, each inside `dst` (the caller's contract).
        unsafe {
            let at = _mm512_loadu_si512(entries.as_ptr().add(start).cast());
            let inside = _mm512_cmpneq_epi32_mask(at, padding);
            let old = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), inside, at, dst.as_ptr());
            let sum = _mm512_add_ps(old, _mm512_loadu_ps(values.as_ptr().add(start)));
            _mm512_mask_i32scatter_ps::<4>(dst.as_mut_ptr(), inside, at, sum);
        }
    }
    full
}

/// [`SourceTable::read`] through windows: each vector of sixteen entries takes the 64 pixels of
/// its window, picks its values out of them with two two-register permutes and a blend, and
/// zeroes the padding lanes. The window's pixels are `held` (a plane that fits one window,
/// already in registers: every window's base is then 0) or loaded (the lanes inside the
/// plane). Returns how many values it wrote: one vector per window.
///
/// # Safety
/// The CPU must have AVX-512F; `windows` must be those of `entries` ([`windows`]) for a plane
/// of `src.len()` pixels, every entry padding or inside it, and `held` that plane's one window
/// ([`load4`] of `lanes_inside(plane, 0)`) where given.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn read_windows_avx512f(
    src: &[f32],
    entries: &[u32],
    windows: &[Window],
    held: Option<[std::arch::x86_64::__m512; 4]>,
    dst: &mut [f32],
) -> usize {
    use std::arch::x86_64::{
        _mm512_cmpge_epu32_mask, _mm512_cmpneq_epi32_mask, _mm512_loadu_si512, _mm512_mask_blend_ps,
        _mm512_maskz_mov_ps, _mm512_permutex2var_ps, _mm512_set1_epi32, _mm512_storeu_ps, _mm512_sub_epi32,
    };
    let full = windows.len() * LANES;
    assert!(
        full <= entries.len() && full <= dst.len(),
        "source table: windows beyond the row"
    );
    let padding = _mm512_set1_epi32(PADDING as i32);
    let upper_half = _mm512_set1_epi32(2 * LANES as i32);
    for (w, window) in windows.iter().enumerate() {
        let start = w * LANES;
        // SAFETY: start + 16 ≤ full, inside `entries` and `dst`; a window's loads read only the
        // lanes of `loads`, which lie inside `src` (made so by `windows`), from a pointer
        // computed with wrapping arithmetic so that a window reaching past the plane forms no
        // out-of-bounds reference.
        unsafe {
            let at = _mm512_loadu_si512(entries.as_ptr().add(start).cast());
            let inside = _mm512_cmpneq_epi32_mask(at, padding);
            let (v, offsets) = match held {
                Some(held) => (held, at),
                None => (
                    load4(src.as_ptr().wrapping_add(window.base as usize), window.loads),
                    _mm512_sub_epi32(at, _mm512_set1_epi32(window.base as i32)),
                ),
            };
            let low = _mm512_permutex2var_ps(v[0], offsets, v[1]);
            let high = _mm512_permutex2var_ps(v[2], offsets, v[3]);
            let picked = _mm512_mask_blend_ps(_mm512_cmpge_epu32_mask(offsets, upper_half), low, high);
            _mm512_storeu_ps(dst.as_mut_ptr().add(start), _mm512_maskz_mov_ps(inside, picked));
        }
    }
    full
}

/// [`SourceTable::add`] through windows: for each of a window's four vectors of pixels that
/// some entry names, the values are permuted onto their pixels' lanes and added there alone
/// (a masked load, add and store), so every pixel gets the one value that names it, added as
/// one value at a time would. Returns how many values it added: one vector per window.
///
/// # Safety
/// The CPU must have AVX-512F; `windows` must be those of a row of at least as many entries
/// as `values` has lanes covered, for a plane of `dst.len()` pixels ([`windows`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn add_windows_avx512f(values: &[f32], windows: &[Window], dst: &mut [f32]) -> usize {
    use std::arch::x86_64::{
        _mm512_loadu_ps, _mm512_loadu_si512, _mm512_mask_add_ps, _mm512_mask_storeu_ps,
        _mm512_maskz_loadu_ps, _mm512_permutexvar_ps,
    };
    let full = windows.len() * LANES;
    assert!(full <= values.len(), "source table: windows beyond the row");
    for (w, window) in windows.iter().enumerate() {
        // SAFETY: w·16 + 16 ≤ full ≤ values.len(); every lane of `hits` names a pixel inside
        // `dst` (made so by `windows`), and only those lanes are loaded and stored, through a
        // pointer computed with wrapping arithmetic.
        unsafe {
            let row = _mm512_loadu_ps(values.as_ptr().add(w * LANES));
            let to = dst.as_mut_ptr().wrapping_add(window.base as usize);
            for k in 0..4 {
                let hits = window.hits[k];
                if hits == 0 {
                    continue;
                }
                let at = to.wrapping_add(k * LANES);
                let lanes = _mm512_loadu_si512(window.lane_of[k].as_ptr().cast());
                let moved = _mm512_permutexvar_ps(lanes, row);
                let old = _mm512_maskz_loadu_ps(hits, at);
                _mm512_mask_storeu_ps(at, hits, _mm512_mask_add_ps(old, hits, old, moved));
            }
        }
    }
    full
}

/// The lanes of the four vectors from `base` that lie inside a plane of `plane` values.
fn lanes_inside(plane: usize, base: usize) -> [u16; 4] {
    std::array::from_fn(|k| {
        let valid = plane.saturating_sub(base + k * LANES).min(LANES);
        ((1u32 << valid) - 1) as u16
    })
}

/// [`SourceTable::read_image`] through the windows, with the loops over planes and taps inside
/// one AVX-512 function (per row, the calls' own overhead was a third of the reads on 4×4
/// outputs). A plane that fits one window is loaded once and every tap permutes from the same
/// four registers; larger planes load each window.
///
/// # Safety
/// The CPU must have AVX-512F; `windows` must be `table`'s ([`windows`]), with every entry
/// padding or inside a plane, and `matrix` must hold the rows `SourceTable::planes` checks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn read_image_windows_avx512f(
    table: &SourceTable,
    windows: &[Window],
    image: &[f32],
    matrix: &mut [f32],
    stride: usize,
    offset: usize,
) {
    let (plane, cols, taps) = (table.plane, table.cols, table.taps());
    for (c, src) in image.chunks_exact(plane).enumerate() {
        // SAFETY: the masks keep the loads inside the plane.
        let held = if plane <= WINDOW {
            Some(unsafe { load4(src.as_ptr(), lanes_inside(plane, 0)) })
        } else {
            None
        };
        for tap in 0..taps {
            let entries = table.row(tap);
            let at_row = (c * taps + tap) * stride + offset;
            let out = &mut matrix[at_row..at_row + cols];
            // SAFETY: the caller's contract, and `held` is the plane's one window where given.
            let done =
                unsafe { read_windows_avx512f(src, entries, table.row_windows(windows, tap), held, out) };
            read_one_by_one(src, &entries[done..], &mut out[done..]);
        }
    }
}

/// The four vectors from `from`, each lane outside `masks` zero (and not read). A function, not
/// a closure: a closure does not take on its caller's target features, and its loads were
/// calls.
///
/// # Safety
/// The CPU must have AVX-512F, and every lane in `masks` must be readable.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn load4(from: *const f32, masks: [u16; 4]) -> [std::arch::x86_64::__m512; 4] {
    use std::arch::x86_64::_mm512_maskz_loadu_ps;
    // SAFETY: the caller's contract; the pointers are computed with wrapping arithmetic.
    unsafe {
        [
            _mm512_maskz_loadu_ps(masks[0], from),
            _mm512_maskz_loadu_ps(masks[1], from.wrapping_add(LANES)),
            _mm512_maskz_loadu_ps(masks[2], from.wrapping_add(2 * LANES)),
            _mm512_maskz_loadu_ps(masks[3], from.wrapping_add(3 * LANES)),
        ]
    }
}

/// [`SourceTable::add_image`] for planes that fit one window and rows without a partial vector:
/// each plane is loaded into four registers once, every tap's values are permuted onto their
/// pixels and added there in registers, tap after tap, and the plane is stored once.
///
/// # Safety
/// As [`read_image_windows_avx512f`], and the plane must fit one window (all bases 0) and
/// `cols` be a multiple of 16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn add_whole_planes_avx512f(
    table: &SourceTable,
    windows: &[Window],
    matrix: &[f32],
    stride: usize,
    offset: usize,
    image: &mut [f32],
) {
    use std::arch::x86_64::{
        _mm512_loadu_ps, _mm512_loadu_si512, _mm512_mask_add_ps, _mm512_mask_storeu_ps, _mm512_permutexvar_ps,
    };
    let (plane, cols, taps) = (table.plane, table.cols, table.taps());
    assert!(
        plane <= WINDOW && cols.is_multiple_of(LANES),
        "source table: not whole planes"
    );
    let masks = lanes_inside(plane, 0);
    for (c, dst) in image.chunks_exact_mut(plane).enumerate() {
        // SAFETY: the masks keep every load and store inside the plane.
        let mut sums = unsafe { load4(dst.as_ptr(), masks) };
        for tap in 0..taps {
            let at_row = (c * taps + tap) * stride + offset;
            let values = &matrix[at_row..at_row + cols];
            for (w, window) in table.row_windows(windows, tap).iter().enumerate() {
                // SAFETY: w·16 + 16 ≤ cols = values.len().
                let row = unsafe { _mm512_loadu_ps(values.as_ptr().add(w * LANES)) };
                for (k, sum) in sums.iter_mut().enumerate() {
                    let hits = window.hits[k];
                    if hits != 0 {
                        // SAFETY: `lane_of[k]` is 16 values.
                        let lanes = unsafe { _mm512_loadu_si512(window.lane_of[k].as_ptr().cast()) };
                        *sum = _mm512_mask_add_ps(*sum, hits, *sum, _mm512_permutexvar_ps(lanes, row));
                    }
                }
            }
        }
        for (k, sum) in sums.into_iter().enumerate() {
            // SAFETY: as the loads above.
            unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr().wrapping_add(k * LANES), masks[k], sum) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use rand::{Rng, SeedableRng};

    /// A table of `rows` rows of `cols` distinct-per-row entries inside a plane of `plane`
    /// pixels or padding, each row's entries within `spread` pixels of its first inside one.
    fn random_table(rng: &mut impl Rng, rows: usize, cols: usize, plane: usize, spread: usize) -> Vec<u32> {
        let mut entries = Vec::with_capacity(rows * cols);
        for _ in 0..rows {
            for vector in 0..cols.div_ceil(LANES) {
                let lanes = LANES.min(cols - vector * LANES);
                let base = rng.random_range(0..=plane - spread);
                let mut pixels: Vec<usize> = (base..base + spread).collect();
                for _ in 0..lanes {
                    let pick = rng.random_range(0..pixels.len());
                    let at = pixels.swap_remove(pick);
                    entries.push(if rng.random_range(0..4) == 0 {
                        PADDING
                    } else {
                        at as u32
                    });
                }
            }
        }
        entries
    }

    /// Every form reads the same values (the plane's value, or zero for padding) and adds the
    /// same sums to the last bit, on rows with and without a partial last vector, on windows
    /// that reach past the plane's end, and on a table too spread out for windows.
    #[test]
    fn every_form_reads_and_adds_as_one_value_at_a_time() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for (cols, plane, spread) in [
            (5, 80, 20),
            (16, 16, 16),
            (37, 80, 40),
            (64, 64, 64),
            (64, 256, 63),
            (64, 256, 200),
        ] {
            let rows = 3;
            let entries = random_table(&mut rng, rows, cols, plane, spread);
            let src: Vec<f32> = (0..plane).map(|_| rng.random_range(-1.0..1.0)).collect();
            let plain = SourceTable::with_choice(entries.clone(), cols, plane, Choice::OneByOne);
            let mut forms = vec![SourceTable::new(entries.clone(), cols, plane)];
            #[cfg(target_arch = "x86_64")]
            forms.push(SourceTable::with_choice(
                entries.clone(),
                cols,
                plane,
                Choice::Gather,
            ));
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                let windows = matches!(forms[0].form, Form::Windows(_));
                assert_eq!(
                    windows,
                    spread <= WINDOW,
                    "windows wherever the entries allow them"
                );
            }
            for tap in 0..rows {
                let mut want = vec![f32::NAN; cols];
                plain.read(tap, &src, &mut want);
                for (&v, &at) in want.iter().zip(plain.row(tap)) {
                    assert_eq!(v, src.get(at as usize).copied().unwrap_or(0.0));
                }
                let values: Vec<f32> = (0..cols).map(|_| rng.random_range(-1.0..1.0)).collect();
                let mut sums = src.clone();
                plain.add(tap, &values, &mut sums);
                let mut by_hand = src.clone();
                for (&v, &at) in values.iter().zip(plain.row(tap)) {
                    if at != PADDING {
                        by_hand[at as usize] += v;
                    }
                }
                assert_eq!(sums, by_hand);
                for form in &forms {
                    let mut got = vec![f32::NAN; cols];
                    form.read(tap, &src, &mut got);
                    assert_eq!(got, want, "{:?}: {cols} entries read", form.form);
                    let mut got = src.clone();
                    form.add(tap, &values, &mut got);
                    assert_eq!(got, sums, "{:?}: {cols} entries added", form.form);
                }
            }
        }
    }

    /// Whole images (several planes, every tap) read and added back alike by every form, with
    /// the rows at a stride and an offset as in a side-by-side column matrix: planes that fit
    /// one window with and without a partial last vector, and larger planes.
    #[test]
    fn every_form_reads_and_adds_whole_images_alike() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        for (cols, plane, spread) in [
            (16, 64, 64),
            (32, 48, 48),
            (37, 64, 64),
            (64, 256, 48),
            (20, 100, 60),
        ] {
            let (taps, planes, stride, offset) = (3, 2, cols * 3 + 5, cols + 2);
            let entries = random_table(&mut rng, taps, cols, plane, spread);
            let image: Vec<f32> = (0..planes * plane).map(|_| rng.random_range(-1.0..1.0)).collect();
            let matrix_len = (planes * taps - 1) * stride + offset + cols;
            let plain = SourceTable::with_choice(entries.clone(), cols, plane, Choice::OneByOne);
            let mut want = vec![f32::NAN; matrix_len];
            plain.read_image(&image, &mut want, stride, offset);
            let values: Vec<f32> = (0..matrix_len).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mut sums = image.clone();
            plain.add_image(&values, stride, offset, &mut sums);
            for c in 0..planes {
                for tap in 0..taps {
                    let at = (c * taps + tap) * stride + offset;
                    let mut row = vec![f32::NAN; cols];
                    plain.read(tap, &image[c * plane..(c + 1) * plane], &mut row);
                    assert_eq!(&want[at..at + cols], &row[..], "plane {c} tap {tap}");
                }
            }
            let mut forms = vec![SourceTable::new(entries.clone(), cols, plane)];
            #[cfg(target_arch = "x86_64")]
            forms.push(SourceTable::with_choice(
                entries.clone(),
                cols,
                plane,
                Choice::Gather,
            ));
            for form in &forms {
                let mut got = vec![f32::NAN; matrix_len];
                form.read_image(&image, &mut got, stride, offset);
                let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{:?}: {cols} of a {plane}-pixel plane read", form.form);
                let mut got = image.clone();
                form.add_image(&values, stride, offset, &mut got);
                assert_eq!(
                    got, sums,
                    "{:?}: {cols} of a {plane}-pixel plane added",
                    form.form
                );
            }
        }
    }

    /// An entry outside the plane (a bug in a table) never reaches a vector form.
    #[test]
    fn an_entry_outside_the_plane_is_read_one_value_at_a_time() {
        let table = SourceTable::new(vec![3, 80], 2, 80);
        assert!(matches!(table.form, Form::OneByOne));
        let mut dst = [f32::NAN; 2];
        table.read(0, &[1.0; 80], &mut dst);
        assert_eq!(dst, [1.0, 0.0]);
    }
}
