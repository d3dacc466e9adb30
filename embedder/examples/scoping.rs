//! The throughput cost of trust-class scoping: the same load (CLIENTS
//! concurrent callers, one short sentence per request, as RAG queries come)
//! spread evenly over 1, 2 or 8 trust classes. Each class has its own queue
//! and batcher, so more classes mean smaller batches.
//!
//! `cargo run --release -p bulkhead-embedder --example scoping [-- SECONDS CLIENTS CLASSES]`
//! e.g. `-- 5 32 1,2,8`. Prints a markdown table.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bulkhead_embedder::{BatchConfig, Batchers, DEFAULT_MODEL, Encoder, models_dir};
use candle_core::Device;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let clients: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    let class_counts: Vec<usize> = args
        .get(3)
        .map(|s| s.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 8]);
    let encoder = Arc::new(Encoder::load(
        &models_dir().join(DEFAULT_MODEL),
        &Device::Cpu,
    )?);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/short.txt");
    let sentences: Arc<Vec<String>> = Arc::new(
        std::fs::read_to_string(path)?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
    );
    println!("| trust classes | clients | sentences/s | mean batch | vs 1 class |");
    println!("|---|---|---|---|---|");
    let mut baseline = None;
    for classes in class_counts {
        let names: Vec<String> = (0..classes).map(|c| format!("class{c}")).collect();
        let config = BatchConfig {
            max_batch: 32,
            max_wait: Duration::from_millis(5),
            queue_capacity: 1_024,
        };
        let batchers = Arc::new(Batchers::start(&names, Arc::clone(&encoder), config));
        let done = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(seconds);
        let tasks: Vec<_> = (0..clients)
            .map(|i| {
                let (batchers, done, sentences) = (
                    Arc::clone(&batchers),
                    Arc::clone(&done),
                    Arc::clone(&sentences),
                );
                let class = names[i % classes].clone();
                tokio::spawn(async move {
                    let mut n = i;
                    while Instant::now() < deadline {
                        let text = sentences[n % sentences.len()].clone();
                        n += clients;
                        if batchers
                            .embed(&class, &format!("t{i}"), vec![text])
                            .await
                            .is_ok()
                        {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await?;
        }
        let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
        let records = batchers.records();
        let mean =
            records.iter().map(|r| r.texts).sum::<usize>() as f64 / records.len().max(1) as f64;
        let base = *baseline.get_or_insert(rate);
        println!(
            "| {classes} | {clients} | {rate:.1} | {mean:.1} | {:.2}x |",
            rate / base
        );
    }
    Ok(())
}
