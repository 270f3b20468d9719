//! A safe f32 matrix product on slices, over the `gemm` crate (the one candle uses).

pub(crate) use ::gemm::Parallelism;

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
    let (m, k) = lhs.shape();
    let (k2, n) = rhs.shape();
    assert_eq!(k, k2, "matmul: inner dimensions {k} and {k2}");
    assert_eq!(dst.len(), m * n, "matmul: destination of {m}×{n}");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    let (lhs_cs, lhs_rs) = lhs.strides();
    let (rhs_cs, rhs_rs) = rhs.strides();
    // SAFETY: the shapes were checked against the slice lengths above, so every index the
    // product reads (row·rs + col·cs below the shape) lies inside `lhs.data`/`rhs.data`, and
    // every index it writes lies inside `dst`, which is borrowed mutably and so aliases
    // neither input.
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
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
        }
    }
}
