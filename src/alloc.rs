//! Allocator tuning for training loops.
//!
//! candle allocates a fresh buffer for every tensor it computes. With glibc's defaults, large
//! freed buffers go back to the operating system and the next allocation faults in new pages
//! that the kernel must zero: in a profile of the lean training step that was a quarter of
//! the time. [`keep_freed_memory`] keeps freed memory in the process instead.

/// Asks glibc's allocator to keep freed memory for reuse: buffers up to 32 MiB come from the
/// heap rather than fresh mappings, the heap is not trimmed back to the OS, and it grows in
/// 512 MiB steps. Resident memory stays at its peak; training steps get faster (2.75 s instead
/// of 3.24 s for a lean step at batch 64 on a 2-core CPU, `cargo bench --bench train_step`). Call it once at the start of a
/// program. Returns whether the settings were applied; on other allocators and platforms it
/// does nothing and returns false.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
                && libc::mallopt(libc::M_TOP_PAD, 512 << 20) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
