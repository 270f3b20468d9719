//! Output buffers that a kernel writes in full, allocated without zero-filling them first.
//!
//! Every kernel's output is a fresh vector that the kernel overwrites: zero-filling it first
//! is a pass over memory that does nothing (measured: 10 % of the 64×64 lean discriminator's
//! forward pass). The kernels write through `MaybeUninit` slices instead, and the functions
//! here that write a whole slice hand back the same memory as initialised values.

use std::mem::MaybeUninit;

/// A vector of `len` values that `write` writes before the vector exists.
///
/// # Safety
/// `write` must write every element of the slice it is given (or panic).
pub(crate) unsafe fn written_vec(len: usize, write: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    write(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: the caller guarantees that `write` wrote each of the first `len` values.
    unsafe { v.set_len(len) };
    v
}

/// Writes `value` into every element of `dst` and returns it as initialised values.
pub(crate) fn fill(dst: &mut [MaybeUninit<f32>], value: f32) -> &mut [f32] {
    for d in dst.iter_mut() {
        d.write(value);
    }
    // SAFETY: every element was written just above.
    unsafe { assume_written(dst) }
}

/// `dst` as initialised values.
///
/// # Safety
/// Every element of `dst` must have been written.
pub(crate) unsafe fn assume_written(dst: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and the caller guarantees that each
    // element holds a value.
    unsafe { &mut *(dst as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_vectors_hold_what_was_written() {
        // SAFETY: the closure writes every element.
        let v = unsafe {
            written_vec(5, |dst| {
                for (i, d) in dst.iter_mut().enumerate() {
                    d.write(i as f32 * 2.0);
                }
            })
        };
        assert_eq!(v, [0.0, 2.0, 4.0, 6.0, 8.0]);
        // SAFETY: `fill` writes every element.
        let zeros = unsafe {
            written_vec(3, |dst| {
                fill(dst, 0.5);
            })
        };
        assert_eq!(zeros, [0.5; 3]);
    }
}
