//! Seeded synthetic datasets shared by the benches, exact ground truth by
//! brute force, and the fvecs / ivecs files (the ANN-benchmarks formats:
//! each vector is a little-endian i32 dimension followed by its values).

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Embedding-like vectors: a 24-dimensional latent, clustered around 64
/// centres, projected linearly into `dim` dimensions, plus a little noise.
/// Real text embeddings have a low intrinsic dimension. The adversarial case,
/// `BULKHEAD_BENCH_DATA=noisy`: 64 centres with uniform noise in every
/// dimension, where distances concentrate and recall drops.
pub fn dataset(seed: u64, n: usize, dim: usize) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    if std::env::var("BULKHEAD_BENCH_DATA").is_ok_and(|d| d == "noisy") {
        let centres: Vec<Vec<f32>> = (0..64)
            .map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
            .collect();
        return (0..n)
            .map(|_| {
                let c = &centres[rng.random_range(0..centres.len())];
                c.iter()
                    .map(|x| x + rng.random_range(-0.35f32..0.35))
                    .collect()
            })
            .collect();
    }
    const LATENT: usize = 24;
    // The projection and centres are fixed across seeds: queries and data
    // come from the same distribution.
    let mut fixed = StdRng::seed_from_u64(0x5eed);
    let projection: Vec<Vec<f32>> = (0..dim)
        .map(|_| {
            (0..LATENT)
                .map(|_| fixed.random_range(-1.0f32..1.0))
                .collect()
        })
        .collect();
    let centres: Vec<Vec<f32>> = (0..64)
        .map(|_| {
            (0..LATENT)
                .map(|_| fixed.random_range(-1.0f32..1.0))
                .collect()
        })
        .collect();
    (0..n)
        .map(|_| {
            let c = &centres[rng.random_range(0..centres.len())];
            let z: Vec<f32> = c
                .iter()
                .map(|x| x + rng.random_range(-0.5f32..0.5))
                .collect();
            projection
                .iter()
                .map(|row| {
                    let dot: f32 = row.iter().zip(&z).map(|(a, b)| a * b).sum();
                    dot + rng.random_range(-0.05f32..0.05)
                })
                .collect()
        })
        .collect()
}

/// Cosine similarity of unit-normalised copies: the engine's cosine metric.
fn normalised(v: &[f32]) -> Vec<f32> {
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    v.iter().map(|x| x / norm).collect()
}

/// The `k` nearest base vectors of each query by cosine similarity, best
/// first, computed exactly on all cores.
pub fn ground_truth(base: &[Vec<f32>], queries: &[Vec<f32>], k: usize) -> Vec<Vec<u32>> {
    let base: Vec<Vec<f32>> = base.iter().map(|v| normalised(v)).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = queries.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = queries
            .chunks(chunk)
            .map(|part| {
                let base = &base;
                scope.spawn(move || {
                    part.iter()
                        .map(|q| {
                            let q = normalised(q);
                            let mut scored: Vec<(f32, u32)> = base
                                .iter()
                                .enumerate()
                                .map(|(i, b)| {
                                    (b.iter().zip(&q).map(|(x, y)| x * y).sum(), i as u32)
                                })
                                .collect();
                            let k = k.min(scored.len());
                            scored.select_nth_unstable_by(k.saturating_sub(1), |a, b| {
                                b.0.total_cmp(&a.0)
                            });
                            scored.truncate(k);
                            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
                            scored.into_iter().map(|(_, i)| i).collect()
                        })
                        .collect::<Vec<Vec<u32>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

pub fn write_fvecs(path: &Path, vectors: &[Vec<f32>]) -> std::io::Result<()> {
    let mut out = BufWriter::new(fs_err::File::create(path)?);
    for v in vectors {
        out.write_all(&(v.len() as i32).to_le_bytes())?;
        for x in v {
            out.write_all(&x.to_le_bytes())?;
        }
    }
    out.flush()
}

pub fn write_ivecs(path: &Path, rows: &[Vec<u32>]) -> std::io::Result<()> {
    let mut out = BufWriter::new(fs_err::File::create(path)?);
    for row in rows {
        out.write_all(&(row.len() as i32).to_le_bytes())?;
        for x in row {
            out.write_all(&(*x as i32).to_le_bytes())?;
        }
    }
    out.flush()
}

/// Reads an fvecs file (or ivecs, whose 4-byte values the caller reinterprets).
fn read_rows(path: &Path) -> std::io::Result<Vec<Vec<[u8; 4]>>> {
    let mut bytes = Vec::new();
    fs_err::File::open(path)?.read_to_end(&mut bytes)?;
    let mut rows = Vec::new();
    let mut at = 0;
    while at + 4 <= bytes.len() {
        let dim = i32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let dim = usize::try_from(dim).map_err(|_| std::io::Error::other("negative dimension"))?;
        at += 4;
        let end = at + 4 * dim;
        let row = bytes
            .get(at..end)
            .ok_or_else(|| std::io::Error::other("truncated vector"))?
            .chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect();
        rows.push(row);
        at = end;
    }
    Ok(rows)
}

pub fn read_fvecs(path: &Path) -> std::io::Result<Vec<Vec<f32>>> {
    Ok(read_rows(path)?
        .into_iter()
        .map(|r| r.into_iter().map(f32::from_le_bytes).collect())
        .collect())
}

pub fn read_ivecs(path: &Path) -> std::io::Result<Vec<Vec<u32>>> {
    Ok(read_rows(path)?
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|b| i32::from_le_bytes(b) as u32)
                .collect()
        })
        .collect())
}
