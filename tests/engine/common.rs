use bulkhead::engine::{EngineConfig, Metric, PointInput, Registry, TenantSpec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// A config that exercises the graph, rebuilds and snapshots on small data.
pub fn small_config() -> EngineConfig {
    EngineConfig {
        rebuild_min_dead: 20,
        rebuild_dead_fraction: 0.2,
        snapshot_every_points: 200,
        full_scan_points: 0,
        full_scan_fraction: 0.0,
        freeze_delta_points: 50,
        freeze_delta_fraction: 0.1,
        freeze_delta_max: 400,
        ..EngineConfig::default()
    }
}

pub fn open(dir: &std::path::Path) -> Registry {
    Registry::open(dir, small_config()).expect("open registry")
}

pub fn spec(dim: u32, metric: Metric) -> TenantSpec {
    TenantSpec::new(dim, metric)
}

pub fn random_vector(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// `n` seeded points `{prefix}{i}` with payload {"i": i, "bucket": i % 100}.
pub fn points(seed: u64, prefix: &str, n: usize, dim: usize) -> Vec<PointInput> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            PointInput::new(format!("{prefix}{i}"), random_vector(&mut rng, dim))
                .with_payload(json!({"i": i, "bucket": i % 100, "tag": format!("t{}", i % 7)}))
        })
        .collect()
}

/// Exact top-k ids by brute force.
pub fn brute_force(metric: Metric, query: &[f32], pts: &[&PointInput], k: usize) -> Vec<String> {
    let mut scored: Vec<(f32, &str)> = pts
        .iter()
        .map(|p| (metric.graph_distance(query, &p.vector), p.id.as_str()))
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
    scored
        .into_iter()
        .take(k)
        .map(|(_, id)| id.to_string())
        .collect()
}

/// The ids of a search's hits, best first.
pub fn search_ids(
    t: &bulkhead::engine::Tenant,
    query: &[f32],
    k: usize,
    ef: Option<usize>,
) -> Vec<String> {
    t.search(&bulkhead::engine::SearchRequest {
        ef,
        ..bulkhead::engine::SearchRequest::new(query.to_vec(), k)
    })
    .unwrap()
    .into_iter()
    .map(|p| p.id)
    .collect()
}

/// Runs the ignored test `name` of this binary as a child process with
/// `env` set, its stdout piped (the crash tests' acknowledgements).
pub fn spawn_child(name: &str, env: &[(&str, String)]) -> std::process::Child {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--ignored",
            "--exact",
            name,
            "--nocapture",
            "--test-threads=1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().unwrap()
}

/// The words of a child's output line from its first `markers` word on:
/// libtest prints "test name ... " without a newline before the test's own
/// first line.
pub fn marked_words<'a>(line: &'a str, markers: &[&str]) -> Vec<&'a str> {
    let from = markers
        .iter()
        .filter_map(|m| line.find(&format!("{m} ")))
        .min()
        .unwrap_or(line.len());
    line[from..].split_whitespace().collect()
}
