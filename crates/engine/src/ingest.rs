//! Text in, vectors stored: a point sent as text, a text query and the Embed
//! call are embedded inside the engine. Texts are checked, sent in chunks to
//! the encoder of the tenant's trust class (under its incarnation, never its
//! name), the model that answered is checked against the tenant's contract
//! and lineage, the vectors against its dimension, and only then are they
//! written or returned. The encoder is whatever implements
//! [`Embed`](crate::Embed): the server's sidecar client, or a test's.

use std::sync::Arc;

use crate::embed::{Embed, Embedded};
use crate::error::{EmbedFailure, EngineError, Result};
use crate::point::{MAX_BATCH_POINTS, PointInput};
use crate::registry::Registry;
use crate::tenant::Tenant;

/// Most texts in one encoder request; longer lists go in several.
pub const MAX_EMBED_TEXTS: usize = 1_024;
/// Most bytes of one text to embed (the sidecar's limit); longer texts are
/// stored only with a vector.
pub const MAX_EMBED_TEXT_BYTES: usize = 32 * 1024;

impl Registry {
    /// Upserts `points` into `tenant`, first embedding the text of every
    /// point sent without a vector; the batch is written whole or not at
    /// all, and nothing is written when an embedding is refused.
    pub fn upsert(
        &self,
        tenant: &Arc<Tenant>,
        mut points: Vec<PointInput>,
        embed: &dyn Embed,
    ) -> Result<usize> {
        self.embed_points(tenant, &mut points, embed)?;
        self.write(tenant, |t| t.upsert(&points))?;
        Ok(points.len())
    }

    /// The first half of [`upsert`](Self::upsert): gives every point sent
    /// with a text and without a vector the vector of its text. The server
    /// runs it apart from the write, so that waiting on the encoder holds
    /// none of the workers that run tenants' reads and writes.
    pub fn embed_points(
        &self,
        tenant: &Tenant,
        points: &mut [PointInput],
        embed: &dyn Embed,
    ) -> Result<()> {
        if points.len() > MAX_BATCH_POINTS {
            return Err(EngineError::invalid(format!(
                "{} points in one upsert, the limit is {MAX_BATCH_POINTS}",
                points.len()
            )));
        }
        let mut positions = Vec::new();
        let mut texts = Vec::new();
        for (i, p) in points.iter().enumerate() {
            if let (true, Some(text)) = (p.vector.is_empty(), &p.text) {
                check_embeddable(text, &format!("point {i}: text"))?;
                positions.push(i);
                texts.push(text.clone());
            }
        }
        if !texts.is_empty() {
            tenant.check_points_quota(points)?;
            let embedded = self.embed_checked(tenant, texts, embed)?;
            for (i, vector) in positions.into_iter().zip(embedded.vectors) {
                points[i].vector = vector;
            }
        }
        Ok(())
    }

    /// Vectors for `texts` (at most [`MAX_EMBED_TEXTS`]) from the encoder
    /// of `tenant`'s trust class, once its model is one the tenant's
    /// contract and lineage allow.
    pub fn embed_texts(
        &self,
        tenant: &Tenant,
        texts: Vec<String>,
        embed: &dyn Embed,
    ) -> Result<Embedded> {
        if texts.is_empty() {
            return Err(EngineError::invalid("texts is empty"));
        }
        if texts.len() > MAX_EMBED_TEXTS {
            return Err(EngineError::invalid(format!(
                "{} texts in one request, the limit is {MAX_EMBED_TEXTS}",
                texts.len()
            )));
        }
        for (i, text) in texts.iter().enumerate() {
            check_embeddable(text, &format!("texts[{i}]"))?;
        }
        self.embed_checked(tenant, texts, embed)
    }

    /// The vector of a text query.
    pub fn embed_query(
        &self,
        tenant: &Tenant,
        text: String,
        embed: &dyn Embed,
    ) -> Result<Vec<f32>> {
        check_embeddable(&text, "text")?;
        let mut embedded = self.embed_checked(tenant, vec![text], embed)?;
        Ok(embedded.vectors.pop().unwrap_or_default())
    }

