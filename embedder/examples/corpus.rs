//! A real-text dataset for the load tool: passages of the Rust toolchain's
//! HTML books (The Rust Programming Language, the Reference, Rust by
//! Example, the Cargo book, the edition guide), embedded with the default
//! model, written as fvecs.
//!
//! `cargo run --release -p bulkhead-embedder --example corpus -- DIR [PASSAGES] [QUERIES]`
//!
//! Every tenth passage is held out, and its first sentence becomes a query;
//! the rest (up to PASSAGES, default 10,000) is the base. Writes
//! DIR/base.fvecs and DIR/queries.fvecs (up to QUERIES, default 1,000);
//! `cargo bench --bench load -- --data DIR` adds the exact ground truth.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bulkhead_embedder::{DEFAULT_MODEL, Encoder, models_dir};
use candle_core::Device;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BOOKS: [&str; 5] = [
    "book",
    "reference",
    "rust-by-example",
    "cargo",
    "edition-guide",
];

fn html_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            html_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "html") {
            out.push(path);
        }
    }
}

/// The text of each `<p>` element, tags removed, entities of the common
/// five decoded, whitespace collapsed.
fn paragraphs(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<p>") {
        let body = &rest[start + 3..];
        let Some(end) = body.find("</p>") else { break };
        let mut text = String::new();
        let mut in_tag = false;
        for c in body[..end].chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        let text = text
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&");
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.split(' ').count() >= 8 {
            out.push(text);
        }
        rest = &body[end..];
    }
    out
}

fn write_fvecs(path: &Path, vectors: &[Vec<f32>]) -> std::io::Result<()> {
    let mut out = BufWriter::new(fs_err::File::create(path)?);
    for v in vectors {
        out.write_all(&(v.len() as i32).to_le_bytes())?;
        for x in v {
            out.write_all(&x.to_le_bytes())?;
        }
    }
    out.flush()
}

fn embed(
    encoder: &Encoder,
    texts: &[String],
    what: &str,
) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(64) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        out.extend(encoder.encode(&refs)?);
        eprint!(
            "\r{what}: {}/{} ({:.0}/s)   ",
            out.len(),
            texts.len(),
            out.len() as f64 / started.elapsed().as_secs_f64()
        );
    }
    eprintln!();
    Ok(out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(
        args.get(1)
            .ok_or("usage: corpus DIR [PASSAGES] [QUERIES]")?,
    );
    let max_passages: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let max_queries: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let sysroot = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()?;
    let html = PathBuf::from(String::from_utf8(sysroot.stdout)?.trim()).join("share/doc/rust/html");
    let mut files = Vec::new();
    for book in BOOKS {
        html_files(&html.join(book), &mut files);
    }
    if files.is_empty() {
        return Err(format!(
            "no HTML books under {} (rustup component add rust-docs)",
            html.display()
        )
        .into());
    }
    let mut seen = std::collections::HashSet::new();
    let (mut base, mut queries) = (Vec::new(), Vec::new());
    for (i, passage) in files
        .iter()
        .filter_map(|f| fs_err::read_to_string(f).ok())
        .flat_map(|h| paragraphs(&h))
        .filter(|p| seen.insert(p.clone()))
        .enumerate()
    {
        if i % 10 == 9 {
            if queries.len() < max_queries {
                let first = passage.split_inclusive(". ").next().unwrap_or(&passage);
                queries.push(first.trim().to_string());
            }
        } else if base.len() < max_passages {
            base.push(passage);
        }
    }
    eprintln!(
        "{} files: {} passages, {} queries",
        files.len(),
        base.len(),
        queries.len()
    );
    let encoder = Encoder::load(&models_dir().join(DEFAULT_MODEL), &Device::Cpu)?;
    let base_vectors = embed(&encoder, &base, "passages")?;
    let query_vectors = embed(&encoder, &queries, "queries")?;
    fs_err::create_dir_all(&dir)?;
    write_fvecs(&dir.join("base.fvecs"), &base_vectors)?;
    write_fvecs(&dir.join("queries.fvecs"), &query_vectors)?;
    fs_err::write(dir.join("passages.txt"), base.join("\n") + "\n")?;
    fs_err::write(dir.join("queries.txt"), queries.join("\n") + "\n")?;
    eprintln!("wrote {}", dir.display());
    Ok(())
}
