//! Admission: the one path by which a tenant's data-plane work reaches a
//! thread. Every Points call of a tenant (get, count, scroll, search,
//! upsert, delete, embed) runs here, on at most `workers` blocking threads
//! at once; when they are busy, requests wait in one queue per tenant and
//! the engine's [`FairQueue`] gives a freed worker to the backlogged tenant
//! that has been served the least work.
//!
//! - **Bounded**: at most `workers` requests run, and each tenant has at
//!   most `queued_per_tenant` waiting; one more is RESOURCE_EXHAUSTED with
//!   the tenant's own limit in the message (never the node's load).
//! - **Charged for what it did**: a request is charged a small estimate when
//!   it starts and the rest of its measured [`Work`] (points scanned,
//!   payloads evaluated, distances computed) when it ends, so a filtered
//!   scan costs its tenant what it cost the node.
//! - **Cancellation frees nothing that still runs**: a request whose caller
//!   goes away (RST_STREAM, deadline) while it waits is skipped when its
//!   turn comes (until then it still counts in its tenant's queue); if it
//!   was running, its work is cancelled and stops at its next check, and
//!   its worker is handed on only when the work has really stopped.
//! - **A long request lends a worker**: at each check of its metered loops
//!   (every 1,024 items) a running request is charged what it did so far,
//!   and if another tenant that has been served less is waiting, that
//!   tenant's request is started at once on a worker lent beyond the
//!   limit (at most `workers` lent at a time); the next worker to free up
//!   is not handed on but returned. So a request of another tenant waits
//!   for about 1,024 items of a scan, not for the whole scan, and shares
//!   the CPU with it meanwhile (test
//!   `a_long_request_lends_a_worker_to_another_tenant`). The long request
//!   never stops: it may hold its tenant's locks, and a request that slept
//!   holding them could wait for a worker that only requests blocked on
//!   those locks hold.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tonic::Status;

use super::status::{Plane, to_status};
use crate::engine::{FairQueue, Work};

/// What a request is charged when it starts, before its work is measured.
const START_UNITS: u64 = 1;

/// How many requests of the data plane run, and how many wait per tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Requests running at once, all tenants together.
    pub workers: usize,
    /// Requests one tenant may have waiting for a worker.
    pub queued_per_tenant: usize,
    /// Loads of cold tenants running at once, apart from the workers.
    pub loaders: usize,
}

impl Default for AdmissionLimits {
    /// One worker per CPU, 256 waiting requests per tenant, and one loader
    /// per two CPUs.
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        AdmissionLimits {
            workers: cpus,
            queued_per_tenant: 256,
            loaders: (cpus / 2).max(1),
        }
    }
}

impl AdmissionLimits {
    /// The limits of the loaders' own admission: `loaders` at once, and
    /// the same queue per tenant (a tenant waits for one load at a time).
    pub(crate) fn loading(self) -> AdmissionLimits {
        AdmissionLimits {
            workers: self.loaders,
            ..self
        }
    }
}

/// The workers' state: the fair queue of waiting requests, and the
/// workers lent beyond the limit (each returned when a worker frees up).
#[derive(Debug)]
struct Slots {
    fair: FairQueue<oneshot::Sender<()>>,
    lent: usize,
    most_lent: usize,
}

type Shared = Arc<Mutex<Slots>>;

#[derive(Debug)]
pub(crate) struct Admission {
    queue: Shared,
    queued_per_tenant: usize,
}

impl Admission {
    pub(crate) fn new(limits: AdmissionLimits) -> Self {
        Admission {
            queue: Arc::new(Mutex::new(Slots {
                fair: FairQueue::new(limits.workers),
                lent: 0,
                most_lent: limits.workers.max(1),
            })),
            queued_per_tenant: limits.queued_per_tenant.max(1),
        }
    }

    /// Requests of the tenant `key` waiting for a worker.
    pub(crate) fn waiting_of(&self, key: u64) -> usize {
        self.queue.lock().fair.waiting_of(key)
    }

