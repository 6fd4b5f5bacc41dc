//! Validation of a ToyStore spec, the first step of the reconcile pipeline.
//!
//! The CRD schema already refuses most bad specs at the API server. This step repeats the rules
//! the operator relies on, so a resource that slipped past the schema (an older CRD, a disabled
//! validation) gets a clear `InvalidSpec` condition and event instead of broken objects.

use kube::ResourceExt;

use crate::crd::{MAX_NAME_LENGTH, ToyStore, ToyStoreSpec};

/// A spec the rest of the pipeline may trust.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidSpec(pub ToyStoreSpec);

/// Checks the store's name and spec; returns every problem found, each a sentence for a person.
pub fn validate(store: &ToyStore) -> Result<ValidSpec, Vec<String>> {
    let spec = &store.spec;
    let mut problems = Vec::new();
    let name = store.name_any();
    if !is_dns1035_label(&name) {
        problems.push(format!(
            "the name {name:?} is not a DNS-1035 label (lowercase letters, digits and '-', starting with a letter, ending with a letter or digit): it names the store's Services"
        ));
    }
    if name.len() > MAX_NAME_LENGTH {
        problems.push(format!(
            "the name {name:?} is longer than {MAX_NAME_LENGTH} characters"
        ));
    }
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

/// `^[a-z]([-a-z0-9]*[a-z0-9])?$`, the same as the CRD's `NAME_RULE`.
fn is_dns1035_label(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(u8::is_ascii_lowercase)
        && b.last()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
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

    fn check(s: &ToyStoreSpec) -> Result<ValidSpec, Vec<String>> {
        validate(&ToyStore::new("shop", s.clone()))
    }

    #[test]
    fn defaults_are_valid() {
        assert!(check(&spec()).is_ok());
    }

    #[test]
    fn even_or_out_of_range_replica_counts_are_refused() {
        for r in [0, 2, 4, 10, 11, -1] {
            let mut s = spec();
            s.orders.replicas = r;
            let err = check(&s).unwrap_err();
            assert!(err[0].contains("orders.replicas"), "{r}: {err:?}");
        }
        for r in [1, 3, 5, 7, 9] {
            let mut s = spec();
            s.orders.replicas = r;
            assert!(check(&s).is_ok(), "{r}");
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let mut s = spec();
        s.image = " ".into();
        s.orders.storage.size = "1GB".into();
        s.orders.raft.heartbeat_ms = 400;
        s.frontend.service_type = "Ingress".into();
        assert_eq!(check(&s).unwrap_err().len(), 4);
    }

    #[test]
    fn names_must_be_dns_1035_labels_of_at_most_40_characters() {
        let long = "a".repeat(41);
        for bad in [
            "my.shop",
            "1shop",
            "Shop",
            "shop-",
            "-shop",
            "",
            long.as_str(),
        ] {
            let err = validate(&ToyStore::new(bad, spec())).unwrap_err();
            assert!(err.iter().all(|e| e.contains("name")), "{bad}: {err:?}");
        }
        for good in ["shop", "a-1", "a", "a".repeat(40).as_str()] {
            assert!(validate(&ToyStore::new(good, spec())).is_ok(), "{good}");
        }
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
