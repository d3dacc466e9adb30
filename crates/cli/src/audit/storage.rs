//! The storage layer: the prober gets, scrolls, counts and deletes what
//! would be the victim's, and replays its scroll cursor.

use super::canary::{Canary, canary_filter};
use super::report::Probe;
use super::{Fallible, POINTS};

pub(super) fn layer() -> Probe {
    Probe::new(
        "storage",
        "one RocksDB column family per tenant; get, scroll, count and delete read one column family",
    )
}

/// Runs the probes; error messages the prober saw go to `messages`.
pub(super) async fn probe(
    storage: &mut Probe,
    dir: &str,
    prober: &Canary,
    victim: &Canary,
    messages: &mut Vec<String>,
) -> Fallible<()> {
    let got = prober.client.get(victim.ids.clone(), true, true).await?;
    storage.ran(format!("{dir} get its {} ids", victim.ids.len()));
    if !got.is_empty() {
        storage.leak(format!("{dir}: get returned {} of its points", got.len()));
    }
    let mut cursor = None;
    loop {
        let page = prober.client.scroll(cursor, 1_000, None).await?;
        for point in &page.points {
            if victim.owns(&point.id, &point.payload) {
                storage.leak(format!("{dir}: scroll returned {}", point.id));
            }
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    storage.ran(format!("{dir} scroll everything"));
    let counted = prober
        .client
        .count(Some(canary_filter(&victim.secret)))
        .await?;
    storage.ran(format!("{dir} count by its payload"));
    if counted != 0 {
        storage.leak(format!("{dir}: count by its payload gave {counted}"));
    }
    let deleted = prober.client.delete(victim.ids.clone()).await?
        + prober
            .client
            .delete_by_filter(canary_filter(&victim.secret))
            .await?;
    storage.ran(format!("{dir} delete its ids and by its payload"));
    let left = victim.client.count(None).await?;
    if deleted != 0 || left != POINTS as u64 {
        storage.leak(format!(
            "{dir}: deletes removed {deleted}; it now has {left} points"
        ));
    }
    // Its cursor, reused.
    let page = victim.client.scroll(None, 5, None).await?;
    if let Some(cursor) = page.next_cursor {
        storage.ran(format!("{dir} scroll with its cursor"));
        match prober.client.scroll(Some(cursor), 5, None).await {
            Ok(page) => storage.leak(format!(
                "{dir}: its scroll cursor was accepted ({} points)",
                page.points.len()
            )),
            Err(e) => messages.push(e.to_string()),
        }
    }
    Ok(())
}
