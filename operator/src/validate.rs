//! Validation of a ToyStore spec, the first step of the reconcile pipeline.
//!
//! The CRD schema already refuses most bad specs at the API server. This step repeats the rules
//! the operator relies on, so a resource that slipped past the schema (an older CRD, a disabled
//! validation) gets a clear `InvalidSpec` condition and event instead of broken objects.

use crate::crd::ToyStoreSpec;

/// A spec the rest of the pipeline may trust.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidSpec(pub ToyStoreSpec);

/// Checks the spec; returns every problem found, each a sentence for a person.
pub fn validate(spec: &ToyStoreSpec) -> Result<ValidSpec, Vec<String>> {
    let mut problems = Vec::new();
    if spec.image.trim().is_empty() {
        problems.push("image must name a container image".to_string());
    }
    let r = spec.orders.replicas;
    if !(1..=9).contains(&r) || r % 2 == 0 {
        problems.push(format!(
            "orders.replicas must be odd and between 1 and 9, got {r}"
        ));
    }
    for (what, size) in [
        ("orders.storage.size", &spec.orders.storage.size),
        ("catalog.storage.size", &spec.catalog.storage.size),
    ] {
        if !is_size(size) {
            problems.push(format!(
                "{what} must look like 1Gi, 500Mi or 2Ti, got {size:?}"
            ));
        }
    }
    let raft = &spec.orders.raft;
    if raft.election_timeout_min_ms >= raft.election_timeout_max_ms {
        problems.push("raft.electionTimeoutMinMs must be below raft.electionTimeoutMaxMs".into());
    }
    if raft.heartbeat_ms <= 0 || raft.heartbeat_ms * 3 > raft.election_timeout_min_ms {
        problems.push(
            "raft.heartbeatMs must be positive and at most a third of raft.electionTimeoutMinMs"
                .into(),
        );
    }
    if !(1..=86_400).contains(&spec.catalog.restock_interval_seconds) {
        problems.push("catalog.restockIntervalSeconds must be between 1 and 86400".into());
    }
    if spec.frontend.replicas < 1 {
        problems.push("frontend.replicas must be at least 1".into());
    }
    if !["ClusterIP", "NodePort", "LoadBalancer"].contains(&spec.frontend.service_type.as_str()) {
        problems.push(format!(
            "frontend.serviceType must be ClusterIP, NodePort or LoadBalancer, got {:?}",
            spec.frontend.service_type
        ));
    }
    if problems.is_empty() {
        Ok(ValidSpec(spec.clone()))
    } else {
        Err(problems)
    }
}

fn is_size(s: &str) -> bool {
    let digits = s.trim_end_matches(['M', 'G', 'T', 'i']);
    let unit = &s[digits.len()..];
    ["Mi", "Gi", "Ti"].contains(&unit)
        && !digits.is_empty()
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ToyStoreSpec {
        serde_json::from_value(serde_json::json!({"image": "toystore:1"})).unwrap()
    }

    #[test]
    fn defaults_are_valid() {
        assert!(validate(&spec()).is_ok());
    }

    #[test]
    fn even_or_out_of_range_replica_counts_are_refused() {
        for r in [0, 2, 4, 10, 11, -1] {
            let mut s = spec();
            s.orders.replicas = r;
            let err = validate(&s).unwrap_err();
            assert!(err[0].contains("orders.replicas"), "{r}: {err:?}");
        }
        for r in [1, 3, 5, 7, 9] {
            let mut s = spec();
            s.orders.replicas = r;
            assert!(validate(&s).is_ok(), "{r}");
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let mut s = spec();
        s.image = " ".into();
        s.orders.storage.size = "1GB".into();
        s.orders.raft.heartbeat_ms = 400;
        s.frontend.service_type = "Ingress".into();
        assert_eq!(validate(&s).unwrap_err().len(), 4);
    }

    #[test]
    fn sizes() {
        for ok in ["1Gi", "500Mi", "2Ti", "10Gi"] {
            assert!(is_size(ok), "{ok}");
        }
        for bad in ["", "Gi", "0Gi", "1G", "1GB", "1.5Gi", "01Gi", "1gi"] {
            assert!(!is_size(bad), "{bad}");
        }
    }
}
