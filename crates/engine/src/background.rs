//! The node's background workers: one bounded pool that runs every
//! tenant's maintenance (graph rebuilds, freezes, snapshots). A tenant has
//! at most one job queued or running (its `Maintenance` claim), a job is
//! one step of work, and a tenant with more to do queues again behind the
//! others: tenants take turns, so one tenant's stream of rebuilds cannot
//! hold back another's freeze, and the node never runs more maintenance at
//! once than it has workers for, however many tenants are busy.
//!
//! A job that panics is caught here and reported; its worker goes on.
//! Workers start on demand and stop after a while without work, so an
//! idle registry holds no threads.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// How long a worker without work waits before it stops.
const IDLE_STOP: Duration = Duration::from_secs(10);

/// One step of one tenant's maintenance.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// The pool. Cloning shares it.
#[derive(Debug, Clone)]
pub(crate) struct Background {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    ready: Condvar,
}

struct State {
    jobs: VecDeque<Job>,
    /// Workers alive, and how many of them wait for a job.
    workers: usize,
    idle: usize,
    max_workers: usize,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("jobs", &self.jobs.len())
            .field("workers", &self.workers)
            .field("max_workers", &self.max_workers)
            .finish()
    }
}

impl Background {
    /// A pool of at most `max_workers` threads (at least one).
    pub(crate) fn new(max_workers: usize) -> Background {
        Background {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    jobs: VecDeque::new(),
                    workers: 0,
                    idle: 0,
                    max_workers: max_workers.max(1),
                }),
                ready: Condvar::new(),
            }),
        }
    }

    /// Queues `job` behind those already waiting. Err(job) when no worker
    /// could be started and none is alive to run it.
    pub(crate) fn submit(&self, job: Job) -> Result<(), Job> {
        let mut state = self.shared.state.lock();
        if state.idle > 0 {
            state.jobs.push_back(job);
            self.shared.ready.notify_one();
            return Ok(());
        }
        if state.workers < state.max_workers {
            let shared = Arc::clone(&self.shared);
            let spawned = std::thread::Builder::new()
                .name("bulkhead-maintain".into())
                .spawn(move || work(&shared));
            match spawned {
                Ok(_) => state.workers += 1,
                Err(e) if state.workers == 0 => {
                    tracing::warn!(error = %e, "cannot start a background worker");
                    return Err(job);
                }
                Err(e) => tracing::warn!(error = %e, "cannot start another background worker"),
            }
        }
        state.jobs.push_back(job);
        Ok(())
    }
}

/// A worker's life: jobs in order until none comes for [`IDLE_STOP`].
fn work(shared: &Shared) {
    let mut state = shared.state.lock();
    loop {
        if let Some(job) = state.jobs.pop_front() {
            drop(state);
            if catch_unwind(AssertUnwindSafe(job)).is_err() {
                tracing::error!("a background job panicked; its worker goes on");
            }
            state = shared.state.lock();
            continue;
        }
        state.idle += 1;
        let timed_out = shared.ready.wait_for(&mut state, IDLE_STOP).timed_out();
        state.idle -= 1;
        if timed_out && state.jobs.is_empty() {
            state.workers -= 1;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn jobs_run_in_turn_on_at_most_the_pool_workers_and_a_panic_stops_none() {
        let pool = Background::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (done, finished) = mpsc::channel();
        for i in 0..20 {
            let (running, most, done) = (Arc::clone(&running), Arc::clone(&most), done.clone());
            let job: Job = Box::new(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                running.fetch_sub(1, Ordering::SeqCst);
                done.send(i).unwrap();
                assert!(i != 3, "job 3 fails");
            });
            assert!(pool.submit(job).is_ok());
        }
        let mut seen: Vec<i32> = (0..20).map(|_| finished.recv().unwrap()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= 2, "{most:?} ran at once");
        assert!(pool.shared.state.lock().workers <= 2);
    }

    #[test]
    fn the_one_worker_goes_on_after_a_job_panics() {
        let pool = Background::new(1);
        let (done, finished) = mpsc::channel();
        assert!(pool.submit(Box::new(|| panic!("a failing job"))).is_ok());
        assert!(
            pool.submit(Box::new(move || done.send(()).unwrap()))
                .is_ok()
        );
        finished.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(pool.shared.state.lock().workers, 1);
    }
}
