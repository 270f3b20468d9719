//! Several images' matrices side by side, so that one matrix product covers them.
//!
//! A convolution whose output plane is small (E's and Dx's 4×4 outputs, G's first sub-pixel
//! stage) has a column matrix of 16 columns per image, and gemm runs products that narrow at
//! about half its speed: on one core of an AVX-512 Xeon, 128×1152 times 1152×16 ran at
//! 85 GFLOP/s against 154 with 64 columns (`RAYON_NUM_THREADS=1 cargo bench --bench ceiling
//! -- narrow`), and the other products of E's, Dx's and G's small planes alike. The kernels
//! therefore place the column matrices of consecutive images side by side until a product has
//! at least [`MIN_PRODUCT_COLS`] columns, and split the product's columns back into images.

use std::mem::MaybeUninit;

use super::uninit::assume_written;

/// The fewest columns a product should have: with 64, gemm's speed on these shapes had
/// levelled off (measured at 16, 32, 64, 128, 256 and 512 columns).
pub(crate) const MIN_PRODUCT_COLS: usize = 64;

/// Images whose column matrices of `cols` columns each go into one product.
pub(crate) fn images_per_product(cols: usize) -> usize {
    MIN_PRODUCT_COLS.div_ceil(cols.max(1))
}

/// Matrices of `rows` × `n`, one per image one after another in `src`, side by side in `dst`
/// (`rows` × count·`n`; image `i` in columns `i·n..(i+1)·n`).
fn join_columns(src: &[f32], rows: usize, n: usize, dst: &mut [f32]) {
    let count = block_count(src.len(), dst.len(), rows * n);
    for (i, image) in src.chunks_exact(rows * n).enumerate() {
        for (r, line) in image.chunks_exact(n).enumerate() {
            let at = (r * count + i) * n;
            dst[at..at + n].copy_from_slice(line);
        }
    }
}

/// The matrices of `src` (`rows` × `n` per image, one after another) side by side: `src`
/// itself when it holds one image, else joined ([`join_columns`]) into the front of `buffer`.
pub(crate) fn side_by_side<'a>(src: &'a [f32], rows: usize, n: usize, buffer: &'a mut [f32]) -> &'a [f32] {
    if src.len() == rows * n {
        return src;
    }
    let joined = &mut buffer[..src.len()];
    join_columns(src, rows, n, joined);
    joined
}

/// The inverse of [`join_columns`]: the side-by-side `src` (`rows` × count·`n`) written into
/// `dst` as one `rows` × `n` matrix per image, one after another; returns `dst` as values.
pub(crate) fn split_columns<'a>(
    src: &[f32],
    rows: usize,
    n: usize,
    dst: &'a mut [MaybeUninit<f32>],
) -> &'a mut [f32] {
    let count = block_count(src.len(), dst.len(), rows * n);
    for (i, image) in dst.chunks_exact_mut(rows * n).enumerate() {
        for (r, line) in image.chunks_exact_mut(n).enumerate() {
            let at = (r * count + i) * n;
            for (d, &s) in line.iter_mut().zip(&src[at..at + n]) {
                d.write(s);
            }
        }
    }
    // SAFETY: `block_count` checked that `dst` is exactly `count` blocks of rows × n, and the
    // loops above wrote every element of every block.
    unsafe { assume_written(dst) }
}

/// How many blocks of `block` values two equal-sized buffers of `a` and `b` values hold;
/// panics (a kernel bug) unless they are equal and whole.
fn block_count(a: usize, b: usize, block: usize) -> usize {
    assert!(
        a == b && block > 0 && a.is_multiple_of(block),
        "side-by-side matrices: {a} and {b} values in blocks of {block}"
    );
    a / block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_side_by_side_hold_each_image_in_its_columns_and_split_back() {
        let (count, rows, n) = (3, 2, 4);
        let src: Vec<f32> = (0..count * rows * n).map(|v| v as f32).collect();
        let mut joined = vec![f32::NAN; src.len()];
        join_columns(&src, rows, n, &mut joined);
        // Row 1 of the joined matrix: row 1 of image 0, of image 1, of image 2.
        assert_eq!(
            &joined[12..24],
            &[4., 5., 6., 7., 12., 13., 14., 15., 20., 21., 22., 23.]
        );
        assert_eq!(&joined[..4], &[0., 1., 2., 3.]);
        let mut back = vec![MaybeUninit::new(f32::NAN); src.len()];
        assert_eq!(split_columns(&joined, rows, n, &mut back), &src[..]);
        let mut buffer = vec![f32::NAN; src.len() + 5];
        assert_eq!(side_by_side(&src, rows, n, &mut buffer), &joined[..]);
        // One image is its own side-by-side matrix: no copy.
        let one = &src[..rows * n];
        assert_eq!(side_by_side(one, rows, n, &mut buffer).as_ptr(), one.as_ptr());
    }

    #[test]
    fn small_planes_are_grouped_up_to_the_product_width() {
        assert_eq!(images_per_product(16), 4);
        assert_eq!(images_per_product(48), 2);
        assert_eq!(images_per_product(64), 1);
        assert_eq!(images_per_product(1024), 1);
    }
}
