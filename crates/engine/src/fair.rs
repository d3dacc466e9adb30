//! Fair scheduling of search work across tenants: the virtual token counter
//! of "Fairness in Serving Large Language Models" (Sheng et al., OSDI 2024).
//!
//! A fixed number of searches run at once. When all slots are busy, requests
//! wait in one queue per tenant, and a freed slot goes to the backlogged
//! tenant that has been served the least work (its counter is the lowest);
//! serving charges the request's cost to its tenant's counter. A tenant that
//! returns after idling is lifted to the lowest counter among the backlogged
//! tenants, so it cannot bank idle time and then starve the others.
//!
//! A request is charged an estimate when it is served and may be charged
//! the measured rest when it ends ([`FairQueue::charge_more`]).
//!
//! This is the queue's logic only, without threads or timers; the server
//! wraps it around the blocking pool (`api::admission`).

use std::collections::{HashMap, VecDeque};

/// The search queue. `W` is what wakes a waiting request.
#[derive(Debug)]
pub struct FairQueue<W> {
    slots: usize,
    running: usize,
    /// Work served per tenant (by incarnation), in cost units.
    counters: HashMap<u64, u64>,
    /// Waiting requests per backlogged tenant: (waker, cost), oldest first.
    waiting: HashMap<u64, VecDeque<(W, u64)>>,
    /// The counter of the tenant served last: where a tenant that returns
    /// when nobody is backlogged starts.
    floor: u64,
}

impl<W> FairQueue<W> {
    /// A queue running at most `slots` requests at once (at least 1).
    pub fn new(slots: usize) -> Self {
        FairQueue {
            slots: slots.max(1),
            running: 0,
            counters: HashMap::new(),
            waiting: HashMap::new(),
            floor: 0,
        }
    }

    /// A request of `tenant` costing `cost`: `Some(waker)` if it runs now
    /// (a slot was free and nobody waits), `None` if it was queued. A queued
    /// request runs when [`finish`](Self::finish) hands back its waker.
    pub fn arrive(&mut self, tenant: u64, cost: u64, waker: W) -> Option<W> {
        if !self.waiting.contains_key(&tenant) {
            // Returning after idling: lifted to the least-served backlogged
            // tenant (or the last served one), never left below it.
            let lift = self
                .waiting
                .keys()
                .filter_map(|t| self.counters.get(t))
                .min()
                .copied()
                .unwrap_or(self.floor);
            let counter = self.counters.entry(tenant).or_insert(lift);
            *counter = (*counter).max(lift);
        }
        if self.running < self.slots && self.waiting.is_empty() {
            self.running += 1;
            self.charge(tenant, cost);
            return Some(waker);
        }
        self.waiting
            .entry(tenant)
            .or_default()
            .push_back((waker, cost));
        None
    }

    /// A running request is done: returns the waker of the request that
    /// takes its slot, if any waits. A waker whose request went away (its
    /// caller gave up) must be answered with another `finish`.
    pub fn finish(&mut self) -> Option<W> {
        self.running = self.running.saturating_sub(1);
        let next = self.next()?;
        self.running += 1;
        Some(next)
    }

