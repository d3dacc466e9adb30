//! The embedder path's layers: the per-tenant cache (counters and a
//! timing statistic), per-class batching and model lineage.

use std::time::Instant;

use bulkhead_client::AdminClient;
use bulkhead_client::proto::ModelInfo;

use super::canary::Canary;
use super::report::{Layer, Probe};
use super::{Fallible, TIMING_PROBES, TIMING_T_LEAK};

/// The cache, batching and models layers: the embedder path.
pub(super) async fn embedder_layers(
    admin: &AdminClient,
    canaries: &[Canary],
) -> Fallible<(Layer, Layer, Layer)> {
    let mut cache = Probe::new(
        "cache",
        "the embedding cache is keyed by tenant incarnation, model and text; counters per tenant",
    );
    let mut batching = Probe::new(
        "batching",
        "one encoder queue and batcher per trust class; a batch never mixes classes",
    );
    let mut models = Probe::new(
        "models",
        "every answer names the digest of the weights that made it; a vector is used only when that model is registered, is the one assigned to the tenant or its class, and its lineage is public data, the tenant, or tenants that consent to pooling with it",
    );
    let (a, b, c) = (&canaries[0], &canaries[1], &canaries[2]);
    let base = match a.client.embed_answer(vec![a.texts[0].clone()]).await {
        Ok(answer) => answer,
        Err(e) => {
            let why = format!("no embedder answers trust class {}: {e}", a.class);
            for layer in [&mut cache, &mut batching, &mut models] {
                layer.skipped = Some(why.clone());
            }
            return Ok((cache.done(), batching.done(), models.done()));
        }
    };
    // Models: the weights that answered each canary must be registered
    // with a lineage that holds no other tenant's data (the canaries are
    // fresh and consent to no pooling).
    let registered = admin.list_models().await?;
    let mut answered = vec![(a, base.model_digest.clone())];
    if let Ok(answer) = c.client.embed_answer(vec![c.texts[0].clone()]).await {
        answered.push((c, answer.model_digest));
    }
    for (canary, digest) in &answered {
        models.ran(format!(
            "class {}: the lineage of the weights that answered {}",
            canary.class, canary.name
        ));
        if let Some(leak) = lineage_leak(&canary.name, digest, &registered) {
            models.leak(format!("class {}: {leak}", canary.class));
        }
    }
    if let [(_, first), (_, second)] = answered.as_slice()
        && first == second
    {
        models.mechanism(format!(
            "one model ({}) answers both classes, as when one sidecar serves every class (the local one `bulkhead serve` starts): classes are kept apart by queues and batches, not by processes; every answer names the digest of its weights, and a vector is used only when that model is registered and assigned to the tenant or its class, with a lineage of public data, the tenant, or tenants that consent to pooling with it",
            short(first)
        ));
    }
    let base = base.vectors;
    // Cache: a warms its texts; b embedding the same texts must miss, and
    // must not answer them faster than texts nobody has embedded. (b's
    // text search above used a's first text, so that one is b's own now.)
    a.client.embed(a.texts.clone()).await?;
    let stats = |name: &str| {
        let name = name.to_string();
        async move {
            admin
                .describe(&name)
                .await
                .map(|d| d.embedding_cache.map(|s| (s.hits, s.misses)))
        }
    };
    let before = stats(&b.name).await?;
    let mut warm = Vec::new();
    let mut cold = Vec::new();
    for (i, text) in a.texts.iter().skip(1).take(TIMING_PROBES).enumerate() {
        let fresh = format!("{} unrelated control text {i}", b.secret);
        for (text, into) in [(text.clone(), &mut warm), (fresh, &mut cold)] {
            let started = Instant::now();
            b.client.embed(vec![text]).await?;
            into.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    let after = stats(&b.name).await?;
    match (before, after) {
        (Some((h0, _)), Some((h1, _))) => {
            cache.ran(format!(
                "b embeds a's {} cached texts: b's hit counter",
                warm.len()
            ));
            if h1 > h0 {
                cache.leak(format!("b's cache hits rose by {} on a's texts", h1 - h0));
            }
        }
        // Nothing was counted: say so, rather than pass a check that did
        // not run (the timing test below still measures the cache).
        _ => cache.ran("counters: SKIPPED, the embedder reported none for b"),
    }
    let t = welch_t(&cold, &warm);
    cache.ran(format!(
        "timing: Welch t of b's latency on fresh vs a's cached texts = {t:.2} ({} probes each)",
        warm.len()
    ));
    if t > TIMING_T_LEAK {
        cache.leak(format!("a's cached texts answer b faster (Welch t {t:.1})"));
    }
    // Batching: a's vector of one text must not change by a bit when c (of
    // another class) embeds at the same time.
    // If c's embed failed, nothing ran beside a's: the row measured nothing.
    let (together, beside) = tokio::join!(
        a.client.embed(vec![a.texts[0].clone()]),
        c.client.embed(c.texts.clone()),
    );
    match (together, beside) {
        (_, Err(e)) => {
            batching.skipped = Some(format!(
                "c (another class) could not embed, so nothing ran beside a: {e}"
            ));
        }
        (Ok((vectors, _)), Ok(_)) => {
            batching.ran("a embeds a text alone, then while c (another class) embeds 20");
            if vectors != base {
                batching.leak("a's vector changed when c embedded at the same time");
            }
        }
        (Err(e), Ok(_)) => {
            batching.ran("a embeds a text alone, then while c (another class) embeds 20");
            batching.leak(format!("a's embed failed while c embedded: {e}"));
        }
    }
    Ok((cache.done(), batching.done(), models.done()))
}

/// Why the weights `digest` must not have answered `canary`: they are not
/// registered, or their lineage holds another tenant's data. None when
/// they may.
fn lineage_leak(canary: &str, digest: &str, registered: &[ModelInfo]) -> Option<String> {
    let Some(model) = registered.iter().find(|m| m.digest == digest) else {
        return Some(format!(
            "{canary} was answered by weights {} that are not registered",
            short(digest)
        ));
    };
    let others: Vec<&str> = model
        .tenants
        .iter()
        .map(String::as_str)
        .filter(|t| *t != canary)
        .collect();
    (!others.is_empty()).then(|| {
        format!(
            "{canary} was answered by {} ({}), whose lineage holds the data of {}",
            model.name,
            short(digest),
            others.join(", ")
        )
    })
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// Welch's t statistic of mean(x) - mean(y).
fn welch_t(x: &[f64], y: &[f64]) -> f64 {
    let stats = |v: &[f64]| {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        (n, mean, var)
    };
    let ((nx, mx, vx), (ny, my, vy)) = (stats(x), stats(y));
    let se = (vx / nx + vy / ny).sqrt();
    if se == 0.0 { 0.0 } else { (mx - my) / se }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(digest: &str, tenants: &[&str]) -> ModelInfo {
        ModelInfo {
            name: "m".into(),
            digest: digest.into(),
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
            ..ModelInfo::default()
        }
    }

    #[test]
    fn the_models_row_reports_foreign_lineage_and_unregistered_weights() {
        let registered = [model("aaaa", &[]), model("bbbb", &["canary-a", "acme"])];
        assert_eq!(lineage_leak("canary-a", "aaaa", &registered), None);
        let leak = lineage_leak("canary-a", "bbbb", &registered).unwrap();
        assert!(leak.contains("holds the data of acme"), "{leak}");
        assert!(!leak.contains("canary-a,"), "{leak}");
        let leak = lineage_leak("canary-a", "cccc", &registered).unwrap();
        assert!(leak.contains("not registered"), "{leak}");
        assert_eq!(
            lineage_leak("canary-a", "bbbb", &[model("bbbb", &["canary-a"])]),
            None,
            "a model of the canary's own data may serve it"
        );
    }
}
