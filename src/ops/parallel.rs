//! How the convolution kernels share a batch among threads: per image, and sums over images
//! in a fixed order, so that results never depend on the thread count.

use std::ops::Range;

use rayon::prelude::*;

use super::gemm::Parallelism;
use super::scratch::with_scratch;

/// Partial sums that a sum over a batch (a weight gradient) is split into, whatever the
/// thread count: images are added in a fixed order, within each partial sum and then the
/// partial sums one after another, so the result never depends on how many threads ran it.
const PARTIAL_SUMS: usize = 8;

/// `Σ_b` of what `f(b, acc, scratch, first, parallelism)` accumulates into a buffer of
/// `acc_len` (overwriting it when `first`): [`sum_over_groups`] one image at a time.
pub(crate) fn sum_over_images(
    batch: usize,
    acc_len: usize,
    scratch_len: usize,
    f: impl Fn(usize, &mut [f32], &mut [f32], bool, Parallelism) + Sync,
) -> Vec<f32> {
    sum_over_groups(
        batch,
        1,
        acc_len,
        scratch_len,
        |images, acc, scratch, first, par| f(images.start, acc, scratch, first, par),
    )
}

/// The sum over a batch of what `f(images, acc, scratch, first, parallelism)` accumulates
/// into a buffer of `acc_len` (overwriting it when `first`) for consecutive images: the batch
/// is cut into at most [`PARTIAL_SUMS`] contiguous shares that depend only on its size, each
/// share into groups of at most `group` images, and each share summed into its own buffer
/// (shares in parallel, each with a scratch buffer of `scratch_len`; threads beyond the number
/// of shares go to the matrix products), then the shares are added in order.
pub(crate) fn sum_over_groups(
    batch: usize,
    group: usize,
    acc_len: usize,
    scratch_len: usize,
    f: impl Fn(Range<usize>, &mut [f32], &mut [f32], bool, Parallelism) + Sync,
) -> Vec<f32> {
    let share = batch.div_ceil(PARTIAL_SUMS).max(1);
    let shares = batch.div_ceil(share);
    let group = group.max(1);
    let threads = rayon::current_num_threads();
    let inner = if shares >= threads {
        Parallelism::None
    } else {
        Parallelism::Rayon(threads.div_ceil(shares.max(1)))
    };
    let partial: Vec<Vec<f32>> = (0..shares)
        .into_par_iter()
        .map(|s| {
            let mut acc = vec![0f32; acc_len];
            with_scratch(scratch_len, |scratch| {
                let end = ((s + 1) * share).min(batch);
                for (i, start) in (s * share..end).step_by(group).enumerate() {
                    f(start..(start + group).min(end), &mut acc, scratch, i == 0, inner);
                }
            });
            acc
        })
        .collect();
    let mut partial = partial.into_iter();
    let mut sum = partial.next().unwrap_or_else(|| vec![0f32; acc_len]);
    for p in partial {
        for (t, v) in sum.iter_mut().zip(p) {
            *t += v;
        }
    }
    sum
}

/// Calls `f(b, out_b, scratch, parallelism)` for every image `b` of `batch` laid out in
/// `out`: [`each_group`] one image at a time.
pub(crate) fn each_image<T: Send>(
    out: &mut [T],
    batch: usize,
    scratch_len: usize,
    f: impl Fn(usize, &mut [T], &mut [f32], Parallelism) + Sync,
) {
    each_group(out, batch, 1, scratch_len, |images, out_b, scratch, par| {
        f(images.start, out_b, scratch, par)
    })
}

/// Calls `f(images, out_images, scratch, parallelism)` for consecutive groups of at most
/// `group` images of `batch` laid out in `out` (the last group may be smaller), with the
/// thread's scratch buffer of `scratch_len` (contents unspecified): groups in parallel when
/// there are at least as many as threads, otherwise one after another with a parallel
/// product. `out` holds values (`f32`) or memory for them (`MaybeUninit<f32>`). The groups
/// depend on the batch and `group` only, never on the thread count.
pub(crate) fn each_group<T: Send>(
    out: &mut [T],
    batch: usize,
    group: usize,
    scratch_len: usize,
    f: impl Fn(Range<usize>, &mut [T], &mut [f32], Parallelism) + Sync,
) {
    if batch == 0 || out.is_empty() {
        return;
    }
    let group = group.clamp(1, batch);
    let per_group = out.len() / batch * group;
    let images = |g: usize| g * group..((g + 1) * group).min(batch);
    let threads = rayon::current_num_threads();
    if batch.div_ceil(group) < threads {
        with_scratch(scratch_len, |scratch| {
            for (g, out_g) in out.chunks_mut(per_group).enumerate() {
                f(images(g), out_g, scratch, Parallelism::Rayon(threads));
            }
        });
        return;
    }
    out.par_chunks_mut(per_group).enumerate().for_each(|(g, out_g)| {
        with_scratch(scratch_len, |scratch| {
            f(images(g), out_g, scratch, Parallelism::None)
        })
    });
}