    /// Embeds `texts` in chunks, checking each answer's model against the
    /// tenant's contract and lineage, and its vectors against the tenant's
    /// dimension. The answer names the last chunk's model. Each chunk is
    /// sent only while the tenant's embedding budget is not spent, and is
    /// charged the tokens the encoder ran for it.
    fn embed_checked(
        &self,
        tenant: &Tenant,
        texts: Vec<String>,
        embed: &dyn Embed,
    ) -> Result<Embedded> {
        let expected = texts.len();
        let dimension = tenant.spec().dimension as usize;
        let mut all = Embedded {
            vectors: Vec::with_capacity(expected),
            model: String::new(),
            model_digest: String::new(),
            tokens: 0,
        };
        let mut texts = texts.into_iter().peekable();
        while texts.peek().is_some() {
            let chunk: Vec<String> = texts.by_ref().take(MAX_EMBED_TEXTS).collect();
            let sent = chunk.len();
            tenant.limits().check_embedding()?;
            let answer = embed
                .embed(&tenant.spec().trust_class, tenant.incarnation(), chunk)
                .map_err(EngineError::Embedder)?;
            // Charged whatever happens next: the encoder did the work.
            tenant.limits().charge_embedding(answer.tokens);
            all.tokens += answer.tokens;
            // The model that answered must be one this tenant's contract
            // and its lineage allow; the vectors are discarded otherwise.
            self.check_embedding_model(tenant, &answer.model_digest)?;
            if let Some(v) = answer.vectors.iter().find(|v| v.len() != dimension) {
                return Err(EngineError::ModelDimension {
                    model: answer.model,
                    model_dimension: v.len(),
                    dimension,
                });
            }
            if answer.vectors.len() != sent {
                tracing::error!(
                    sent,
                    got = answer.vectors.len(),
                    "the embedder answered the wrong number of vectors"
                );
                return Err(EngineError::Embedder(EmbedFailure::Failed));
            }
            all.vectors.extend(answer.vectors);
            all.model = answer.model;
            all.model_digest = answer.model_digest;
        }
        Ok(all)
    }
}

