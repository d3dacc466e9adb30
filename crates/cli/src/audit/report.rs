//! The audit's report: one row per layer, as text or JSON.

use serde_json::{Value, json};

/// What one layer's probes found.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pass,
    /// What leaked, one line each.
    Leak(Vec<String>),
    /// Why the probes could not run.
    Skipped(String),
}

/// One row of the report.
#[derive(Debug, Clone)]
pub struct Layer {
    pub name: &'static str,
    pub mechanism: String,
    pub probes: Vec<String>,
    pub outcome: Outcome,
}

/// The audit's findings, one row per layer.
#[derive(Debug, Clone)]
pub struct AuditReport {
    pub layers: Vec<Layer>,
    /// Problems that are not leaks (a canary not dropped, say).
    pub warnings: Vec<String>,
}

impl AuditReport {
    /// Leaks found, over all layers.
    pub fn leaks(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match &l.outcome {
                Outcome::Leak(found) => found.len(),
                _ => 0,
            })
            .sum()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "leaks": self.leaks(),
            "warnings": self.warnings,
            "layers": self.layers.iter().map(|l| {
                let (result, details) = match &l.outcome {
                    Outcome::Pass => ("pass", Vec::new()),
                    Outcome::Leak(found) => ("LEAK", found.clone()),
                    Outcome::Skipped(why) => ("skipped", vec![why.clone()]),
                };
                json!({
                    "layer": l.name,
                    "mechanism": l.mechanism,
                    "probes": l.probes,
                    "result": result,
                    "details": details,
                })
            }).collect::<Vec<_>>(),
        })
    }

    /// The one-page text report.
    pub fn to_text(&self) -> String {
        let mut out = String::from("Bulkhead isolation audit\n\n");
        for l in &self.layers {
            let result = match &l.outcome {
                Outcome::Pass => "PASS".to_string(),
                Outcome::Leak(found) => format!("LEAK ({})", found.len()),
                Outcome::Skipped(_) => "SKIPPED".to_string(),
            };
            out += &format!("{:<10} {result}\n  mechanism: {}\n", l.name, l.mechanism);
            // The same probe runs in every direction: list each kind once.
            let mut kinds: Vec<&str> = Vec::new();
            for p in &l.probes {
                let kind = p
                    .split_once("->")
                    .and_then(|(_, rest)| rest.split_once(' '))
                    .map_or(p.as_str(), |(_, kind)| kind);
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
            out += &format!("  probes ({}): {}\n", l.probes.len(), kinds.join("; "));
            match &l.outcome {
                Outcome::Leak(found) => {
                    for f in found {
                        out += &format!("  leak: {f}\n");
                    }
                }
                Outcome::Skipped(why) => out += &format!("  skipped: {why}\n"),
                Outcome::Pass => {}
            }
        }
        for w in &self.warnings {
            out += &format!("warning: {w}\n");
        }
        out += &format!(
            "\n{}\n",
            if self.leaks() == 0 {
                "no leak found".to_string()
            } else {
                format!("{} leak(s) found", self.leaks())
            }
        );
        out
    }
}

/// Collects one layer's probes and leaks.
pub(super) struct Probe {
    name: &'static str,
    mechanism: String,
    probes: Vec<String>,
    leaks: Vec<String>,
    pub(super) skipped: Option<String>,
}

impl Probe {
    pub(super) fn new(name: &'static str, mechanism: impl Into<String>) -> Self {
        Probe {
            name,
            mechanism: mechanism.into(),
            probes: Vec::new(),
            leaks: Vec::new(),
            skipped: None,
        }
    }

    /// Replaces the mechanism text, once a probe has shown which applies.
    pub(super) fn mechanism(&mut self, mechanism: impl Into<String>) {
        self.mechanism = mechanism.into();
    }

    pub(super) fn ran(&mut self, probe: impl Into<String>) {
        self.probes.push(probe.into());
    }

    pub(super) fn leak(&mut self, what: impl Into<String>) {
        self.leaks.push(what.into());
    }

    pub(super) fn done(self) -> Layer {
        let outcome = match (self.leaks.is_empty(), self.skipped) {
            (false, _) => Outcome::Leak(self.leaks),
            (true, Some(why)) if self.probes.is_empty() => Outcome::Skipped(why),
            _ => Outcome::Pass,
        };
        Layer {
            name: self.name,
            mechanism: self.mechanism,
            probes: self.probes,
            outcome,
        }
    }
}
