//! A safe f32 matrix product on slices, over the `gemm` crate (the one candle uses).

use std::mem::MaybeUninit;

pub(crate) use ::gemm::Parallelism;

use super::uninit::assume_written;

/// A row-major matrix in a slice, read as itself or as its transpose.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    /// Rows and columns as stored.
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl<'a> Mat<'a> {
    /// `data` as a `rows`×`cols` row-major matrix.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "matrix of {rows}×{cols}");
        Mat {
            data,
            rows,
            cols,
            transposed: false,
        }
    }

    /// The transpose, without moving any data.
    pub fn t(self) -> Self {
        Mat {
            transposed: !self.transposed,
            ..self
        }
    }

    /// Rows as read.
    pub fn rows(&self) -> usize {
        self.shape().0
    }

    /// Columns as read.
    pub fn cols(&self) -> usize {
        self.shape().1
    }

    /// (rows, columns) as read.
    fn shape(&self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }

    /// (column stride, row stride) as read.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (self.cols as isize, 1)
        } else {
            (1, self.cols as isize)
        }
    }
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`; `dst` is row-major with as many
/// rows as `lhs` and as many columns as `rhs`.
pub(crate) fn matmul(dst: &mut [f32], lhs: Mat, rhs: Mat, accumulate: bool, parallelism: Parallelism) {
    // SAFETY: `dst` holds `dst.len()` initialised values, which the product may read.
    unsafe { product(dst.as_mut_ptr(), dst.len(), lhs, rhs, accumulate, parallelism) }
}

/// `dst = lhs · rhs` into memory that need not hold values yet (every element is written, none
/// read); returns `dst` as values.
pub(crate) fn matmul_into<'a>(
    dst: &'a mut [MaybeUninit<f32>],
    lhs: Mat,
    rhs: Mat,
    parallelism: Parallelism,
) -> &'a mut [f32] {
    // SAFETY: `dst` is `dst.len()` writable values; without `accumulate` none is read.
    unsafe { product(dst.as_mut_ptr().cast(), dst.len(), lhs, rhs, false, parallelism) };
    // SAFETY: `product` checked that `dst` is exactly the m×n destination and wrote every
    // element of it (gemm writes `lhs · rhs` without reading the destination when told not
    // to read it, and the k = 0 case writes zeros).
    unsafe { assume_written(dst) }
}

/// The product of [`matmul`] and [`matmul_into`] into `dst_len` values at `dst`.
///
/// # Safety
/// `dst` must be valid for writes of `dst_len` values, not alias `lhs` or `rhs`, and hold
/// initialised values when `accumulate`.
unsafe fn product(
    dst: *mut f32,
    dst_len: usize,
    lhs: Mat,
    rhs: Mat,
    accumulate: bool,
    parallelism: Parallelism,
) {
    let (m, k) = lhs.shape();
    let (k2, n) = rhs.shape();
    assert_eq!(k, k2, "matmul: inner dimensions {k} and {k2}");
    assert_eq!(dst_len, m * n, "matmul: destination of {m}×{n}");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            // SAFETY: `dst` is valid for `dst_len` writes (the caller's contract).
            unsafe { std::ptr::write_bytes(dst, 0, dst_len) };
        }
        return;
    }
    let (lhs_cs, lhs_rs) = lhs.strides();
    let (rhs_cs, rhs_rs) = rhs.strides();
    // SAFETY: the shapes were checked against the slice lengths above, so every index the
    // product reads (row·rs + col·cs below the shape) lies inside `lhs.data`/`rhs.data`, and
    // every index it writes lies inside the m×n destination, which the caller guarantees is
    // writable and aliases neither input; it reads the destination only when `accumulate`.
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.data.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], (m, k): (usize, usize), b: &[f32], n: usize) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        out
    }

    fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        (0..cols * rows)
            .map(|i| a[(i % rows) * cols + i / rows])
            .collect()
    }

    #[test]
    fn products_of_transposes_and_accumulation_match_the_definition() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
        let expected = naive(&a, (m, k), &b, n);
        let at = transpose(&a, m, k);
        let bt = transpose(&b, k, n);
        for (lhs, rhs) in [
            (Mat::new(&a, m, k), Mat::new(&b, k, n)),
            (Mat::new(&at, k, m).t(), Mat::new(&b, k, n)),
            (Mat::new(&a, m, k), Mat::new(&bt, n, k).t()),
            (Mat::new(&at, k, m).t(), Mat::new(&bt, n, k).t()),
        ] {
            let mut dst = vec![1f32; m * n];
            matmul(&mut dst, lhs, rhs, false, Parallelism::None);
            for (d, e) in dst.iter().zip(&expected) {
                assert!((d - e).abs() < 1e-5);
            }
            matmul(&mut dst, lhs, rhs, true, Parallelism::Rayon(2));
            for (d, e) in dst.iter().zip(&expected) {
                assert!((d - 2.0 * e).abs() < 1e-5);
            }
            // A destination full of NaN is overwritten, never read.
            let mut fresh = vec![MaybeUninit::new(f32::NAN); m * n];
            let written = matmul_into(&mut fresh, lhs, rhs, Parallelism::None);
            for (d, e) in written.iter().zip(&expected) {
                assert!((d - e).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn every_product_path_overwrites_a_destination_it_never_reads() {
        // gemm takes different paths for a vector times a matrix, an inner dimension of 1–2
        // or 0, small destinations and large ones: each must write every element of a
        // destination full of NaN without reading it.
        for (m, k, n) in [
            (1, 9, 7),
            (7, 9, 1),
            (6, 2, 5),
            (4, 0, 3),
            (5, 7, 3),
            (40, 33, 70),
        ] {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
            let expected = naive(&a, (m, k), &b, n);
            let bt = transpose(&b, k, n);
            for rhs in [Mat::new(&b, k, n), Mat::new(&bt, n, k).t()] {
                let mut fresh = vec![MaybeUninit::new(f32::NAN); m * n];
                let written = matmul_into(&mut fresh, Mat::new(&a, m, k), rhs, Parallelism::None);
                for (d, e) in written.iter().zip(&expected) {
                    assert!((d - e).abs() < 1e-4, "{m}×{k}×{n}: {d} against {e}");
                }
            }
        }
    }
}
