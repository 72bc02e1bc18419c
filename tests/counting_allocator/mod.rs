//! A global allocator that counts allocations, shared by the allocation tests.
//!
//! It forwards every call to the system allocator. While counting is on, it counts each
//! allocation twice over: once for the thread that made it and once in a total for all threads.
//! Each test binary installs it with
//! `#[global_allocator] static GLOBAL: CountingAllocator = CountingAllocator;`.
//!
//! Counting on all threads sees the matrix products' pool threads too, so a binary that uses
//! [`allocations_on_all_threads`] must contain a single test: a second test running in parallel
//! would add its own allocations to the count.

// Each test binary uses only some of these functions.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The counting allocator; install it as the test binary's global allocator.
pub struct CountingAllocator;

thread_local! {
    static THREAD_COUNTING: Cell<bool> = const { Cell::new(false) };
    static THREAD_ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

static ALL_COUNTING: AtomicBool = AtomicBool::new(false);
static ALL_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn note_allocation() {
    // `try_with` fails only while a thread's locals are being destroyed; nothing is counted then.
    if THREAD_COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = THREAD_ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
    }
    if ALL_COUNTING.load(Ordering::Relaxed) {
        ALL_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator. Counting only touches
// const-initialized thread-locals without destructors and two atomics, none of which allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Returns the number of allocations `work` makes on the calling thread.
pub fn allocations_on_this_thread(work: impl FnOnce()) -> usize {
    THREAD_ALLOCATIONS.with(|count| count.set(0));
    THREAD_COUNTING.with(|flag| flag.set(true));
    work();
    THREAD_COUNTING.with(|flag| flag.set(false));
    THREAD_ALLOCATIONS.with(Cell::get)
}

/// Returns the number of allocations made on any thread while `work` runs.
pub fn allocations_on_all_threads(work: impl FnOnce()) -> usize {
    ALL_ALLOCATIONS.store(0, Ordering::SeqCst);
    ALL_COUNTING.store(true, Ordering::SeqCst);
    work();
    ALL_COUNTING.store(false, Ordering::SeqCst);
    ALL_ALLOCATIONS.load(Ordering::SeqCst)
}