    /// Runs `f` for the tenant `key` on a blocking thread once the fair
    /// queue gives it a worker. If this future is dropped while `f` runs,
    /// `f`'s [`Work`] is cancelled, and the worker stays taken until `f`
    /// returns.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        key: u64,
        f: impl FnOnce(&Work) -> crate::engine::Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        let (tx, rx) = oneshot::channel();
        let runs_now = {
            let mut queue = self.queue.lock();
            if queue.fair.waiting_of(key) >= self.queued_per_tenant {
                return Err(Status::resource_exhausted(format!(
                    "this tenant already has {} requests waiting for the server, its limit; retry when some of its requests have finished",
                    self.queued_per_tenant
                )));
            }
            queue.fair.arrive(key, START_UNITS, tx).is_some()
        };
        if !runs_now {
            let mut place = Place {
                queue: &self.queue,
                turn: Some(rx),
            };
            let granted = match place.turn.as_mut() {
                Some(turn) => turn.await.is_ok(),
                None => false,
            };
            // Either the turn came and the worker is ours now (held by
            // `worker` below), or the sender went away without one (only
            // if the queue itself was dropped) and nothing is held.
            place.turn = None;
            if !granted {
                return Err(Status::unavailable("the server is shutting down"));
            }
        }
        let worker = Worker {
            queue: Arc::clone(&self.queue),
            key,
            extra: 0,
        };
        // Units charged so far: the start estimate, then what each check
        // found done.
        let charged = Arc::new(AtomicU64::new(START_UNITS));
        let work = Arc::new(Work::with_checkpoint({
            let (queue, charged) = (Arc::clone(&self.queue), Arc::clone(&charged));
            Box::new(move |units| lend_if_owed(&queue, key, units, &charged))
        }));
        let stop = CancelOnDrop(Some(Arc::clone(&work)));
        let task = tokio::task::spawn_blocking(move || {
            let result = f(&work);
            worker.finish(work.units().saturating_sub(charged.load(Ordering::Relaxed)));
            result
        });
        let joined = task.await;
        stop.disarm();
        match joined {
            Ok(result) => result.map_err(|e| to_status(e, Plane::Data)),
            Err(join) => {
                tracing::error!(error = %join, "engine task failed");
                Err(Status::internal(
                    "the server failed while serving this request; the operation may be retried",
                ))
            }
        }
    }
}

/// At a check of a running request of `key` that has done `units`:
/// charges what it did since the last check, and if another tenant served
/// less is waiting (and fewer than `most_lent` workers are lent), starts
/// that tenant's request on a lent worker. The caller runs on.
fn lend_if_owed(queue: &Shared, key: u64, units: u64, charged: &AtomicU64) {
    let mut slots = queue.lock();
    let before = charged.load(Ordering::Relaxed);
    if units > before {
        slots.fair.charge_more(key, units - before);
        charged.store(units, Ordering::Relaxed);
    }
    if slots.lent >= slots.most_lent || !slots.fair.owes_turn(key) {
        return;
    }
    while let Some(next) = slots.fair.lend(key) {
        if next.send(()).is_ok() {
            slots.lent += 1;
            return;
        }
    }
}

/// A request waiting for a worker. Dropped while waiting (its caller went
/// away), it gives up its turn: if the turn already came it is passed on,
/// and if it comes later the failed send passes it on.
struct Place<'a> {
    queue: &'a Mutex<Slots>,
    turn: Option<oneshot::Receiver<()>>,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.turn.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                hand_on(self.queue, 0, None);
            }
        }
    }
}

/// A worker held by a running request; it moves into the blocking task,
/// so it is given back when the work ends (or unwinds), not when the
/// caller stops waiting.
struct Worker {
    queue: Shared,
    key: u64,
    /// Units charged on release beyond the start estimate.
    extra: u64,
}

impl Worker {
    /// Charges the measured work not charged yet, and hands the worker on.
    fn finish(mut self, extra: u64) {
        self.extra = extra;
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        hand_on(&self.queue, self.extra, Some(self.key));
    }
}

/// Frees a worker (after charging `extra` units to `key`'s counter):
/// returns it if one is lent, else hands it to the next waiting request
/// whose caller is still there.
fn hand_on(queue: &Mutex<Slots>, extra: u64, key: Option<u64>) {
    let mut slots = queue.lock();
    if let Some(key) = key {
        slots.fair.charge_more(key, extra);
    }
    if slots.lent > 0 {
        slots.lent -= 1;
        return;
    }
    while let Some(next) = slots.fair.finish() {
        if next.send(()).is_ok() {
            break;
        }
    }
}

