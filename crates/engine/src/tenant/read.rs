//! The read path: get, count, scroll and search. Reads never take the
//! writer lock; an evicted load still reads what it had.

use super::Tenant;
use crate::cursor;
use crate::error::{EngineError, Result};
use crate::filter::Filter;
use crate::planner::{self, Query, ScanPolicy};
use crate::point::{Point, ScoredPoint, check_vector};
use crate::request::{
    MAX_EF, MAX_K, MAX_RESPONSE_BYTES, MAX_SCROLL_LIMIT, ScrollPage, ScrollRequest, SearchRequest,
    check_ids,
};
use crate::table::LivePoint;
use crate::work::Work;

impl Tenant {
    /// The points with these ids, in request order; missing ids are skipped.
    pub fn get(&self, ids: &[String], with_payload: bool, with_vector: bool) -> Result<Vec<Point>> {
        self.life.check_readable()?;
        check_ids(ids)?;
        let table = self.table.read();
        let mut budget = ResponseBudget::new();
        let mut points = Vec::new();
        for p in ids.iter().filter_map(|id| table.by_id(id)) {
            let point = self.to_point(p, with_payload, with_vector)?;
            if !budget.take(&point, p) {
                return Err(budget.refusal(points.len(), "ask for fewer ids"));
            }
            points.push(point);
        }
        Ok(points)
    }

    /// Number of points, or of points matching `filter`.
    pub fn count(&self, filter: Option<&Filter>) -> Result<usize> {
        self.count_with(filter, &Work::new())
    }

    /// [`count`](Self::count), its payload scan counted against `work`
    /// and stopped once `work` is cancelled.
    pub fn count_with(&self, filter: Option<&Filter>, work: &Work) -> Result<usize> {
        self.life.check_readable()?;
        let table = self.table.read();
        let count = match filter {
            None => table.len(),
            Some(f) => work
                .meter(table.iter())
                .filter(|(_, p)| f.matches(&p.payload))
                .count(),
        };
        work.check()?;
        Ok(count)
    }

    /// Points in id order, `limit` at a time.
    pub fn scroll(
        &self,
        cursor: Option<&str>,
        limit: usize,
        filter: Option<&Filter>,
        with_payload: bool,
        with_vector: bool,
    ) -> Result<ScrollPage> {
        let page = ScrollRequest {
            cursor,
            limit,
            filter,
            with_payload,
            with_vector,
        };
        self.scroll_with(&page, &Work::new())
    }

    /// [`scroll`](Self::scroll), the points it passes over counted against
    /// `work` and the scan stopped once `work` is cancelled.
    pub fn scroll_with(&self, page: &ScrollRequest<'_>, work: &Work) -> Result<ScrollPage> {
        let ScrollRequest {
            cursor,
            limit,
            filter,
            with_payload,
            with_vector,
        } = *page;
        self.life.check_readable()?;
        if !(1..=MAX_SCROLL_LIMIT).contains(&limit) {
            return Err(EngineError::invalid(format!(
                "limit must be between 1 and {MAX_SCROLL_LIMIT}, got {limit}"
            )));
        }
        let after = cursor
            .map(|c| cursor::decode(&self.cursor_key, c))
            .transpose()?;
        let table = self.table.read();
        let mut candidates = work
            .meter(table.iter_from(after.as_deref()))
            .filter(|p| filter.is_none_or(|f| f.matches(&p.payload)))
            .peekable();
        let mut budget = ResponseBudget::new();
        let mut points = Vec::new();
        let mut last: Option<&LivePoint> = None;
        while points.len() < limit {
            let Some(p) = candidates.peek().copied() else {
                break;
            };
            let point = self.to_point(p, with_payload, with_vector)?;
            // A page ends where the response budget does (never empty).
            if !budget.take(&point, p) && !points.is_empty() {
                break;
            }
            candidates.next();
            points.push(point);
            last = Some(p);
        }
        let next_cursor = match (candidates.peek(), last) {
            (Some(_), Some(last)) => Some(cursor::encode(&self.cursor_key, &last.id)),
            _ => None,
        };
        drop(candidates);
        // A cancelled scan ended early: its page would look like the last.
        work.check()?;
        Ok(ScrollPage {
            points,
            next_cursor,
        })
    }

