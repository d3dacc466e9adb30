//! Fault injection (the idea of redb's FuzzerBackend): storage can be told
//! to fail its Nth write or sync from now, once or until cleared, so tests
//! can show that a failed write is reported, loses nothing acknowledged,
//! never panics, and that the node recovers when the fault clears.
//!
//! The checks sit where the storage makes data durable: a tenant's batch
//! commit (its synced WAL write), tenant create and drop, and each file
//! write and fsync of a graph snapshot. Without an injector configured
//! (`StorageOptions::faults`, which the server never sets) nothing fails.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::{Result, StorageError};

#[derive(Debug)]
pub struct FaultInjector {
    /// Writes and syncs checked so far.
    ops: AtomicU64,
    /// The op number from which ops fail (u64::MAX: none).
    fail_from: AtomicU64,
    /// Fail only the one op at `fail_from`.
    once: AtomicBool,
    /// Panic instead of failing (a bug, not an I/O error).
    panic: AtomicBool,
    injected: AtomicU64,
}

impl Default for FaultInjector {
    fn default() -> Self {
        FaultInjector {
            ops: AtomicU64::new(0),
            fail_from: AtomicU64::new(u64::MAX),
            once: AtomicBool::new(false),
            panic: AtomicBool::new(false),
            injected: AtomicU64::new(0),
        }
    }
}

impl FaultInjector {
    /// The `n`th write or sync from now (1: the next) fails, and every one
    /// after it until [`clear`](Self::clear).
    pub fn fail_from(&self, n: u64) {
        self.once.store(false, Ordering::SeqCst);
        self.panic.store(false, Ordering::SeqCst);
        self.arm(n);
    }

    /// Only the `n`th write or sync from now fails.
    pub fn fail_once(&self, n: u64) {
        self.once.store(true, Ordering::SeqCst);
        self.panic.store(false, Ordering::SeqCst);
        self.arm(n);
    }

    /// The `n`th write or sync from now panics, once: the way a bug in
    /// storage or a library under it would end the operation.
    pub fn panic_once(&self, n: u64) {
        self.once.store(true, Ordering::SeqCst);
        self.panic.store(true, Ordering::SeqCst);
        self.arm(n);
    }

    fn arm(&self, n: u64) {
        let now = self.ops.load(Ordering::SeqCst);
        self.fail_from.store(now + n.max(1), Ordering::SeqCst);
    }

    /// No more faults.
    pub fn clear(&self) {
        self.fail_from.store(u64::MAX, Ordering::SeqCst);
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    /// Counts one write or sync and fails it if it is due.
    pub(crate) fn check(&self, what: &str) -> Result<()> {
        let op = self.ops.fetch_add(1, Ordering::SeqCst) + 1;
        let from = self.fail_from.load(Ordering::SeqCst);
        let due = if self.once.load(Ordering::SeqCst) {
            op == from
        } else {
            op >= from
        };
        if !due {
            return Ok(());
        }
        self.injected.fetch_add(1, Ordering::SeqCst);
        if self.panic.load(Ordering::SeqCst) {
            panic!("injected panic in {what}");
        }
        Err(StorageError::io(
            what,
            std::io::Error::other("injected fault"),
        ))
    }
}

/// Checks `faults`, if any.
pub(crate) fn check(faults: Option<&std::sync::Arc<FaultInjector>>, what: &str) -> Result<()> {
    faults.map_or(Ok(()), |f| f.check(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nth_op_fails_once_or_until_cleared() {
        let f = FaultInjector::default();
        f.check("w").unwrap();
        f.fail_once(2);
        f.check("w").unwrap();
        assert!(f.check("w").is_err());
        f.check("w").unwrap();
        f.fail_from(1);
        assert!(f.check("w").is_err());
        assert!(f.check("w").is_err());
        f.clear();
        f.check("w").unwrap();
        assert_eq!(f.injected(), 3);
    }
}
