//! The search gate: searches run on the blocking pool at most `slots` at a
//! time, and when they queue, the engine's [`FairQueue`] picks which
//! tenant's search runs next (least served first), so one tenant's flood
//! cannot starve the others.

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::engine::FairQueue;

#[derive(Debug)]
pub(crate) struct SearchGate {
    queue: Mutex<FairQueue<oneshot::Sender<()>>>,
}

/// A place in the gate: a running slot once granted. Dropping it frees the
/// slot, or, if it was still waiting, gives up its turn.
struct Ticket<'a> {
    gate: &'a SearchGate,
    waiting: Option<oneshot::Receiver<()>>,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        match self.waiting.take() {
            None => self.gate.release(),
            Some(mut rx) => {
                // Cancelled while queued: if the turn already came, pass it
                // on; if it comes later, the failed send passes it on.
                rx.close();
                if rx.try_recv().is_ok() {
                    self.gate.release();
                }
            }
        }
    }
}

impl SearchGate {
    pub(crate) fn new(slots: usize) -> Self {
        SearchGate {
            queue: Mutex::new(FairQueue::new(slots)),
        }
    }

    /// Runs `f` on the blocking pool once the gate gives `tenant` a slot;
    /// `cost` is the work charged to it (the search's ef).
    pub(crate) async fn search<T: Send + 'static>(
        &self,
        tenant: u64,
        cost: u64,
        f: impl FnOnce() -> crate::engine::Result<T> + Send + 'static,
    ) -> Result<T, tonic::Status> {
        let (tx, rx) = oneshot::channel();
        let now = self.queue.lock().arrive(tenant, cost, tx).is_some();
        let mut ticket = Ticket {
            gate: self,
            waiting: (!now).then_some(rx),
        };
        if let Some(rx) = ticket.waiting.as_mut() {
            if rx.await.is_err() {
                // The sender went away without a turn (only if the queue
                // itself was dropped): no slot is held.
                return Err(tonic::Status::unavailable("the server is shutting down"));
            }
            ticket.waiting = None;
        }
        let result = super::blocking(f, super::status::Plane::Data).await;
        drop(ticket);
        result
    }

    /// Frees a slot and hands it to the next waiting search whose caller
    /// is still there.
    fn release(&self) {
        let mut queue = self.queue.lock();
        while let Some(next) = queue.finish() {
            if next.send(()).is_ok() {
                break;
            }
        }
    }
}
