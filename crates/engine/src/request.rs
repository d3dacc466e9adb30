//! What a caller asks of a tenant's read path, with the defaults and limits
//! every caller (the server, the CLI, benches and fuzz targets) shares.

use super::filter::Filter;
use super::point::Point;

pub const MAX_K: usize = 1_024;
pub const MAX_EF: usize = 8_192;
pub const DEFAULT_EF: usize = 64;
/// Results of a search that asks for none in particular.
pub const DEFAULT_K: usize = 10;
pub const MAX_SCROLL_LIMIT: usize = 1_000;
/// Points of a scroll page that asks for no number in particular.
pub const DEFAULT_SCROLL_LIMIT: usize = 100;
pub const MAX_IDS_PER_REQUEST: usize = 10_000;
/// What one get, scroll page or search may return, counted while it is
/// built (ids, payloads as JSON, vectors, texts): under the server's
/// 64 MiB message limit with room for the framing. A get or search over it
/// is refused as soon as it crosses it, not after building the rest; a
/// scroll page ends there and its cursor continues.
pub const MAX_RESPONSE_BYTES: usize = 48 << 20;

/// A nearest-neighbour query.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub vector: Vec<f32>,
    /// Results wanted: 1..=1024.
    pub k: usize,
    /// Candidate list size of the graph search (default 64; raised to k).
    pub ef: Option<usize>,
    pub filter: Option<Filter>,
    pub with_payload: bool,
    pub with_vector: bool,
}

impl SearchRequest {
    pub fn new(vector: Vec<f32>, k: usize) -> Self {
        SearchRequest {
            vector,
            k,
            ef: None,
            filter: None,
            with_payload: false,
            with_vector: false,
        }
    }

    /// `k`, or [`DEFAULT_K`] when it is 0 (a wire request that sets none).
    pub fn k_or_default(k: usize) -> usize {
        if k == 0 { DEFAULT_K } else { k }
    }

    /// The candidate list size this search runs with: `ef` or
    /// [`DEFAULT_EF`], never below k.
    pub fn effective_ef(&self) -> usize {
        self.ef.unwrap_or(DEFAULT_EF).max(self.k)
    }
}

/// What one scroll page asks for (see [`Tenant::scroll`](crate::Tenant::scroll)).
#[derive(Debug, Clone, Copy)]
pub struct ScrollRequest<'a> {
    /// Where the previous page ended; None for the first page.
    pub cursor: Option<&'a str>,
    pub limit: usize,
    pub filter: Option<&'a crate::filter::Filter>,
    pub with_payload: bool,
    pub with_vector: bool,
}

/// One page of a scroll; pass `next_cursor` back for the next page.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrollPage {
    pub points: Vec<Point>,
    pub next_cursor: Option<String>,
}

/// Checks the ids of a get or delete: at most [`MAX_IDS_PER_REQUEST`],
/// each a valid point id.
pub(crate) fn check_ids(ids: &[String]) -> crate::error::Result<()> {
    use crate::error::EngineError;
    if ids.len() > MAX_IDS_PER_REQUEST {
        return Err(EngineError::invalid(format!(
            "{} ids in one request, the limit is {MAX_IDS_PER_REQUEST}",
            ids.len()
        )));
    }
    for (i, id) in ids.iter().enumerate() {
        crate::point::check_id(id).map_err(|r| EngineError::invalid(format!("ids[{i}]: {r}")))?;
    }
    Ok(())
}
