//! The sidecar over real gRPC on 127.0.0.1:0 with the real model: batches
//! never mix trust classes, the cache never answers across tenants, and the
//! service refuses what it must.

mod common;

use std::time::Duration;

use bulkhead_client::proto::{EmbedRequest, EmbedResponse};
use bulkhead_embedder::BatchConfig;
use common::{SECRET, embed, start};
use tonic::{Code, Request};

fn bits(response: &EmbedResponse) -> Vec<Vec<u32>> {
    response
        .embeddings
        .iter()
        .map(|e| e.values.iter().map(|x| x.to_bits()).collect())
        .collect()
}

fn texts(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "{prefix} sentence number {i} about tenant isolation {}",
                "and more words ".repeat(i % 5)
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invariant_4_batches_hold_one_trust_class_and_neighbours_change_no_bit() {
    let sidecar = start(
        &["gold", "free"],
        BatchConfig {
            max_batch: 16,
            max_wait: Duration::from_millis(20),
            queue_capacity: 64,
        },
    )
    .await;
    let b_texts = texts("bravo", 6);
    let quiet = embed(&sidecar.client, SECRET, "tenant-b1", "free", &b_texts)
        .await
        .unwrap();

    // Tenant a floods the other class while tenant b (a fresh cache key:
    // another tenant of b's class) asks for the same texts.
    let flood: Vec<_> = (0..6)
        .map(|i| {
            let client = sidecar.client.clone();
            let t = texts(&format!("alpha{i}"), 12);
            tokio::spawn(async move {
                embed(&client, SECRET, "tenant-a", "gold", &t)
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    let busy = embed(&sidecar.client, SECRET, "tenant-b2", "free", &b_texts)
        .await
        .unwrap();
    for f in flood {
        f.await.unwrap().unwrap();
    }
    assert_eq!(
        bits(&busy),
        bits(&quiet),
        "b's vectors are bit-identical with and without a's traffic"
    );

    let records = sidecar.batchers.records();
    assert!(records.iter().any(|r| r.trust_classes == ["gold"]));
    assert!(records.iter().any(|r| r.trust_classes == ["free"]));
    for r in &records {
        assert_eq!(
            r.trust_classes.len(),
            1,
            "a batch mixed trust classes: {r:?}"
        );
        assert!(r.texts <= 16);
    }
    let gold_tenants: Vec<&String> = records
        .iter()
        .filter(|r| r.trust_classes == ["gold"])
        .flat_map(|r| &r.tenants)
        .collect();
    assert!(gold_tenants.iter().all(|t| *t == "tenant-a"));
}

/// Two tenants of one trust class share batches (that is what batching is
/// for): a tenant's vectors computed beside another's texts, padded into
/// one batch, are bit-identical to those computed alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invariant_4_a_batch_shared_with_a_tenant_of_the_same_class_changes_no_bit() {
    let sidecar = start(
        &["shared"],
        BatchConfig {
            max_batch: 32,
            max_wait: Duration::from_millis(50),
            queue_capacity: 64,
        },
    )
    .await;
    let c_texts = texts("charlie", 6);
    let alone = embed(&sidecar.client, SECRET, "tenant-c0", "shared", &c_texts)
        .await
        .unwrap();
    // Until a batch has held both tenants' texts (a fresh name each round,
    // so the cache never answers).
    let mut mixed = false;
    for round in 1..=5 {
        let flood: Vec<_> = (0..4)
            .map(|i| {
                let client = sidecar.client.clone();
                let t = texts(&format!("delta{round}-{i} with other lengths"), 8);
                tokio::spawn(async move {
                    embed(&client, SECRET, "tenant-d", "shared", &t)
                        .await
                        .map(|_| ())
                })
            })
            .collect();
        let c = format!("tenant-c{round}");
        let beside = embed(&sidecar.client, SECRET, &c, "shared", &c_texts)
            .await
            .unwrap();
        for f in flood {
            f.await.unwrap().unwrap();
        }
        assert_eq!(
            bits(&beside),
            bits(&alone),
            "c's vectors changed in a batch shared with d"
        );
        mixed = sidecar
            .batchers
            .records()
            .iter()
            .any(|r| r.tenants.contains(&c) && r.tenants.iter().any(|t| t == "tenant-d"));
        if mixed {
            break;
        }
    }
    assert!(mixed, "no batch held both tenants: nothing was compared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invariant_3_a_cache_hit_of_one_tenant_is_never_another_tenants() {
    let sidecar = start(&["default"], BatchConfig::default()).await;
    let x = vec!["the quarterly numbers of customer A".to_string()];
    let first = embed(&sidecar.client, SECRET, "tenant-a", "default", &x)
        .await
        .unwrap();
    let second = embed(&sidecar.client, SECRET, "tenant-a", "default", &x)
        .await
        .unwrap();
    assert_eq!(bits(&first), bits(&second));
    let a = sidecar.cache.counters("tenant-a");
    assert_eq!((a.hits, a.misses), (1, 1), "a's second request was a hit");
    let b = embed(&sidecar.client, SECRET, "tenant-b", "default", &x)
        .await
        .unwrap();
    let b_counts = sidecar.cache.counters("tenant-b");
    assert_eq!(
        (b_counts.hits, b_counts.misses),
        (0, 1),
        "b got no hit from a's entry"
    );
    assert_eq!(
        sidecar.cache.counters("tenant-a"),
        a,
        "b's request did not touch a's counters"
    );
    assert_eq!(
        bits(&b),
        bits(&first),
        "the same text still gives the same vector"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_refuses_strangers_other_classes_bad_input_and_floods() {
    let sidecar = start(
        &["gold"],
        BatchConfig {
            max_batch: 8,
            max_wait: Duration::from_millis(1),
            queue_capacity: 64,
        },
    )
    .await;
    let one = vec!["hello".to_string()];
    let err = embed(
        &sidecar.client,
        "wrong-secret-wrong-secret",
        "t",
        "gold",
        &one,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = embed(&sidecar.client, SECRET, "t", "free", &one)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = embed(&sidecar.client, SECRET, "", "gold", &one)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut wrong_model = Request::new(EmbedRequest {
        tenant: "t".into(),
        trust_class: "gold".into(),
        model: "gpt-9".into(),
        texts: one.clone(),
    });
    wrong_model
        .metadata_mut()
        .insert("authorization", format!("Bearer {SECRET}").parse().unwrap());
    assert_eq!(
        sidecar
            .client
            .clone()
            .embed(wrong_model)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    // One tenant floods its queue of 64 texts: some of its requests are
    // refused with its own limit, none hang, and a quiet tenant of the same
    // class, asking at the same time, is never refused.
    let flood: Vec<_> = (0..12)
        .map(|i| {
            let client = sidecar.client.clone();
            let t = texts(&format!("flood{i}"), 32);
            tokio::spawn(async move { embed(&client, SECRET, "flooder", "gold", &t).await })
        })
        .collect();
    // Two requests of 32: within the quiet tenant's own 64.
    let quiet: Vec<_> = (0..2)
        .map(|i| {
            let client = sidecar.client.clone();
            let t = texts(&format!("quiet{i}"), 32);
            tokio::spawn(async move { embed(&client, SECRET, "quiet", "gold", &t).await })
        })
        .collect();
    let mut refused = 0;
    for f in flood {
        match f.await.unwrap() {
            Ok(r) => assert_eq!(r.embeddings.len(), 32),
            Err(e) => {
                assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
                assert!(
                    e.message().contains("this tenant already has")
                        && e.message().contains("may have at most 64"),
                    "the refusal names the tenant's own limit: {e}"
                );
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "a full queue refuses with RESOURCE_EXHAUSTED");
    for q in quiet {
        let answer = q.await.unwrap();
        assert_eq!(
            answer
                .expect("the quiet tenant was refused")
                .embeddings
                .len(),
            32
        );
    }
}

/// Inside a class the queue is fair across tenants: a tenant's one text,
/// sent while another tenant's 512 are queued, runs within the next batches,
/// not behind the 512.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_flood_delays_another_tenant_of_its_class_by_about_a_batch() {
    let sidecar = start(
        &["shared"],
        BatchConfig {
            max_batch: 32,
            max_wait: Duration::from_millis(1),
            queue_capacity: 4_096,
        },
    )
    .await;
    let flood: Vec<_> = (0..8)
        .map(|i| {
            let client = sidecar.client.clone();
            let t = texts(&format!("flood{i}"), 64);
            tokio::spawn(async move { embed(&client, SECRET, "flooder", "shared", &t).await })
        })
        .collect();
    // Once the flood is being encoded ...
    while sidecar.batchers.records().is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let before = sidecar.batchers.records().len();
    let one = vec!["one question of the quiet tenant".to_string()];
    let answer = embed(&sidecar.client, SECRET, "quiet", "shared", &one)
        .await
        .unwrap();
    assert_eq!(answer.embeddings.len(), 1);
    assert!(answer.tokens > 0, "the answer says the tokens it took");
    let records = sidecar.batchers.records();
    let at = records
        .iter()
        .position(|r| r.tenants.iter().any(|t| t == "quiet"))
        .expect("the quiet tenant's batch is recorded");
    for f in flood {
        f.await.unwrap().unwrap();
    }
    let flood_after: usize = sidecar.batchers.records()[at + 1..]
        .iter()
        .map(|r| r.texts)
        .sum();
    assert!(
        at <= before + 2,
        "the quiet tenant's text waited {} batches behind the flood",
        at - before
    );
    assert!(
        flood_after >= 256,
        "most of the flood ({flood_after} of 512 texts) ran after the quiet text"
    );
}
