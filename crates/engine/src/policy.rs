//! Who a registered model may serve: the consent its lineage tenants'
//! contracts give, checked when the model is registered and each time it
//! embeds a tenant's texts.

use crate::contract::Contract;
use crate::error::{EngineError, Result};
use crate::manifest::ModelRecord;
use crate::name::TenantName;

/// Why a model may not serve a tenant, in words that name the policy and
/// never another tenant. Only the digest: a model's name is the admin's
/// free text and may well mention the tenants whose data shaped it.
pub fn refusal(model: &ModelRecord) -> EngineError {
    EngineError::PolicyRefused(format!(
        "policy lineage-consent: the model with digest {} was shaped by data whose owners' contracts do not allow it to serve this tenant; the admin can assign a model whose lineage is public data, this tenant's own data, or that of tenants consenting to pool with it",
        model.short_digest()
    ))
}

/// Whether `model` may embed the texts of `tenant`: every tenant in its
/// lineage still exists, its contract allows training together with the
/// rest of the lineage, and it consents to serving `tenant` (its own
/// data always serves itself, if it may train at all).
pub fn may_serve(
    model: &ModelRecord,
    tenant: &TenantName,
    contract_of: impl Fn(&TenantName) -> Option<Contract>,
) -> bool {
    model.tenants.iter().all(|owner| {
        let Some(contract) = contract_of(owner) else {
            return false;
        };
        let others = model.tenants.iter().filter(|t| *t != owner);
        contract.allows_training_with(others) && contract.consents_to_serving(owner, tenant)
    })
}

/// Whether the lineage tenants' contracts allow the model to exist at all
/// (checked when it is registered): each allows training with the others.
pub fn lineage_allowed(
    model: &ModelRecord,
    contract_of: impl Fn(&TenantName) -> Option<Contract>,
) -> Result<()> {
    for owner in &model.tenants {
        let Some(contract) = contract_of(owner) else {
            return Err(EngineError::PolicyRefused(format!(
                "policy training-consent: the lineage names tenant {owner}, which does not exist"
            )));
        };
        let others = model.tenants.iter().filter(|t| *t != owner);
        if !contract.allows_training_with(others) {
            return Err(EngineError::PolicyRefused(format!(
                "policy training-consent: tenant {owner}'s contract (version {}) does not allow its data to train this model",
                contract.version
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::contract::Training;

    const DIGEST: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";

    #[test]
    fn who_a_model_may_serve() {
        let name = |s: &str| TenantName::parse(s).unwrap();
        let record = |tenants: &[&str]| ModelRecord {
            name: "m".into(),
            digest: DIGEST.into(),
            tenants: tenants.iter().map(|t| name(t)).collect(),
            public: vec![],
            registered_unix_ms: 0,
            manifest: String::new(),
        };
        let mut contracts: HashMap<TenantName, Contract> = HashMap::new();
        let set = |c: &mut HashMap<TenantName, Contract>, t: &str, training: Training| {
            c.insert(
                name(t),
                Contract {
                    training,
                    ..Contract::default()
                },
            );
        };
        let pooled = |with: &[&str]| Training::Pooled(with.iter().map(|t| name(t)).collect());
        set(&mut contracts, "a", Training::Own);
        set(&mut contracts, "b", pooled(&["a"]));
        set(&mut contracts, "c", Training::None);
        set(&mut contracts, "d", pooled(&["b"]));
        let serve = |m: &ModelRecord, t: &str, c: &HashMap<TenantName, Contract>| {
            may_serve(m, &name(t), |o| c.get(o).cloned())
        };
        // Public only: everyone.
        assert!(serve(&record(&[]), "c", &contracts));
        // Own data: the owner, if its contract allows training.
        assert!(serve(&record(&["a"]), "a", &contracts));
        assert!(!serve(&record(&["a"]), "b", &contracts));
        assert!(!serve(&record(&["c"]), "c", &contracts));
        // b consents to pooling with a: a b-only model may serve a and b.
        assert!(serve(&record(&["b"]), "a", &contracts));
        assert!(!serve(&record(&["b"]), "d", &contracts));
        // a pooled a+b model: a's contract is own-only, so nobody.
        assert!(!serve(&record(&["a", "b"]), "a", &contracts));
        // Consent given, then withdrawn.
        set(&mut contracts, "a", pooled(&["b"]));
        assert!(serve(&record(&["a", "b"]), "a", &contracts));
        assert!(serve(&record(&["a", "b"]), "b", &contracts));
        set(&mut contracts, "b", Training::Own);
        assert!(!serve(&record(&["a", "b"]), "a", &contracts));
        assert!(!serve(&record(&["a", "b"]), "b", &contracts));
        // A dropped contributor cannot consent.
        assert!(!serve(&record(&["gone"]), "a", &contracts));
        assert!(lineage_allowed(&record(&["a"]), |o| contracts.get(o).cloned()).is_ok());
        let err = lineage_allowed(&record(&["c"]), |o| contracts.get(o).cloned())
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not allow"), "{err}");
    }
}
