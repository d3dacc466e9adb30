//! `bulkhead admin export-training-data`: the texts of consenting tenants
//! as tenant-tagged JSON lines, with a CycloneDX 1.6 manifest of the data
//! (one `data` component per tenant: its SHA-256, record count and the
//! contract version that allowed the export). `bulkhead admin model
//! register --from-export DIR` builds a model's lineage manifest from it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use bulkhead_client::AdminClient;
use serde_json::{Value, json};
use sha2::Digest as _;

use super::{CliResult, hex};

pub const DATA_FILE: &str = "data.jsonl";
pub const MANIFEST_FILE: &str = "manifest.cdx.json";

#[derive(Default)]
struct PerTenant {
    records: u64,
    hasher: sha2::Sha256,
    contract_version: u64,
}

fn serial_number() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A CycloneDX 1.6 BOM about `subject` (its `metadata.component`).
fn bom(subject: Value, components: Vec<Value>) -> Value {
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial_number(),
        "version": 1,
        "metadata": {"component": subject},
        "components": components,
    })
}

/// Writes the export of `tenants` into `out` (created; must be empty) and
/// returns a summary.
pub async fn export(admin: &AdminClient, tenants: Vec<String>, out: &Path) -> CliResult<Value> {
    if out.exists() && fs_err::read_dir(out)?.next().is_some() {
        return Err(format!("{} is not empty", out.display()).into());
    }
    let mut stream = admin.export_training_data(tenants.clone()).await?;
    fs_err::create_dir_all(out)?;
    let mut file = std::io::BufWriter::new(fs_err::File::create(out.join(DATA_FILE))?);
    let mut per: BTreeMap<String, PerTenant> = tenants
        .iter()
        .map(|t| (t.clone(), PerTenant::default()))
        .collect();
    while let Some(record) = stream.message().await? {
        let payload = record
            .payload
            .map(|s| {
                Value::Object(bulkhead_client::json::from_struct(s, "payload").unwrap_or_default())
            })
            .unwrap_or(Value::Null);
        let mut line = serde_json::to_vec(&json!({
            "tenant": record.tenant,
            "id": record.id,
            "text": record.text,
            "payload": payload,
        }))?;
        line.push(b'\n');
        file.write_all(&line)?;
        let entry = per.entry(record.tenant).or_default();
        entry.records += 1;
        entry.hasher.update(&line);
        entry.contract_version = record.contract_version;
    }
    file.flush()?;

    let mut components = Vec::new();
    let mut summary = Vec::new();
    for (tenant, entry) in per {
        let digest = hex(&entry.hasher.finalize());
        let mut properties = vec![
            json!({"name": "bulkhead:tenant", "value": tenant}),
            json!({"name": "bulkhead:records", "value": entry.records.to_string()}),
        ];
        if entry.contract_version > 0 {
            properties.push(json!({"name": "bulkhead:contract-version", "value": entry.contract_version.to_string()}));
        }
        components.push(json!({
            "type": "data",
            "bom-ref": format!("export-{tenant}"),
            "name": format!("{tenant} training export"),
            "description": format!("the JSON lines of {DATA_FILE} whose tenant is {tenant}, in file order (SHA-256 over those lines)"),
            "hashes": [{"alg": "SHA-256", "content": digest}],
            "data": [{"type": "dataset", "name": tenant, "contents": {"url": DATA_FILE}, "classification": "tenant-confidential"}],
            "properties": properties,
        }));
        summary.push(json!({
            "tenant": tenant,
            "records": entry.records,
            "sha256": digest,
            "contract_version": entry.contract_version,
        }));
    }
    let manifest = bom(
        json!({
            "type": "data",
            "bom-ref": "export",
            "name": "bulkhead training export",
        }),
        components,
    );
    fs_err::write(
        out.join(MANIFEST_FILE),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    Ok(json!({ "out": out.display().to_string(), "tenants": summary }))
}

/// A model's lineage manifest built from an export's: the model of
/// `digest` as `metadata.component`, trained on the export's data.
pub fn model_manifest_from_export(export: &Path, name: &str, digest: &str) -> CliResult<String> {
    let text = fs_err::read_to_string(export.join(MANIFEST_FILE))?;
    let export_bom: Value = serde_json::from_str(&text)?;
    let data: Vec<Value> = export_bom
        .get("components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("data"))
        .cloned()
        .collect();
    if data.is_empty() {
        return Err(format!(
            "{} lists no data components",
            export.join(MANIFEST_FILE).display()
        )
        .into());
    }
    let datasets: Vec<Value> = data
        .iter()
        .filter_map(|c| c.get("bom-ref").cloned())
        .map(|r| json!({ "ref": r }))
        .collect();
    let manifest = bom(
        json!({
            "type": "machine-learning-model",
            "bom-ref": "model",
            "name": name,
            "hashes": [{"alg": "SHA-256", "content": digest}],
            "modelCard": {"modelParameters": {"datasets": datasets}},
        }),
        data,
    );
    Ok(serde_json::to_string_pretty(&manifest)?)
}
