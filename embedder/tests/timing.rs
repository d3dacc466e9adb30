//! Invariant 3's timing side: tenant B probing texts that tenant A has
//! cached answers as slowly as a fresh miss (no cross-tenant timing signal),
//! while the same harness does see tenant A's own hits. The statistics are
//! asserted, never wall-clock thresholds.

mod common;

use std::time::{Duration, Instant};

use bulkhead_client::proto::embedder_service_client::EmbedderServiceClient;
use bulkhead_embedder::BatchConfig;
use common::{SECRET, embed};
use tonic::transport::Channel;

const PROBES: usize = 250;

async fn start() -> EmbedderServiceClient<Channel> {
    let config = BatchConfig {
        max_batch: 32,
        max_wait: Duration::from_millis(1),
        queue_capacity: 64,
    };
    common::start(&["default"], config).await.client
}

/// Seconds one embed call takes.
async fn time(client: &EmbedderServiceClient<Channel>, tenant: &str, text: &str) -> f64 {
    let started = Instant::now();
    embed(client, SECRET, tenant, "default", &[text.to_string()])
        .await
        .unwrap();
    started.elapsed().as_secs_f64()
}

/// Texts of one shape: only the number differs. Numbers tokenize into
/// different counts of word pieces, so which texts are probes and which are
/// fresh misses is decided at random from one pool (see the test).
fn text(i: usize) -> String {
    format!(
        "record {} holds the private quarterly figures of one customer",
        10_000 + i
    )
}

/// A fixed-seed shuffle (xorshift): random order, reproducible runs.
fn shuffled<T>(mut items: Vec<T>, seed: u64) -> Vec<T> {
    let mut state = seed;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
    items
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

/// Welch's t statistic.
fn welch_t(a: &[f64], b: &[f64]) -> f64 {
    let ((ma, va), (mb, vb)) = (mean_var(a), mean_var(b));
    (ma - mb) / (va / a.len() as f64 + vb / b.len() as f64).sqrt()
}

/// Two-sample Kolmogorov-Smirnov p-value (asymptotic distribution).
fn ks_p(a: &[f64], b: &[f64]) -> f64 {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    let n = (a.len() * b.len()) as f64 / (a.len() + b.len()) as f64;
    let lambda = (n.sqrt() + 0.12 + 0.11 / n.sqrt()) * d;
    if lambda < 0.3 {
        return 1.0; // Q_KS(0.3) > 0.99999; the alternating series is useless this low
    }
    let p: f64 = (1..=100)
        .map(|k| {
            let k = k as f64;
            2.0 * (-1f64).powf(k - 1.0) * (-2.0 * k * k * lambda * lambda).exp()
        })
        .sum();
    p.clamp(0.0, 1.0)
}

/// Latencies of `probe` texts and of fresh misses, interleaved in a shuffled
/// order so drift in machine load hits both alike.
async fn compare(
    client: &EmbedderServiceClient<Channel>,
    prober: &str,
    probe: &[String],
    fresh: &[String],
) -> (Vec<f64>, Vec<f64>) {
    let order: Vec<(bool, usize)> = (0..probe.len())
        .map(|i| (true, i))
        .chain((0..fresh.len()).map(|i| (false, i)))
        .collect();
    let order = shuffled(order, 0x9e37_79b9_7f4a_7c15);
    let (mut probes, mut misses) = (Vec::new(), Vec::new());
    for (is_probe, i) in order {
        if is_probe {
            probes.push(time(client, prober, &probe[i]).await);
        } else {
            misses.push(time(client, prober, &fresh[i]).await);
        }
    }
    (probes, misses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invariant_3_a_neighbours_cache_gives_no_timing_signal() {
    let client = start().await;
    // Probe texts and fresh texts are a random split of one pool, so they
    // differ in nothing but whether tenant a cached them.
    let pool = shuffled((0..3 * PROBES).map(text).collect(), 0x5eed_cafe_f00d_0001);
    let (cached, rest) = pool.split_at(PROBES);
    let (fresh_b, fresh_a) = rest.split_at(PROBES);
    for t in cached {
        time(&client, "tenant-a", t).await; // a's cache now holds every probe text
    }
    for i in 0..20 {
        time(&client, "tenant-b", &format!("warm-up sentence {i}")).await;
    }
    let (probes, misses) = compare(&client, "tenant-b", cached, fresh_b).await;
    let (t, p) = (welch_t(&probes, &misses), ks_p(&probes, &misses));
    eprintln!("cross-tenant probes vs misses: welch t {t:.2}, KS p {p:.3}");

    // The same harness, on tenant a's own repeats, must see the hits.
    let (hits, misses_a) = compare(&client, "tenant-a", cached, fresh_a).await;
    let (t_own, p_own) = (welch_t(&hits, &misses_a), ks_p(&hits, &misses_a));
    eprintln!("own hits vs misses: welch t {t_own:.2}, KS p {p_own:.2e}");

    assert!(
        t_own.abs() >= 4.5 && p_own < 0.01,
        "the harness cannot see a's own hits (t {t_own:.2}, p {p_own:.3}): it proves nothing"
    );
    assert!(
        t.abs() < 4.5,
        "b's probes of a's cached texts differ from misses: welch t {t:.2}"
    );
    assert!(
        p >= 0.01,
        "b's probes of a's cached texts differ from misses: KS p {p:.4}"
    );
}

#[test]
fn the_statistics_are_right_on_known_samples() {
    let a: Vec<f64> = (0..200).map(|i| (i % 17) as f64).collect();
    let shifted: Vec<f64> = a.iter().map(|x| x + 5.0).collect();
    assert!(welch_t(&a, &a).abs() < 1e-9);
    assert!(ks_p(&a, &a) > 0.99);
    assert!(welch_t(&a, &shifted).abs() > 10.0);
    assert!(ks_p(&a, &shifted) < 1e-6);
}