    /// Requests waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.waiting.values().map(VecDeque::len).sum()
    }

    /// Requests of `tenant` waiting for a slot.
    pub fn waiting_of(&self, tenant: u64) -> usize {
        self.waiting.get(&tenant).map_or(0, VecDeque::len)
    }

    /// Charges `tenant` `cost` more for a request already served: the
    /// measured rest of a request charged an estimate when it started.
    pub fn charge_more(&mut self, tenant: u64, cost: u64) {
        let counter = self.counters.entry(tenant).or_insert(self.floor);
        *counter = counter.saturating_add(cost);
    }

    /// Whether a running request of `tenant` owes its slot to another
    /// tenant: one waits that has been served less.
    pub fn owes_turn(&self, tenant: u64) -> bool {
        let own = self.counters.get(&tenant).copied().unwrap_or(self.floor);
        self.waiting
            .keys()
            .any(|t| *t != tenant && self.counters.get(t).copied().unwrap_or(0) < own)
    }

    /// A running request of `tenant` lends a slot: the waiting request of
    /// another tenant that has been served the least is returned, charged
    /// (the caller starts it on a slot beyond the limit, and keeps count of
    /// it). None when no other tenant waits.
    pub fn lend(&mut self, tenant: u64) -> Option<W> {
        self.next_of(|t| t != tenant)
    }

    /// The least-served backlogged tenant's oldest request, charged.
    fn next(&mut self) -> Option<W> {
        self.next_of(|_| true)
    }

    /// The oldest request of the least-served backlogged tenant that
    /// `eligible` accepts, charged.
    fn next_of(&mut self, eligible: impl Fn(u64) -> bool) -> Option<W> {
        let tenant = self
            .waiting
            .keys()
            .filter(|&&t| eligible(t))
            .map(|&t| (self.counters.get(&t).copied().unwrap_or(0), t))
            .min()?
            .1;
        let queue = self.waiting.get_mut(&tenant)?;
        let (waker, cost) = queue.pop_front()?;
        if queue.is_empty() {
            self.waiting.remove(&tenant);
        }
        self.charge(tenant, cost);
        Some(waker)
    }

    fn charge(&mut self, tenant: u64, cost: u64) {
        let counter = self.counters.entry(tenant).or_insert(self.floor);
        *counter = counter.saturating_add(cost);
        self.floor = *counter;
        // Counters at or below the floor carry nothing a lift would not
        // give back: forget idle ones so the map stays as small as the set
        // of recently busy tenants.
        if self.counters.len() > 4 * (self.waiting.len() + self.slots) + 64 {
            let floor = self.floor;
            let waiting = &self.waiting;
            self.counters
                .retain(|t, c| *c > floor || waiting.contains_key(t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `rounds` slot hand-overs with every tenant's queue kept full
    /// and returns how many requests each tenant was served.
    fn serve(
        queue: &mut FairQueue<u64>,
        backlog: &[(u64, u64)],
        per_tenant: usize,
        rounds: usize,
    ) -> HashMap<u64, usize> {
        for &(tenant, cost) in backlog {
            for _ in 0..per_tenant {
                // The first ones run at once and hold the slots.
                let _ = queue.arrive(tenant, cost, tenant);
            }
        }
        let mut served = HashMap::new();
        for _ in 0..rounds {
            let Some(tenant) = queue.finish() else { break };
            *served.entry(tenant).or_insert(0) += 1;
            // Keep the tenant backlogged, as a flooding client would.
            let cost = backlog.iter().find(|b| b.0 == tenant).map_or(1, |b| b.1);
            assert!(queue.arrive(tenant, cost, tenant).is_none());
        }
        served
    }

    #[test]
    fn backlogged_tenants_share_slots_equally_however_much_they_send() {
        let mut queue = FairQueue::new(2);
        // Two slots taken by a flooding tenant before anyone else arrives.
        assert_eq!(queue.arrive(1, 1, 1), Some(1));
        assert_eq!(queue.arrive(1, 1, 1), Some(1));
        // Tenant 1 queues 1,000 requests, tenants 2 and 3 ten each.
        for _ in 0..1_000 {
            assert!(queue.arrive(1, 1, 1).is_none());
        }
        for _ in 0..10 {
            assert!(queue.arrive(2, 1, 2).is_none());
            assert!(queue.arrive(3, 1, 3).is_none());
        }
        let mut served: HashMap<u64, usize> = HashMap::new();
        for _ in 0..30 {
            let t = queue.finish().unwrap();
            *served.entry(t).or_insert(0) += 1;
            assert!(queue.arrive(t, 1, t).is_none(), "kept backlogged");
        }
        // 30 slots among three backlogged tenants: 10 each (tenant 1 was
        // already charged for its 2 running requests, so it gets 8-10).
        assert_eq!(served[&2], 10, "{served:?}");
        assert_eq!(served[&3], 10, "{served:?}");
        assert!((8..=10).contains(&served[&1]), "{served:?}");
    }

    #[test]
    fn a_running_tenant_lends_only_to_one_served_less() {
        let mut queue = FairQueue::new(1);
        assert_eq!(queue.arrive(1, 1, 1), Some(1));
        assert!(!queue.owes_turn(1), "nobody waits");
        assert!(queue.arrive(1, 1, 10).is_none());
        assert!(!queue.owes_turn(1), "only its own requests wait");
        assert_eq!(queue.lend(1), None);
        assert!(queue.arrive(2, 1, 2).is_none());
        queue.charge_more(1, 5_000);
        assert!(queue.owes_turn(1));
        assert_eq!(queue.lend(1), Some(2), "another tenant's, not its own");
        assert!(!queue.owes_turn(1));
        // Lending frees no slot: a newcomer still waits.
        assert!(queue.arrive(3, 1, 3).is_none());
    }

    #[test]
    fn shares_follow_cost_not_request_count() {
        let mut queue = FairQueue::new(1);
        // Tenant 1's searches cost 4 units (a larger ef), tenant 2's one.
        let served = serve(&mut queue, &[(1, 4), (2, 1)], 50, 500);
        let work1 = served[&1] * 4;
        let work2 = served[&2];
        assert!(
            work1.abs_diff(work2) <= 8,
            "work served {work1} vs {work2} ({served:?})"
        );
    }

    #[test]
    fn work_charged_after_it_ran_shifts_the_shares() {
        let mut queue = FairQueue::new(1);
        assert_eq!(queue.arrive(1, 1, 1), Some(1));
        for _ in 0..10 {
            assert!(queue.arrive(1, 1, 1).is_none());
            assert!(queue.arrive(2, 1, 2).is_none());
        }
        // Every request is charged 1 when it starts; tenant 1's turn out
        // to cost 9 more each (a filtered scan), tenant 2's nothing more.
        let mut order = Vec::new();
        let mut running = 1;
        for _ in 0..10 {
            queue.charge_more(running, if running == 1 { 9 } else { 0 });
            running = queue.finish().unwrap();
            order.push(running);
        }
        let ones = order.iter().filter(|&&t| t == 1).count();
        assert!(ones <= 2, "tenant 1 was served {ones} of 10: {order:?}");
    }

    #[test]
    fn a_returning_tenant_is_lifted_and_cannot_bank_idle_time() {
        let mut queue = FairQueue::new(1);
        assert_eq!(queue.arrive(1, 1, 1), Some(1));
        // Tenant 1 is served alone for a long time.
        for _ in 0..100 {
            assert!(queue.arrive(1, 1, 1).is_none());
            assert_eq!(queue.finish(), Some(1));
        }
        // Tenant 2 arrives: lifted to tenant 1's counter, so the two now
        // alternate instead of tenant 2 taking 100 slots in a row.
        for _ in 0..10 {
            assert!(queue.arrive(2, 1, 2).is_none());
            assert!(queue.arrive(1, 1, 1).is_none());
        }
        let order: Vec<u64> = (0..10).filter_map(|_| queue.finish()).collect();
        let twos = order.iter().filter(|&&t| t == 2).count();
        assert!((4..=6).contains(&twos), "{order:?}");
    }

    #[test]
    fn an_idle_queue_runs_requests_at_once_up_to_its_slots() {
        let mut queue = FairQueue::new(2);
        assert_eq!(queue.arrive(7, 1, 'a'), Some('a'));
        assert_eq!(queue.arrive(8, 1, 'b'), Some('b'));
        assert_eq!(queue.arrive(7, 1, 'c'), None);
        assert_eq!(queue.waiting(), 1);
        assert_eq!(queue.finish(), Some('c'));
        assert_eq!(queue.finish(), None);
        assert_eq!(queue.finish(), None);
        assert_eq!(queue.arrive(9, 1, 'd'), Some('d'));
    }
}