/// Cancels a request's work if its caller stops waiting before it ends.
struct CancelOnDrop(Option<Arc<Work>>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(work) = self.0.take() {
            work.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    fn limits(workers: usize, queued_per_tenant: usize) -> AdmissionLimits {
        AdmissionLimits {
            workers,
            queued_per_tenant,
            loaders: 1,
        }
    }

    /// The caller of a running request goes away: its work is told to
    /// stop, and the worker is not handed to the next request until the
    /// work has stopped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_request_keeps_its_worker_until_its_work_stops() {
        let admission = Arc::new(Admission::new(limits(1, 8)));
        let (started_tx, started) = mpsc::channel::<()>();
        let (release, released) = mpsc::channel::<()>();
        let (saw_tx, saw) = mpsc::channel::<bool>();
        let first = {
            let admission = Arc::clone(&admission);
            tokio::spawn(async move {
                admission
                    .run(1, move |work| {
                        started_tx.send(()).unwrap();
                        // Runs until the test lets it go, then reports
                        // whether it was told to stop.
                        released.recv().unwrap();
                        saw_tx.send(work.is_cancelled()).unwrap();
                        Ok(())
                    })
                    .await
            })
        };
        tokio::task::spawn_blocking(move || started.recv().unwrap())
            .await
            .unwrap();
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        // The second request (another tenant) must wait: the only worker
        // is still running the first request's work.
        let second = {
            let admission = Arc::clone(&admission);
            tokio::spawn(async move { admission.run(2, |_| Ok(())).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !second.is_finished(),
            "a second request ran while the cancelled one still held the only worker"
        );
        release.send(()).unwrap();
        let cancelled = tokio::task::spawn_blocking(move || saw.recv().unwrap())
            .await
            .unwrap();
        assert!(cancelled, "the running work was not told to stop");
        second.await.unwrap().unwrap();
        assert_eq!(admission.queue.lock().fair.waiting(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_tenant_queue_is_refused_with_the_tenant_own_limit() {
        let admission = Arc::new(Admission::new(limits(1, 2)));
        let (started_tx, started) = mpsc::channel::<()>();
        let (release, released) = mpsc::channel::<()>();
        let busy = {
            let admission = Arc::clone(&admission);
            tokio::spawn(async move {
                admission
                    .run(1, move |_| {
                        started_tx.send(()).unwrap();
                        released.recv().unwrap();
                        Ok(())
                    })
                    .await
            })
        };
        tokio::task::spawn_blocking(move || started.recv().unwrap())
            .await
            .unwrap();
        let mut waiting = Vec::new();
        for _ in 0..2 {
            let admission = Arc::clone(&admission);
            waiting.push(tokio::spawn(
                async move { admission.run(1, |_| Ok(())).await },
            ));
        }
        while admission.queue.lock().fair.waiting() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let refused = tokio::time::timeout(Duration::from_secs(10), admission.run(1, |_| Ok(())))
            .await
            .expect("a request over the tenant's queue limit waited instead of being refused")
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused.message().contains("2 requests waiting"),
            "{}",
            refused.message()
        );
        // Another tenant still queues: the limit is per tenant.
        let other = {
            let admission = Arc::clone(&admission);
            tokio::spawn(async move { admission.run(2, |_| Ok(())).await })
        };
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        for w in waiting {
            w.await.unwrap().unwrap();
        }
        other.await.unwrap().unwrap();
    }

    /// One worker, busy with a long metered loop of tenant 1: a request of
    /// tenant 2 runs while the loop is still going (on a worker the loop
    /// lends at a check), not after it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_request_lends_a_worker_to_another_tenant() {
        use std::sync::atomic::AtomicBool;
        let admission = Arc::new(Admission::new(limits(1, 8)));
        let done = Arc::new(AtomicBool::new(false));
        let (started_tx, started) = mpsc::channel::<()>();
        let long = {
            let (admission, done) = (Arc::clone(&admission), Arc::clone(&done));
            tokio::spawn(async move {
                admission
                    .run(1, move |work| {
                        started_tx.send(()).unwrap();
                        // Runs until the other tenant's request is done.
                        let mut items = work.meter(0u64..);
                        while !done.load(Ordering::Acquire) {
                            items.next();
                        }
                        Ok(())
                    })
                    .await
            })
        };
        tokio::task::spawn_blocking(move || started.recv().unwrap())
            .await
            .unwrap();
        let other =
            tokio::time::timeout(Duration::from_secs(20), admission.run(2, |_| Ok("ran"))).await;
        let long_was_running = !long.is_finished();
        // Let the loop end whatever happened, or the runtime's shutdown
        // would wait for it for ever.
        done.store(true, Ordering::Release);
        let other = other.expect("tenant 2 waited for tenant 1's whole loop");
        assert_eq!(other.unwrap(), "ran");
        assert!(long_was_running);
        long.await.unwrap().unwrap();
        let slots = admission.queue.lock();
        assert_eq!((slots.fair.waiting(), slots.lent), (0, 0));
    }
}
