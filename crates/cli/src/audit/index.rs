//! The index layer: the prober searches with the victim's exact vectors,
//! its texts and a filter on its payload; none of its points may come back.

use super::Fallible;
use super::canary::{Canary, canary_filter};
use super::report::Probe;

pub(super) fn layer() -> Probe {
    Probe::new(
        "index",
        "one HNSW graph per tenant; a search reaches only the graph of the token's tenant",
    )
}

pub(super) async fn probe(
    index: &mut Probe,
    dir: &str,
    prober: &Canary,
    victim: &Canary,
) -> Fallible<()> {
    // The victim's exact vectors.
    for (i, vector) in victim.vectors.iter().take(5).enumerate() {
        let hits = prober
            .client
            .search(vector.clone())
            .k(20)
            .with_payload()
            .send()
            .await?;
        index.ran(format!("{dir} search with its vector {i}"));
        for h in hits {
            if victim.owns(&h.id, &h.payload) {
                index.leak(format!("{dir}: a search returned {}", h.id));
            }
        }
    }
    // Its texts, through the prober's embedder (when its class has one).
    if let Ok(hits) = prober
        .client
        .search_text(victim.texts[0].clone())
        .k(20)
        .with_payload()
        .send()
        .await
    {
        index.ran(format!("{dir} text search with its text"));
        for h in hits {
            if victim.owns(&h.id, &h.payload) {
                index.leak(format!("{dir}: a text search returned {}", h.id));
            }
        }
    }
    // A filter on its payload.
    let hits = prober
        .client
        .search(victim.vectors[0].clone())
        .filter(canary_filter(&victim.secret))
        .send()
        .await?;
    index.ran(format!("{dir} search filtered on its payload"));
    if !hits.is_empty() {
        index.leak(format!(
            "{dir}: a filter on its payload matched {} points",
            hits.len()
        ));
    }
    Ok(())
}
