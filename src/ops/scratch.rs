//! Per-thread scratch buffers that outlive one operation, so that column matrices are not
//! allocated and zero-filled afresh for every convolution of every step.

use std::cell::RefCell;

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's scratch buffer of `len` values. The contents are whatever the
/// previous user left: callers write before they read. The buffer grows to the largest `len`
/// asked for on the thread and is kept for the thread's lifetime. A nested call on the same
/// thread (which the kernels never make) gets a fresh buffer instead of failing.
pub(super) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            if buffer.len() < len {
                buffer.resize(len, 0.0);
            }
            f(&mut buffer[..len])
        }
        Err(_) => f(&mut vec![0f32; len]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_nested_calls_get_their_own() {
        let first = with_scratch(8, |s| {
            s.fill(3.0);
            s.as_ptr() as usize
        });
        let (again, nested_distinct) = with_scratch(4, |s| {
            let outer = s.as_ptr() as usize;
            let inner = with_scratch(4, |t| t.as_ptr() as usize);
            (outer, inner != outer)
        });
        assert_eq!(first, again, "the thread's buffer is reused");
        assert!(nested_distinct, "a nested call must not alias the outer buffer");
    }
}
