//! The read path: get, count, scroll and search. Reads never take the
//! writer lock; an evicted load still reads what it had.

use super::Tenant;
use crate::cursor;
use crate::error::{EngineError, Result};
use crate::filter::Filter;
use crate::planner::{self, Query, ScanPolicy};
use crate::point::{Point, ScoredPoint, check_vector};
use crate::request::{MAX_EF, MAX_K, MAX_SCROLL_LIMIT, ScrollPage, SearchRequest, check_ids};
use crate::table::LivePoint;

impl Tenant {
    /// The points with these ids, in request order; missing ids are skipped.
    pub fn get(&self, ids: &[String], with_payload: bool, with_vector: bool) -> Result<Vec<Point>> {
        self.life.check_readable()?;
        check_ids(ids)?;
        let table = self.table.read();
        ids.iter()
            .filter_map(|id| table.by_id(id))
            .map(|p| self.to_point(p, with_payload, with_vector))
            .collect()
    }

    /// Number of points, or of points matching `filter`.
    pub fn count(&self, filter: Option<&Filter>) -> Result<usize> {
        self.life.check_readable()?;
        let table = self.table.read();
        Ok(match filter {
            None => table.len(),
            Some(f) => table.iter().filter(|(_, p)| f.matches(&p.payload)).count(),
        })
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
        let mut page: Vec<&LivePoint> = table
            .iter_from(after.as_deref())
            .filter(|p| filter.is_none_or(|f| f.matches(&p.payload)))
            .take(limit + 1)
            .collect();
        let next_cursor = if page.len() > limit {
            page.pop();
            page.last().map(|p| cursor::encode(&self.cursor_key, &p.id))
        } else {
            None
        };
        Ok(ScrollPage {
            points: page
                .into_iter()
                .map(|p| self.to_point(p, with_payload, with_vector))
                .collect::<Result<_>>()?,
            next_cursor,
        })
    }

    /// The k nearest points to the query vector, among those matching the
    /// filter. Never returns fewer than min(k, number of matching points).
    pub fn search(&self, request: &SearchRequest) -> Result<Vec<ScoredPoint>> {
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
        );
        let mut scored = Vec::with_capacity(hits.len());
        for p in hits
            .into_iter()
            .filter_map(|(internal, _)| table.get(internal))
        {
            scored.push(ScoredPoint {
                id: p.id.to_string(),
                score: query.metric.score(query.vector, &p.vector),
                payload: request.with_payload.then(|| (*p.payload).clone()),
                vector: request.with_vector.then(|| p.vector.to_vec()),
                text: self.text_of(p, request.with_payload)?,
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
