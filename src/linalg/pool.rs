//! A small thread pool for splitting one matrix product across cores without allocating.
//!
//! [`run`] hands the same task to `threads` threads, the caller included, and returns when all
//! of them are done. Unlike a general-purpose pool (rayon's queues grow in blocks), a dispatch
//! here only writes a few atomics: the task is borrowed from the caller's stack, so the training
//! step can stay free of heap allocations.
//!
//! Workers spin for a short while after each task, because the next product of a training step
//! usually follows within microseconds and waking a parked thread costs tens of them. After
//! [`SPIN`] without work they park until the next dispatch.
//!
//! The pool serves one dispatch at a time. A caller that finds it busy (another thread's product,
//! or a task that itself multiplies) runs its task's parts one after the other on its own thread,
//! which gives the same result: each part writes its own slice of the output.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// A part of a product: called once with each part index in `0..threads`.
pub(crate) type Task<'a> = &'a (dyn Fn(usize) + Sync);

/// How long an idle worker spins before it parks.
const SPIN: Duration = Duration::from_millis(2);

/// State shared by the dispatching thread and the workers.
struct Shared {
    /// Points at the dispatcher's `Task` (a reference on its stack) during a dispatch.
    task: AtomicPtr<()>,
    /// Number of parts of the current task; workers with a higher index only acknowledge.
    parts: AtomicUsize,
    /// Bumped once per dispatch; a worker runs when it sees a value it has not seen.
    generation: AtomicUsize,
    /// Workers that have not yet finished the current dispatch.
    pending: AtomicUsize,
    /// Set when a part panicked on a worker; the dispatcher then panics too.
    panicked: AtomicBool,
}

struct Worker {
    thread: Thread,
    sleeping: Arc<AtomicBool>,
}

struct Pool {
    shared: Arc<Shared>,
    workers: Mutex<Vec<Worker>>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        shared: Arc::new(Shared {
            task: AtomicPtr::new(std::ptr::null_mut()),
            parts: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        }),
        workers: Mutex::new(Vec::new()),
    })
}

/// Runs `task(0)`, ..., `task(threads - 1)`, part 0 on the calling thread and the others on
/// pool workers, and returns when all are done. A panic in any part is raised here.
pub(crate) fn run(threads: usize, task: Task<'_>) {
    if threads <= 1 {
        task(0);
        return;
    }
    let pool = pool();
    let Ok(mut workers) = pool.workers.try_lock() else {
        (0..threads).for_each(task);
        return;
    };
    while workers.len() < threads - 1 {
        match spawn_worker(&pool.shared, workers.len() + 1) {
            Some(worker) => workers.push(worker),
            None => break,
        }
    }
    let parts = threads.min(workers.len() + 1);
    let shared = &pool.shared;
    shared.parts.store(parts, Ordering::Relaxed);
    // The workers dereference this pointer only between the generation bump below and their
    // acknowledgement, and this function does not return before every worker acknowledged.
    let task_ref: &Task<'_> = &task;
    shared
        .task
        .store(task_ref as *const Task<'_> as *mut (), Ordering::Relaxed);
    shared.pending.store(workers.len(), Ordering::Relaxed);
    shared.generation.fetch_add(1, Ordering::SeqCst);
    for worker in workers.iter() {
        if worker.sleeping.load(Ordering::SeqCst) {
            worker.thread.unpark();
        }
    }
    // Parts without a worker (when a thread could not be spawned) run here after part 0.
    let own = catch_unwind(AssertUnwindSafe(|| {
        (0..1).chain(parts..threads).for_each(task)
    }));
    let mut spins = 0u32;
    while shared.pending.load(Ordering::Acquire) != 0 {
        spins = spins.saturating_add(1);
        if spins < 1 << 14 {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
    let worker_panicked = shared.panicked.swap(false, Ordering::Relaxed);
    drop(workers);
    if let Err(payload) = own {
        resume_unwind(payload);
    }
    assert!(!worker_panicked, "a matrix-product worker thread panicked");
}

fn spawn_worker(shared: &Arc<Shared>, index: usize) -> Option<Worker> {
    let sleeping = Arc::new(AtomicBool::new(false));
    // No dispatch is in flight while the caller holds the workers' lock.
    let seen = shared.generation.load(Ordering::SeqCst);
    let handle = thread::Builder::new()
        .name(format!("feedforward-linalg-{index}"))
        .spawn({
            let shared = Arc::clone(shared);
            let sleeping = Arc::clone(&sleeping);
            move || work(&shared, &sleeping, index, seen)
        })
        .ok()?;
    Some(Worker {
        thread: handle.thread().clone(),
        sleeping,
    })
}

fn work(shared: &Shared, sleeping: &AtomicBool, index: usize, mut seen: usize) {
    loop {
        wait_for_dispatch(shared, sleeping, &mut seen);
        if index < shared.parts.load(Ordering::Acquire) {
            // SAFETY: the dispatcher stored a pointer to a live `Task` before bumping the
            // generation and keeps it alive until `pending` reaches zero, which this worker's
            // decrement below has not yet allowed.
            let task = unsafe { *(shared.task.load(Ordering::Acquire) as *const Task<'_>) };
            if catch_unwind(AssertUnwindSafe(|| task(index))).is_err() {
                shared.panicked.store(true, Ordering::Relaxed);
            }
        }
        shared.pending.fetch_sub(1, Ordering::Release);
    }
}

/// Returns once the generation differs from `seen`, spinning first and then parking.
fn wait_for_dispatch(shared: &Shared, sleeping: &AtomicBool, seen: &mut usize) {
    let mut since = Instant::now();
    let mut spins = 0u32;
    loop {
        let generation = shared.generation.load(Ordering::Acquire);
        if generation != *seen {
            *seen = generation;
            return;
        }
        spins = spins.wrapping_add(1);
        if spins % 256 != 0 || since.elapsed() < SPIN {
            std::hint::spin_loop();
            continue;
        }
        // Announce the sleep, then look again: a dispatcher that bumped the generation before
        // seeing the flag would not unpark this thread.
        sleeping.store(true, Ordering::SeqCst);
        if shared.generation.load(Ordering::SeqCst) == *seen {
            thread::park();
        }
        sleeping.store(false, Ordering::SeqCst);
        since = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn every_part_runs_once() {
        for threads in 1..=4 {
            let hits: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(0)).collect();
            for _ in 0..100 {
                run(threads, &|t| {
                    hits[t].fetch_add(1, Ordering::Relaxed);
                });
            }
            for hit in &hits {
                assert_eq!(hit.load(Ordering::Relaxed), 100);
            }
        }
    }

    #[test]
    fn nested_dispatch_runs_inline() {
        let total = AtomicU64::new(0);
        run(2, &|_| {
            run(3, &|_| {
                total.fetch_add(1, Ordering::Relaxed);
            });
        });
        assert_eq!(total.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn worker_panic_reaches_the_caller() {
        let result = catch_unwind(|| {
            run(2, &|t| {
                if t == 1 {
                    panic!("part 1 fails");
                }
            })
        });
        assert!(result.is_err());
        // The pool still works afterwards.
        let total = AtomicU64::new(0);
        run(2, &|_| {
            total.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(total.load(Ordering::Relaxed), 2);
    }
}
