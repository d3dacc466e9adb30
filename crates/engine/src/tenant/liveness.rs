//! Whether one load of a tenant may still be read and written.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::{EngineError, Result};

/// The life of one load of a tenant. A load starts `Live`; the registry
/// moves it out of memory (`Evicted`: readers keep what it had, writes go
/// to the next load) or drops the tenant (`Dropped`: nothing more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Life {
    Live = 0,
    Evicted = 1,
    Dropped = 2,
}

#[derive(Debug)]
pub(crate) struct Liveness(AtomicU8);

impl Liveness {
    pub(crate) fn new() -> Liveness {
        Liveness(AtomicU8::new(Life::Live as u8))
    }

    pub(crate) fn get(&self) -> Life {
        match self.0.load(Ordering::Acquire) {
            0 => Life::Live,
            1 => Life::Evicted,
            _ => Life::Dropped,
        }
    }

    /// For reads: the tenant is not dropped.
    pub(crate) fn check_readable(&self) -> Result<()> {
        match self.get() {
            Life::Dropped => Err(EngineError::TenantNotFound),
            Life::Live | Life::Evicted => Ok(()),
        }
    }

    /// For writes and background work: the load is live (an evicted
    /// load's writes would race the tenant's next load).
    pub(crate) fn check_writable(&self) -> Result<()> {
        match self.get() {
            Life::Live => Ok(()),
            Life::Evicted => Err(EngineError::TryAgain),
            Life::Dropped => Err(EngineError::TenantNotFound),
        }
    }

    fn set(&self, from: Life, to: Life) -> bool {
        self.0
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Live -> Evicted; false if the load was not live.
    pub(crate) fn evict(&self) -> bool {
        self.set(Life::Live, Life::Evicted)
    }

    /// Evicted -> Live: an eviction that could not finish.
    pub(crate) fn unevict(&self) {
        self.set(Life::Evicted, Life::Live);
    }

    /// Any -> Dropped.
    pub(crate) fn drop_tenant(&self) {
        self.0.store(Life::Dropped as u8, Ordering::Release);
    }

    /// Dropped -> Live: a drop whose erase failed before its commit point.
    pub(crate) fn undrop(&self) {
        self.set(Life::Dropped, Life::Live);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evicted_load_reads_but_refuses_writes_and_a_dropped_one_refuses_both() {
        let life = Liveness::new();
        assert!(life.check_writable().is_ok());
        assert!(life.evict());
        assert!(!life.evict(), "evicted once");
        assert!(life.check_readable().is_ok());
        assert!(matches!(life.check_writable(), Err(EngineError::TryAgain)));
        life.unevict();
        assert_eq!(life.get(), Life::Live);
        life.drop_tenant();
        assert!(!life.evict(), "a dropped load is not evicted");
        assert!(matches!(
            life.check_readable(),
            Err(EngineError::TenantNotFound)
        ));
        assert!(matches!(
            life.check_writable(),
            Err(EngineError::TenantNotFound)
        ));
        life.undrop();
        assert_eq!(life.get(), Life::Live);
    }
}
