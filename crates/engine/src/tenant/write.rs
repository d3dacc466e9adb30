//! The write path: upsert and delete. Each write takes the writer lock,
//! commits to the column family, then updates the graph and the table.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bulkhead_storage::{PointWrite, StoredPoint};

use super::{Tenant, WriterState};
use crate::error::Result;
use crate::filter::Filter;
use crate::point::{PointInput, validate_batch};
use crate::request::check_ids;
use crate::table::LivePoint;
use crate::work::Work;

impl Tenant {
    /// Inserts or replaces points. The batch is applied whole or not at all;
    /// it is durable when this returns.
    pub fn upsert(&self, points: &[PointInput]) -> Result<()> {
        self.life.check_writable()?;
        let payload_bytes = validate_batch(&self.spec, points)?;
        let mut writer = self.writer.lock();
        self.life.check_writable()?;
        self.check_quotas(points, &payload_bytes)?;
        let sizes: Vec<u32> = payload_bytes.iter().map(|p| p.len() as u32).collect();
        let first = writer.next_internal;
        let writes: Vec<PointWrite> = points
            .iter()
            .zip(payload_bytes)
            .enumerate()
            .map(|(i, (p, payload))| PointWrite::Put {
                id: p.id.clone(),
                point: StoredPoint {
                    internal_id: first + i as u64,
                    vector: p.vector.clone(),
                    payload,
                },
                text: p.text.clone(),
            })
            .collect();
        let next = first + points.len() as u64;
        self.store.commit(&writes, next)?;
        writer.next_internal = next;
        let live: Vec<(u64, LivePoint)> = points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let point = LivePoint {
                    id: p.id.as_str().into(),
                    vector: p.vector.as_slice().into(),
                    payload: Arc::new(p.payload.clone()),
                    payload_bytes: sizes[i],
                };
                (first + i as u64, point)
            })
            .collect();
        let nodes: Vec<(u64, &[f32])> = live.iter().map(|(i, p)| (*i, &p.vector[..])).collect();
        let graph = self.writable_graph(&mut writer);
        if let Some(graph) = &graph {
            graph.insert(&nodes);
        }
        drop(nodes);
        {
            let mut table = self.table.write();
            for (internal, point) in live {
                table.insert(internal, point);
            }
        }
        if graph.is_some() {
            writer.since_snapshot += points.len() as u64;
        }
        let snapshot_due = writer.since_snapshot >= self.config.snapshot_every_points;
        drop(writer);
        self.maybe_maintain(snapshot_due);
        Ok(())
    }

    /// Deletes points by id; returns how many existed.
    pub fn delete(&self, ids: &[String]) -> Result<usize> {
        self.life.check_writable()?;
        check_ids(ids)?;
        let writer = self.writer.lock();
        self.life.check_writable()?;
        let existing: Vec<String> = {
            let table = self.table.read();
            let mut seen = HashSet::new();
            ids.iter()
                .filter(|id| table.internal_id(id).is_some() && seen.insert(id.as_str()))
                .cloned()
                .collect()
        };
        self.delete_locked(&writer, existing)
    }

    /// Deletes every point that matches `filter`; returns how many.
    pub fn delete_by_filter(&self, filter: &Filter) -> Result<usize> {
        self.delete_by_filter_with(filter, &Work::new())
    }

    /// [`delete_by_filter`](Self::delete_by_filter), its payload scan
    /// counted against `work`; cancelled before it writes, it deletes
    /// nothing.
    pub fn delete_by_filter_with(&self, filter: &Filter, work: &Work) -> Result<usize> {
        self.life.check_writable()?;
        let writer = self.writer.lock();
        self.life.check_writable()?;
        let matching: Vec<String> = work
            .meter(self.table.read().iter())
            .filter(|(_, p)| filter.matches(&p.payload))
            .map(|(_, p)| p.id.to_string())
            .collect();
        work.check()?;
        self.delete_locked(&writer, matching)
    }

    fn delete_locked(&self, writer: &WriterState, ids: Vec<String>) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let writes: Vec<PointWrite> = ids
            .iter()
            .map(|id| PointWrite::Delete { id: id.clone() })
            .collect();
        self.store.commit(&writes, writer.next_internal)?;
        let mut table = self.table.write();
        for id in &ids {
            table.remove(id);
        }
        drop(table);
        self.maybe_maintain(false);
        Ok(ids.len())
    }

    /// Checks, before a batch's texts are embedded, that its new ids fit
    /// the tenant's points quota: a batch the write would refuse never
    /// costs the encoder anything. (The write checks again, exactly, under
    /// the writer lock.)
    pub(crate) fn check_points_quota(&self, points: &[PointInput]) -> Result<()> {
        let quotas = self.limits.quotas();
        if quotas.max_points == 0 {
            return Ok(());
        }
        let table = self.table.read();
        let ids: HashSet<&str> = points.iter().map(|p| p.id.as_str()).collect();
        let added = ids.iter().filter(|id| table.by_id(id).is_none()).count() as u64;
        let before = table.len() as u64;
        let payload = table.payload_bytes();
        self.limits
            .check_size(before, before + added, payload, payload)
    }

    /// Checks that a batch keeps the tenant within its point and payload
    /// quotas. Called with the writer lock held, so the table cannot change
    /// between this check and the batch.
    fn check_quotas(&self, points: &[PointInput], payload_bytes: &[Vec<u8>]) -> Result<()> {
        let q = self.limits.quotas();
        if q.max_points == 0 && q.max_payload_bytes == 0 {
            return Ok(());
        }
        let table = self.table.read();
        // The last occurrence of an id in the batch is the one that stays.
        let mut last = HashMap::new();
        for (i, p) in points.iter().enumerate() {
            last.insert(p.id.as_str(), i);
        }
        let mut added = 0u64;
        let mut payload = table.payload_bytes();
        for (id, &i) in &last {
            match table.by_id(id) {
                Some(old) => payload -= u64::from(old.payload_bytes),
                None => added += 1,
            }
            payload += payload_bytes[i].len() as u64;
        }
        let before = table.len() as u64;
        self.limits
            .check_size(before, before + added, table.payload_bytes(), payload)
    }
}
