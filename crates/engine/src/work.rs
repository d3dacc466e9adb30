//! The work one request does, seen from outside while it runs: counted, so
//! that the server's fair queue charges a tenant for what its requests
//! really cost (points scanned, payloads evaluated, distances computed)
//! rather than a guess made before they ran; and stoppable, so that a
//! request whose caller went away stops at its next check instead of
//! running to the end on a worker nobody waits for.
//!
//! Long loops (a filter over every payload, an exact scan) run through
//! [`Work::meter`], which counts what they touch and ends them early once
//! the work is cancelled; the read then returns [`EngineError::Cancelled`]
//! instead of a partial answer.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::{EngineError, Result};

/// How many items a metered loop takes between two looks at the
/// cancellation flag: about 10-50 µs of payload filtering.
const CHECK_EVERY: u64 = 1024;

/// What a metered loop calls at each check with the work's units so far:
/// the server's admission, which may lend a worker to another tenant's
/// request meanwhile (see `src/api/admission.rs`).
pub type Checkpoint = Box<dyn Fn(u64) + Send + Sync>;

/// One request's work: its cost so far and whether its caller still waits.
#[derive(Default)]
pub struct Work {
    cancelled: AtomicBool,
    units: AtomicU64,
    checkpoint: Option<Checkpoint>,
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Work")
            .field("cancelled", &self.is_cancelled())
            .field("units", &self.units())
            .finish_non_exhaustive()
    }
}

impl Work {
    pub fn new() -> Work {
        Work::default()
    }

    /// Work whose metered loops call `checkpoint` at each check (every
    /// 1,024 items) with the units done so far.
    pub fn with_checkpoint(checkpoint: Checkpoint) -> Work {
        Work {
            checkpoint: Some(checkpoint),
            ..Work::default()
        }
    }

    /// Asks the work to stop at its next check (its caller went away).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// The work done so far, in units of one point touched: a point read,
    /// written or scanned, a payload evaluated, a distance computed.
    pub fn units(&self) -> u64 {
        self.units.load(Ordering::Relaxed)
    }

    /// Counts `units` more: the points a batch writes, the ids a get
    /// reads (work whose size the caller knows without a loop to meter).
    pub fn add(&self, units: u64) {
        self.units.fetch_add(units, Ordering::Relaxed);
    }

    /// `Err(Cancelled)` once the work was cancelled.
    pub(crate) fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(EngineError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// `items`, counted one unit each, ending early once the work is
    /// cancelled: a caller that consumed it must [`check`](Self::check)
    /// before it trusts what it got.
    pub fn meter<I: Iterator>(&self, items: I) -> Metered<'_, I> {
        Metered {
            work: self,
            items,
            taken: 0,
        }
    }
}

/// An iterator counted against a [`Work`]; see [`Work::meter`].
pub struct Metered<'w, I> {
    work: &'w Work,
    items: I,
    taken: u64,
}

impl<I: Iterator> Iterator for Metered<'_, I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        if self.taken.is_multiple_of(CHECK_EVERY) {
            if self.taken > 0
                && let Some(checkpoint) = &self.work.checkpoint
            {
                checkpoint(self.work.units() + self.taken);
            }
            if self.work.is_cancelled() {
                return None;
            }
        }
        let item = self.items.next()?;
        self.taken += 1;
        Some(item)
    }
}

impl<I> Drop for Metered<'_, I> {
    fn drop(&mut self) {
        self.work.add(self.taken);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metered_loop_counts_what_it_took_and_stops_once_cancelled() {
        let work = Work::new();
        assert_eq!(work.meter(0..5_000).count(), 5_000);
        assert_eq!(work.units(), 5_000);
        work.check().unwrap();
        work.cancel();
        // Stops at its first look at the flag.
        assert_eq!(work.meter(0..5_000).count(), 0);
        assert!(matches!(work.check(), Err(EngineError::Cancelled)));
        // Cancelled in the middle: stops within one check interval.
        let work = Work::new();
        let taken = work
            .meter(0..100_000)
            .inspect(|&i| {
                if i == 3_000 {
                    work.cancel()
                }
            })
            .count();
        assert!(
            (3_001..=3_000 + CHECK_EVERY as usize).contains(&taken),
            "{taken}"
        );
    }
}
