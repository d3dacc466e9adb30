//! Sentences per second of the CPU encoder at several batch sizes.
//!
//! `cargo run --release -p bulkhead-embedder --example throughput [-- SECONDS [BATCHES] [cuda]]`
//! e.g. `-- 3 1,8,32,128` on CPU, or `-- 5 1,32,128,512 cuda` with
//! `--features cuda` (embedder/bench/gpu.sh). Short sentences (~10 tokens)
//! and medium ones (~60 tokens). Prints a markdown table.

use std::time::{Duration, Instant};

use bulkhead_embedder::{DEFAULT_MODEL, Encoder, models_dir};
use candle_core::Device;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let batches: Vec<usize> = args
        .get(2)
        .map(|s| s.split(',').filter_map(|b| b.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 8, 32, 128]);
    let device = match args.get(3).map(String::as_str) {
        Some("cuda") => Device::new_cuda(0)?,
        _ => Device::Cpu,
    };
    eprintln!("device: {device:?}");
    let encoder = Encoder::load(&models_dir().join(DEFAULT_MODEL), &device)?;
    let short = "A ship's bulkhead keeps one flooded compartment dry.";
    let medium = "Bulkhead keeps every tenant in a physical partition of its own: its own graph, \
                  its own column family, its own cache namespace and its own files, so that an \
                  auditor's question gets a test instead of a promise, and queries stay fast.";
    println!("| batch | short sentences/s | medium sentences/s |");
    println!("|---|---|---|");
    for batch in batches {
        let mut row = Vec::new();
        for text in [short, medium] {
            let texts: Vec<&str> = (0..batch).map(|_| text).collect();
            encoder.encode(&texts)?; // warm-up
            let (mut done, started) = (0usize, Instant::now());
            while started.elapsed() < Duration::from_secs_f64(seconds) {
                encoder.encode(&texts)?;
                done += batch;
            }
            row.push(done as f64 / started.elapsed().as_secs_f64());
        }
        println!("| {batch} | {:.1} | {:.1} |", row[0], row[1]);
    }
    Ok(())
}
