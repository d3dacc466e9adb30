//! Sentences per second of the encoder at several batch sizes, on the
//! sentences of embedder/bench/short.txt (~10 words) and medium.txt (~55
//! words), taken in order, a different batch each call.
//!
//! `cargo run --release -p bulkhead-embedder --example throughput [-- SECONDS [BATCHES] [cuda]]`
//! e.g. `-- 3 1,8,32,128` on CPU, or `-- 5 1,32,128,512 cuda` with
//! `--features cuda` (embedder/bench/gpu.sh). Prints a markdown table; the
//! same protocol in Python is embedder/bench/st_throughput.py.

use std::time::{Duration, Instant};

use bulkhead_embedder::{DEFAULT_MODEL, Encoder, models_dir};
use candle_core::Device;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn corpus(name: &str) -> Result<Vec<String>, std::io::Error> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bench")
        .join(name);
    Ok(std::fs::read_to_string(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

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
    let sets = [corpus("short.txt")?, corpus("medium.txt")?];
    println!("| batch | short sentences/s | medium sentences/s |");
    println!("|---|---|---|");
    for batch in batches {
        let mut row = Vec::new();
        for sentences in &sets {
            let mut next = sentences.iter().cycle();
            let mut take =
                || -> Vec<&str> { next.by_ref().take(batch).map(String::as_str).collect() };
            encoder.encode(&take())?; // warm-up
            let (mut done, started) = (0usize, Instant::now());
            while started.elapsed() < Duration::from_secs_f64(seconds) {
                encoder.encode(&take())?;
                done += batch;
            }
            row.push(done as f64 / started.elapsed().as_secs_f64());
        }
        println!("| {batch} | {:.1} | {:.1} |", row[0], row[1]);
    }
    Ok(())
}
