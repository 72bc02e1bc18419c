//! A small thread pool for splitting one matrix product across cores without allocating.
//!
//! [`run`] splits a task into numbered chunks. The calling thread and up to `threads - 1` pool
//! workers claim chunks from a shared bitmask until none is left, and [`run`] returns when all
//! are done. A dispatch only writes a few atomics (the task is borrowed from the caller's
//! stack), so the training step can stay free of heap allocations, unlike a general-purpose
//! pool whose queues grow in blocks.
//!
//! The caller never waits for a worker to start: on a busy machine where the worker is not
//! scheduled, the caller claims every chunk itself, and it waits only for chunks a worker has
//! already claimed. Workers spin for a short while after each task, because the next product of
//! a training step usually follows within microseconds and waking a parked thread costs tens of
//! them; after [`SPIN`] without work they park.
//!
//! The pool serves one dispatch at a time. A caller that finds it busy (another thread's product,
//! or a task that itself multiplies) runs all chunks on its own thread. Either way each chunk
//! runs exactly once, so a task whose chunks write disjoint outputs gives the same result.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// Maximum number of chunks in one task.
pub(crate) const MAX_CHUNKS: usize = 64;

/// One chunk of a product: called once with each chunk index in `0..chunks`.
pub(crate) type Task<'a> = &'a (dyn Fn(usize) + Sync);

/// How long an idle worker spins before it parks. On the 2-vCPU virtual machine of
/// BENCHMARKS.md, waking parked workers slowed training by up to 40% when they parked after
/// 200 µs. With 2 ms, no worker parked within a training run.
const SPIN: Duration = Duration::from_millis(2);

/// How many times the dispatcher polls for workers to finish before it sleeps on [`Done`].
const DISPATCHER_SPINS: u32 = 1 << 11;

/// State shared by the dispatching thread and the workers.
///
/// The fields a worker reads to join a task share one cache line with `generation`, and the
/// dispatcher writes them before it bumps `generation`. A spinning worker therefore fetches
/// the whole task with the one transfer that shows it the new generation. The counters that
/// both sides update during a task sit in the next line.
#[repr(C, align(64))]
struct Shared {
    /// Bumped once per dispatch to wake spinning workers.
    generation: AtomicUsize,
    /// Points at the dispatcher's `Task` (a reference on its stack) while `open` is set.
    task: AtomicPtr<()>,
    /// Number of chunks of the current task.
    chunks: AtomicUsize,
    /// Threads taking part in the current task, the caller included.
    participants: AtomicUsize,
    /// Workers with an index below this may join the current task.
    helpers: AtomicUsize,
    /// Whether the current task accepts workers.
    open: AtomicBool,
    /// Keeps the counters below out of the dispatcher's line.
    _line: [u8; 64 - 5 * 8 - 1],
    /// Bit `c` is set once chunk `c` has been claimed.
    claimed: AtomicU64,
    /// Workers inside the current task. The dispatcher returns only when it is zero.
    joined: AtomicUsize,
    /// Flag set when a chunk panicked on a worker, so that the dispatcher panics too.
    panicked: AtomicBool,
    /// Flag set while the dispatcher sleeps on [`Done`], so that the last worker out wakes it.
    /// Without it, every dispatch would cost the worker a system call.
    dispatcher_sleeping: AtomicBool,
}

struct Worker {
    thread: Thread,
    sleeping: Arc<AtomicBool>,
}

struct Pool {
    shared: Arc<Shared>,
    workers: Mutex<Vec<Worker>>,
}

/// Wakes a dispatcher waiting for the last worker to leave a task. Its mutex guards no data:
/// it only orders the worker's notification after the dispatcher's check of `joined`.
struct Done {
    lock: Mutex<()>,
    finished: Condvar,
}

fn done() -> &'static Done {
    static DONE: Done = Done {
        lock: Mutex::new(()),
        finished: Condvar::new(),
    };
    &DONE
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        shared: Arc::new(Shared {
            task: AtomicPtr::new(std::ptr::null_mut()),
            chunks: AtomicUsize::new(0),
            claimed: AtomicU64::new(0),
            participants: AtomicUsize::new(0),
            helpers: AtomicUsize::new(0),
            open: AtomicBool::new(false),
            _line: [0; 64 - 5 * 8 - 1],
            joined: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            dispatcher_sleeping: AtomicBool::new(false),
        }),
        workers: Mutex::new(Vec::new()),
    })
}

