//! Per-tenant insert and search, and tenant creation as the node fills up.
//!
//! `cargo bench --bench tenant` (or `make bench`). Seeded data: 10k and 100k
//! vectors of 128 and 384 dimensions, M=16, ef_construction=200, cosine.
//! Besides criterion's timings it prints build throughput and recall@10
//! against brute force, so a speed-up that costs recall is visible.
//! `BULKHEAD_BENCH_SIZES=10000` limits the sizes for a quick run (empty: none).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bulkhead::engine::{EngineConfig, Metric, PointInput, Registry, SearchRequest, TenantSpec};
use bulkhead_storage::StorageOptions;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

#[path = "common/data.rs"]
#[allow(dead_code)]
mod data;
use data::dataset;

fn sizes() -> Vec<usize> {
    match std::env::var("BULKHEAD_BENCH_SIZES") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![10_000, 100_000],
    }
}

fn recall_at_10(
    t: &bulkhead::engine::Tenant,
    data: &[Vec<f32>],
    queries: &[Vec<f32>],
    ef: usize,
) -> f64 {
    let mut hits = 0;
    for q in queries {
        let mut truth: Vec<(f32, usize)> = data
            .iter()
            .enumerate()
            .map(|(i, v)| (Metric::Cosine.graph_distance(q, v), i))
            .collect();
        truth.select_nth_unstable_by(10, |a, b| a.0.total_cmp(&b.0));
        let truth: Vec<String> = truth[..10].iter().map(|(_, i)| format!("p{i}")).collect();
        let got = t
            .search(&SearchRequest {
                ef: Some(ef),
                ..SearchRequest::new(q.clone(), 10)
            })
            .unwrap_or_default();
        hits += got.iter().filter(|p| truth.contains(&p.id)).count();
    }
    hits as f64 / (10 * queries.len()) as f64
}

fn per_tenant(c: &mut Criterion) {
    for n in sizes() {
        for dim in [128usize, 384] {
            let dir = tempfile::tempdir().expect("tempdir");
            let reg = Registry::open(dir.path(), EngineConfig::default()).expect("open");
            let t = reg
                .create_tenant("bench", TenantSpec::new(dim as u32, Metric::Cosine))
                .expect("create");
            let data = dataset(1, n, dim);
            let started = Instant::now();
            for (b, chunk) in data.chunks(1_000).enumerate() {
                let batch: Vec<PointInput> = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, v)| PointInput::new(format!("p{}", b * 1_000 + i), v.clone()))
                    .collect();
                t.upsert(&batch).expect("upsert");
            }
            let secs = started.elapsed().as_secs_f64();
            let queries = dataset(2, 200, dim);
            eprintln!(
                "build {n}x{dim}: {:.0} points/s durable ({secs:.1} s); recall@10 ef=64 {:.3}, ef=128 {:.3}, ef=512 {:.3}",
                n as f64 / secs,
                recall_at_10(&t, &data, &queries, 64),
                recall_at_10(&t, &data, &queries, 128),
                recall_at_10(&t, &data, &queries, 512),
            );

            let mut group = c.benchmark_group(format!("search/{n}x{dim}"));
            group
                .sample_size(20)
                .measurement_time(Duration::from_secs(4));
            for ef in [64usize, 128] {
                group.bench_with_input(BenchmarkId::new("k10_ef", ef), &ef, |b, &ef| {
                    let mut i = 0;
                    b.iter(|| {
                        i = (i + 1) % queries.len();
                        let req = SearchRequest {
                            ef: Some(ef),
                            ..SearchRequest::new(queries[i].clone(), 10)
                        };
                        black_box(t.search(&req).expect("search"))
                    })
                });
            }
            group.finish();

            let mut group = c.benchmark_group(format!("upsert/{n}x{dim}"));
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(5));
            let fresh = dataset(3, 100, dim);
            let next = AtomicU64::new(0);
            group.bench_function("batch100", |b| {
                b.iter(|| {
                    let base = next.fetch_add(1, Ordering::Relaxed) * 100;
                    let batch: Vec<PointInput> = fresh
                        .iter()
                        .enumerate()
                        .map(|(i, v)| PointInput::new(format!("new{}", base + i as u64), v.clone()))
                        .collect();
                    t.upsert(&batch).expect("upsert")
                })
            });
            group.finish();
        }
    }
}

/// Tenant creation at 100 and 2,000 tenants on the node (shelves of 100).
fn create_tenant(c: &mut Criterion) {
    let mut group = c.benchmark_group("create_tenant");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    for existing in [100usize, 2_000] {
        let dir = tempfile::tempdir().expect("tempdir");
        let reg = Registry::open(dir.path(), EngineConfig::default()).expect("open");
        let started = Instant::now();
        for i in 0..existing {
            reg.create_tenant(&format!("t{i}"), TenantSpec::new(8, Metric::L2))
                .expect("create");
        }
        eprintln!(
            "created {existing} tenants in {:.1} s ({:.1} ms each)",
            started.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64() * 1e3 / existing as f64
        );
        let next = AtomicU64::new(existing as u64);
        group.bench_function(BenchmarkId::new("with_existing", existing), |b| {
            b.iter(|| {
                let i = next.fetch_add(1, Ordering::Relaxed);
                reg.create_tenant(&format!("t{i}"), TenantSpec::new(8, Metric::L2))
                    .expect("create")
            })
        });
        reg.close().expect("close");
        drop(reg);
        let started = Instant::now();
        let reg = Registry::open(dir.path(), EngineConfig::default()).expect("reopen");
        eprintln!(
            "reopened {} tenants in {:.2} s",
            reg.list_tenants().len(),
            started.elapsed().as_secs_f64()
        );
    }
    group.finish();
}

/// One create into a shelf that already holds `fill` column families: the
/// measurement behind the default shelf size.
fn shelf_size(c: &mut Criterion) {
    let mut group = c.benchmark_group("create_tenant_on_a_shelf_of");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for fill in [25usize, 100, 400] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = EngineConfig {
            storage: StorageOptions {
                tenants_per_shelf: 100_000,
                ..StorageOptions::default()
            },
            ..EngineConfig::default()
        };
        let reg = Registry::open(dir.path(), config).expect("open");
        for i in 0..fill {
            reg.create_tenant(&format!("t{i}"), TenantSpec::new(8, Metric::L2))
                .expect("create");
        }
        let next = AtomicU64::new(0);
        group.bench_function(BenchmarkId::from_parameter(fill), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let name = format!("x{}", next.fetch_add(1, Ordering::Relaxed));
                    let started = Instant::now();
                    reg.create_tenant(&name, TenantSpec::new(8, Metric::L2))
                        .expect("create");
                    total += started.elapsed();
                    reg.drop_tenant(&name).expect("drop");
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, per_tenant, create_tenant, shelf_size);
criterion_main!(benches);