    /// The k nearest points to the query vector, among those matching the
    /// filter. Never returns fewer than min(k, number of matching points).
    pub fn search(&self, request: &SearchRequest) -> Result<Vec<ScoredPoint>> {
        self.search_with(request, &Work::new())
    }

    /// [`search`](Self::search), its distances and payload evaluations
    /// counted against `work`, and its scans stopped once `work` is
    /// cancelled.
    pub fn search_with(&self, request: &SearchRequest, work: &Work) -> Result<Vec<ScoredPoint>> {
        self.life.check_readable()?;
        check_vector(&self.spec, &request.vector)
            .map_err(|r| EngineError::invalid(format!("query {r}")))?;
        let k = request.k;
        if !(1..=MAX_K).contains(&k) {
            return Err(EngineError::invalid(format!(
                "k must be between 1 and {MAX_K}, got {k}"
            )));
        }
        let ef = request.effective_ef();
        if ef > MAX_EF {
            return Err(EngineError::invalid(format!(
                "ef must be at most {MAX_EF}, got {ef}"
            )));
        }
        let graph = self.index.read().loaded().cloned();
        let table = self.table.read();
        let query = Query {
            metric: self.spec.metric,
            vector: &request.vector,
            k,
            ef,
        };
        let hits = planner::search(
            &table,
            graph.as_deref(),
            &ScanPolicy::of(&self.config),
            &query,
            request.filter.as_ref(),
            work,
        );
        work.check()?;
        let mut budget = ResponseBudget::new();
        let mut scored = Vec::with_capacity(hits.len());
        for p in hits
            .into_iter()
            .filter_map(|(internal, _)| table.get(internal))
        {
            let point = self.to_point(p, request.with_payload, request.with_vector)?;
            if !budget.take(&point, p) {
                return Err(budget.refusal(scored.len(), "ask for a smaller k"));
            }
            scored.push(ScoredPoint {
                id: point.id,
                score: query.metric.score(query.vector, &p.vector),
                payload: point.payload,
                vector: point.vector,
                text: point.text,
            });
        }
        Ok(scored)
    }

    fn to_point(&self, p: &LivePoint, with_payload: bool, with_vector: bool) -> Result<Point> {
        Ok(Point {
            id: p.id.to_string(),
            payload: with_payload.then(|| (*p.payload).clone()),
            vector: with_vector.then(|| p.vector.to_vec()),
            text: self.text_of(p, with_payload)?,
        })
    }

    /// A point's text comes with its payload; it is read from storage, not
    /// kept in memory.
    fn text_of(&self, p: &LivePoint, with_payload: bool) -> Result<Option<String>> {
        if with_payload {
            Ok(self.store.text(&p.id)?)
        } else {
            Ok(None)
        }
    }
}

/// Bytes of a response counted as it is built (see [`MAX_RESPONSE_BYTES`]).
struct ResponseBudget {
    used: usize,
}

impl ResponseBudget {
    fn new() -> Self {
        ResponseBudget { used: 0 }
    }

    /// Counts `point` (built from `live`); false once the response would be
    /// over the limit.
    fn take(&mut self, point: &Point, live: &LivePoint) -> bool {
        let payload = if point.payload.is_some() {
            live.payload_bytes as usize
        } else {
            0
        };
        let vector = point.vector.as_ref().map_or(0, |v| 4 * v.len());
        let text = point.text.as_ref().map_or(0, String::len);
        self.used += point.id.len() + payload + vector + text;
        self.used <= MAX_RESPONSE_BYTES
    }

    fn refusal(&self, built: usize, fix: &str) -> EngineError {
        EngineError::invalid(format!(
            "the response would be over {} MiB after {built} points; {fix}, or leave out payloads or vectors",
            MAX_RESPONSE_BYTES >> 20
        ))
    }
}
