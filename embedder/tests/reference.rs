//! The candle encoder reproduces sentence-transformers' embeddings of
//! all-MiniLM-L6-v2 (fixtures/reference.json, made by
//! fixtures/make_reference.py): cosine >= 0.9999 for every sentence, in one
//! padded batch and one at a time.

mod common;

use common::encoder;

#[derive(serde::Deserialize)]
struct Reference {
    max_seq_length: usize,
    sentences: Vec<String>,
    embeddings: Vec<Vec<f32>>,
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn embeddings_match_sentence_transformers() {
    let reference: Reference =
        serde_json::from_str(include_str!("../fixtures/reference.json")).unwrap();
    let encoder = encoder();
    assert_eq!(encoder.max_seq_length(), reference.max_seq_length);
    assert_eq!(encoder.dimension(), reference.embeddings[0].len());
    let texts: Vec<&str> = reference.sentences.iter().map(String::as_str).collect();
    let batched = encoder.encode(&texts).unwrap();
    let mut worst = 1.0f64;
    for (i, (text, want)) in texts.iter().zip(&reference.embeddings).enumerate() {
        let alone = encoder.encode(&[text]).unwrap().remove(0);
        for (how, got) in [("batched", &batched[i]), ("alone", &alone)] {
            let c = cosine(got, want);
            assert!(c >= 0.9999, "sentence {i} ({how}): cosine {c:.6}");
            worst = worst.min(c);
        }
        let norm: f32 = alone.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "normalized: {norm}");
    }
    eprintln!("lowest cosine against sentence-transformers: {worst:.7}");
}