fn check_embeddable(text: &str, what: &str) -> Result<()> {
    if text.len() > MAX_EMBED_TEXT_BYTES {
        return Err(EngineError::invalid(format!(
            "{what} is {} bytes, more than the {MAX_EMBED_TEXT_BYTES} the embedder takes; send a vector with longer texts",
            text.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::config::EngineConfig;
    use crate::embed::NoEmbedder;
    use crate::metric::Metric;
    use crate::name::TrustClass;
    use crate::spec::TenantSpec;

    /// The built-in model's digest, registered on every node.
    const BUILTIN: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";

    /// An encoder that answers `dimension`-long vectors whose first value is
    /// the text's length, as model `digest`, and records each call's size.
    struct Lengths {
        dimension: usize,
        digest: &'static str,
        calls: Mutex<Vec<usize>>,
    }

    impl Lengths {
        fn new(dimension: usize, digest: &'static str) -> Self {
            Lengths {
                dimension,
                digest,
                calls: Mutex::new(Vec::new()),
            }
        }
    }

    impl Embed for Lengths {
        fn embed(
            &self,
            _: &TrustClass,
            _: u64,
            texts: Vec<String>,
        ) -> std::result::Result<Embedded, EmbedFailure> {
            self.calls.lock().unwrap().push(texts.len());
            let vectors = texts
                .iter()
                .map(|t| {
                    let mut v = vec![1.0; self.dimension];
                    v[0] = t.len() as f32;
                    v
                })
                .collect();
            Ok(Embedded {
                vectors,
                model: "lengths".into(),
                model_digest: self.digest.into(),
                // One token per byte, as far as the quota is concerned.
                tokens: texts.iter().map(|t| t.len() as u64).sum(),
            })
        }
    }

    fn registry_with_tenant(dimension: u32) -> (tempfile::TempDir, Registry, Arc<Tenant>) {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path(), EngineConfig::default()).unwrap();
        registry
            .create_tenant("notes", TenantSpec::new(dimension, Metric::L2))
            .unwrap();
        let tenant = registry.tenant("notes").unwrap();
        (dir, registry, tenant)
    }

    fn text_point(id: &str, text: &str) -> PointInput {
        PointInput {
            text: Some(text.into()),
            ..PointInput::new(id, Vec::new())
        }
    }

    #[test]
    fn texts_are_embedded_in_chunks_and_written_in_one_call() {
        let (_dir, registry, tenant) = registry_with_tenant(4);
        let encoder = Lengths::new(4, BUILTIN);
        let points: Vec<PointInput> = (0..MAX_EMBED_TEXTS + 1)
            .map(|i| text_point(&format!("p{i}"), &"x".repeat(i % 7 + 1)))
            .chain([PointInput::new("v", vec![0.0, 1.0, 2.0, 3.0])])
            .collect();
        assert_eq!(
            registry.upsert(&tenant, points, &encoder).unwrap(),
            MAX_EMBED_TEXTS + 2
        );
        assert_eq!(*encoder.calls.lock().unwrap(), [MAX_EMBED_TEXTS, 1]);
        let got = tenant.get(&["p5".into(), "v".into()], false, true).unwrap();
        assert_eq!(got[0].vector.as_deref().unwrap()[0], 6.0);
        assert_eq!(got[1].vector.as_deref().unwrap(), [0.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn a_refused_model_or_dimension_writes_nothing() {
        let (_dir, registry, tenant) = registry_with_tenant(4);
        let unregistered = Lengths::new(4, "ab");
        let err = registry
            .upsert(&tenant, vec![text_point("a", "hello")], &unregistered)
            .unwrap_err();
        assert!(err.to_string().contains("policy model-registry"), "{err}");
        let wrong_dimension = Lengths::new(3, BUILTIN);
        let err = registry
            .upsert(&tenant, vec![text_point("a", "hello")], &wrong_dimension)
            .unwrap_err();
        assert!(
            matches!(
                err,
                EngineError::ModelDimension {
                    model_dimension: 3,
                    dimension: 4,
                    ..
                }
            ),
            "{err}"
        );
        let err = registry
            .upsert(&tenant, vec![text_point("a", "hello")], &NoEmbedder)
            .unwrap_err();
        assert!(
            matches!(err, EngineError::Embedder(EmbedFailure::NotConfigured)),
            "{err}"
        );
        assert_eq!(tenant.count(None).unwrap(), 0);
    }

    #[test]
    fn texts_are_charged_by_tokens_and_refused_once_the_minute_is_spent() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path(), EngineConfig::default()).unwrap();
        let quotas = crate::Quotas {
            max_embedding_tokens_per_minute: 100,
            ..crate::Quotas::default()
        };
        let tenant = registry
            .create_tenant_with_quotas("budget", TenantSpec::new(4, Metric::L2), quotas)
            .unwrap();
        let encoder = Lengths::new(4, BUILTIN);
        // One request, many texts: 120 tokens, more than the minute holds.
        // It runs (the budget was not spent when it was sent) ...
        let long: Vec<PointInput> = (0..12)
            .map(|i| text_point(&format!("p{i}"), "0123456789"))
            .collect();
        registry.upsert(&tenant, long, &encoder).unwrap();
        // ... and everything after it waits for the budget to refill.
        let err = registry
            .upsert(&tenant, vec![text_point("q", "x")], &encoder)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("quota max_embedding_tokens_per_minute (100) used up"),
            "{err}"
        );
        let err = registry
            .embed_query(&tenant, "what".into(), &encoder)
            .unwrap_err();
        assert!(matches!(err, EngineError::QuotaExceeded(_)), "{err}");
        assert_eq!(
            *encoder.calls.lock().unwrap(),
            [12],
            "a refused text was sent"
        );
        assert_eq!(tenant.count(None).unwrap(), 12);
    }

    #[test]
    fn a_batch_over_the_points_quota_is_refused_before_the_encoder() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path(), EngineConfig::default()).unwrap();
        let quotas = crate::Quotas {
            max_points: 2,
            ..crate::Quotas::default()
        };
        let tenant = registry
            .create_tenant_with_quotas("small", TenantSpec::new(4, Metric::L2), quotas)
            .unwrap();
        let encoder = Lengths::new(4, BUILTIN);
        registry
            .upsert(
                &tenant,
                vec![text_point("a", "one"), text_point("b", "two")],
                &encoder,
            )
            .unwrap();
        let err = registry
            .upsert(&tenant, vec![text_point("c", "three")], &encoder)
            .unwrap_err();
        assert!(err.to_string().contains("quota max_points (2)"), "{err}");
        assert_eq!(
            *encoder.calls.lock().unwrap(),
            [2],
            "the refused text was embedded"
        );
        // Replacing a point's text adds no point: still allowed.
        registry
            .upsert(&tenant, vec![text_point("a", "one again")], &encoder)
            .unwrap();
    }

    #[test]
    fn texts_too_long_or_too_many_are_refused_before_the_encoder() {
        let (_dir, registry, tenant) = registry_with_tenant(4);
        let encoder = Lengths::new(4, BUILTIN);
        let long = "x".repeat(MAX_EMBED_TEXT_BYTES + 1);
        let err = registry
            .embed_query(&tenant, long.clone(), &encoder)
            .unwrap_err();
        assert!(err.to_string().contains("bytes, more than"), "{err}");
        let err = registry
            .embed_texts(&tenant, vec!["a".into(); MAX_EMBED_TEXTS + 1], &encoder)
            .unwrap_err();
        assert!(err.to_string().contains("the limit is"), "{err}");
        let err = registry
            .upsert(&tenant, vec![text_point("a", &long)], &encoder)
            .unwrap_err();
        assert!(err.to_string().starts_with("point 0: text"), "{err}");
        assert!(encoder.calls.lock().unwrap().is_empty());
    }
}