/// Runs `task(0)`, ..., `task(chunks - 1)` on the calling thread and up to `threads - 1`
/// workers, and returns when all are done. A panic in any chunk is raised here.
///
/// Thread `t` of `T` starts with chunk `t chunks / T` and goes on upwards, so from one call to
/// the next the same thread tends to get the same chunks, and the data they read stays in its
/// core's cache.
///
/// # Panics
///
/// When `chunks` exceeds [`MAX_CHUNKS`].
pub(crate) fn run(threads: usize, chunks: usize, task: Task<'_>) {
    assert!(
        chunks <= MAX_CHUNKS,
        "{chunks} chunks, at most {MAX_CHUNKS}"
    );
    if threads <= 1 || chunks <= 1 {
        (0..chunks).for_each(task);
        return;
    }
    let pool = pool();
    let Ok(mut workers) = pool.workers.try_lock() else {
        (0..chunks).for_each(task);
        return;
    };
    while workers.len() < threads - 1 {
        match spawn_worker(&pool.shared, workers.len()) {
            Some(worker) => workers.push(worker),
            None => break,
        }
    }
    let shared = &pool.shared;
    // Workers read the task only after joining while `open` is set, and this function does not
    // return before `open` is cleared and every joined worker has left.
    let task_ref: &Task<'_> = &task;
    shared
        .task
        .store(task_ref as *const Task<'_> as *mut (), Ordering::Relaxed);
    shared.chunks.store(chunks, Ordering::Relaxed);
    // The caller's first chunk is claimed before the task opens, so that the caller starts
    // on it without touching the line of `claimed`, which the workers are fetching.
    shared.claimed.store(1, Ordering::Relaxed);
    let participants = threads.min(workers.len() + 1);
    shared.participants.store(participants, Ordering::Relaxed);
    shared.helpers.store(threads - 1, Ordering::Relaxed);
    shared.open.store(true, Ordering::SeqCst);
    shared.generation.fetch_add(1, Ordering::SeqCst);
    for worker in workers.iter().take(threads - 1) {
        if worker.sleeping.load(Ordering::SeqCst) {
            worker.thread.unpark();
        }
    }
    let own = catch_unwind(AssertUnwindSafe(|| {
        task(0);
        claim_chunks(shared, task, 0);
    }));
    shared.open.store(false, Ordering::SeqCst);
    // Poll briefly: a worker inside the task usually finishes its chunk within microseconds.
    // Then sleep, so that on a busy machine the worker (or anyone) gets this core.
    let mut spins = 0u32;
    while shared.joined.load(Ordering::SeqCst) != 0 && spins < DISPATCHER_SPINS {
        std::hint::spin_loop();
        spins += 1;
    }
    if shared.joined.load(Ordering::SeqCst) != 0 {
        // Announce the sleep before the last look at `joined`. A worker that leaves after this
        // store reads it and wakes this thread, and one that left before it shows in `joined`.
        shared.dispatcher_sleeping.store(true, Ordering::SeqCst);
        let done = done();
        let mut guard = done.lock.lock().unwrap_or_else(|e| e.into_inner());
        while shared.joined.load(Ordering::SeqCst) != 0 {
            guard = done.finished.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        drop(guard);
        shared.dispatcher_sleeping.store(false, Ordering::SeqCst);
    }
    let worker_panicked = shared.panicked.swap(false, Ordering::Relaxed);
    drop(workers);
    if let Err(payload) = own {
        resume_unwind(payload);
    }
    assert!(!worker_panicked, "a matrix-product worker thread panicked");
}

/// Runs unclaimed chunks, starting from this participant's share, until all are claimed.
fn claim_chunks(shared: &Shared, task: Task<'_>, participant: usize) {
    let chunks = shared.chunks.load(Ordering::Relaxed);
    let participants = shared.participants.load(Ordering::Relaxed).max(1);
    let start = participant * chunks / participants;
    for offset in 0..chunks {
        let chunk = (start + offset) % chunks;
        let bit = 1u64 << chunk;
        if shared.claimed.load(Ordering::Relaxed) & bit == 0
            && shared.claimed.fetch_or(bit, Ordering::Relaxed) & bit == 0
        {
            task(chunk);
        }
    }
}

fn spawn_worker(shared: &Arc<Shared>, index: usize) -> Option<Worker> {
    let sleeping = Arc::new(AtomicBool::new(false));
    // No dispatch is in flight while the caller holds the workers' lock.
    let seen = shared.generation.load(Ordering::SeqCst);
    let ready = Arc::new(AtomicBool::new(false));
    let handle = thread::Builder::new()
        .name(format!("feedforward-linalg-{}", index + 1))
        .spawn({
            let shared = Arc::clone(shared);
            let sleeping = Arc::clone(&sleeping);
            let ready = Arc::clone(&ready);
            move || {
                super::sgemm::reserve_buffers();
                ready.store(true, Ordering::Release);
                work(&shared, &sleeping, index, seen)
            }
        })
        .ok()?;
    // The worker's buffers are in place before its first task, so that its allocations all
    // happen inside this first dispatch.
    while !ready.load(Ordering::Acquire) {
        thread::yield_now();
    }
    Some(Worker {
        thread: handle.thread().clone(),
        sleeping,
    })
}

fn work(shared: &Shared, sleeping: &AtomicBool, index: usize, mut seen: usize) {
    loop {
        wait_for_dispatch(shared, sleeping, &mut seen);
        // Join first, then check that the task is still open. A dispatcher that closed it
        // before this check either counted this worker in `joined` and waits for it, or
        // returned without it. In that case this worker finds `open` cleared, or set for the
        // next task, whose pointer is then the live one, and never touches a finished task.
        shared.joined.fetch_add(1, Ordering::SeqCst);
        if shared.open.load(Ordering::SeqCst) && index < shared.helpers.load(Ordering::Relaxed) {
            // SAFETY: `open` is set and this worker is counted in `joined`, so the dispatcher
            // is inside `run` and keeps the task alive until `joined` drops to zero.
            let task = unsafe { *(shared.task.load(Ordering::Relaxed) as *const Task<'_>) };
            let participant = (index + 1) % shared.participants.load(Ordering::Relaxed).max(1);
            if catch_unwind(AssertUnwindSafe(|| claim_chunks(shared, task, participant))).is_err() {
                shared.panicked.store(true, Ordering::Relaxed);
            }
        }
        if shared.joined.fetch_sub(1, Ordering::SeqCst) == 1
            && shared.dispatcher_sleeping.load(Ordering::SeqCst)
        {
            // The last worker out wakes a sleeping dispatcher. Taking the lock orders this
            // after the dispatcher's check of `joined` if it is about to wait.
            let done = done();
            drop(done.lock.lock().unwrap_or_else(|e| e.into_inner()));
            done.finished.notify_all();
        }
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
        if !spins.is_multiple_of(256) || since.elapsed() < SPIN {
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
    fn every_chunk_runs_once() {
        for threads in 1..=4 {
            let hits: Vec<AtomicU64> = (0..3 * threads + 1).map(|_| AtomicU64::new(0)).collect();
            for _ in 0..100 {
                run(threads, hits.len(), &|t| {
                    hits[t].fetch_add(1, Ordering::Relaxed);
                });
            }
            for hit in &hits {
                assert_eq!(hit.load(Ordering::Relaxed), 100);
            }
        }
    }

    #[test]
    fn worker_takes_some_chunks() {
        let caller = thread::current().id();
        let elsewhere = AtomicU64::new(0);
        // Each chunk sleeps, so a worker gets some even when this machine is busy. A few tries,
        // because another test's product may hold the pool, and then this one runs inline.
        for _ in 0..20 {
            run(2, 8, &|_| {
                if thread::current().id() != caller {
                    elsewhere.fetch_add(1, Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(5));
            });
            if elsewhere.load(Ordering::Relaxed) > 0 {
                return;
            }
        }
        panic!("no chunk ran on a worker in 20 dispatches");
    }

    #[test]
    fn nested_dispatch_runs_inline() {
        let total = AtomicU64::new(0);
        run(2, 2, &|_| {
            run(3, 3, &|_| {
                total.fetch_add(1, Ordering::Relaxed);
            });
        });
        assert_eq!(total.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn worker_panic_reaches_the_caller() {
        let result = catch_unwind(|| {
            run(2, 8, &|t| {
                if t == 5 {
                    panic!("chunk 5 fails");
                }
            })
        });
        assert!(result.is_err());
        // The pool still works afterwards.
        let total = AtomicU64::new(0);
        run(2, 2, &|_| {
            total.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(total.load(Ordering::Relaxed), 2);
    }
}
