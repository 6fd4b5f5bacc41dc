//! The operator's permissions: [`rules`] is the one list the Helm chart and the plain manifests
//! must grant (the packaging tests compare them), and [`Access::of_request`] with [`allows`]
//! checks a request against it (the reconcile and controller tests check every request the
//! operator sends).

use k8s_openapi::api::rbac::v1::PolicyRule;

/// One permission as RBAC sees a request: verb, API group and resource (with its subresource,
/// as `toystores/status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// `get`, `list`, `watch`, `create`, `patch`, `update`, `delete` or `deletecollection`.
    pub verb: String,
    /// API group (`""` for the core group).
    pub group: String,
    /// Resource, or `resource/subresource`.
    pub resource: String,
    /// Namespace of the request, if namespaced.
    pub namespace: Option<String>,
}

/// What the operator may do, and why. Everything is namespaced: with a list of watched
/// namespaces, the chart grants these rules per namespace in a Role instead of a ClusterRole.
pub fn rules() -> Vec<PolicyRule> {
    vec![
        // The controller watches stores; the finalizer is added and removed by patch; a
        // backup's round reads its store.
        rule(
            "toystore.dev",
            &["toystores"],
            &["get", "list", "watch", "patch"],
        ),
        rule("toystore.dev", &["toystores/status"], &["patch"]),
        // Backups: watched by their controller (and cached for the stores' schedules), created
        // by a store's schedule, deleted by its retention.
        rule(
            "toystore.dev",
            &["toystorebackups"],
            &["list", "watch", "create", "delete"],
        ),
        rule("toystore.dev", &["toystorebackups/status"], &["patch"]),
        // Owner references with blockOwnerDeletion need this where the API server enforces
        // OwnerReferencesPermissionEnforcement (OpenShift, hardened clusters): a store owns its
        // objects, a backup its Job.
        rule(
            "toystore.dev",
            &["toystores/finalizers", "toystorebackups/finalizers"],
            &["update"],
        ),
        // The Raft token: created once, read once per operator process, never listed.
        rule("", &["secrets"], &["get", "create"]),
        // Objects the operator applies: watched (list, watch) into the caches each round reads
        // instead of GETs; server-side apply creates missing ones, so `create`. The order
        // group is a StatefulSet, the catalog and the frontend are Deployments.
        rule(
            "",
            &["configmaps", "services", "serviceaccounts"],
            &["list", "watch", "create", "patch"],
        ),
        rule(
            "apps",
            &["statefulsets", "deployments"],
            &["list", "watch", "create", "patch"],
        ),
        rule(
            "policy",
            &["poddisruptionbudgets"],
            &["list", "watch", "create", "patch"],
        ),
        rule(
            "networking.k8s.io",
            &["networkpolicies"],
            &["list", "watch", "create", "patch"],
        ),
        // Backup and restore Jobs: created once, never changed or deleted (their owners'
        // deletion removes them); watched (a store's restore Job into its cache); a backup's
        // round reads its own.
        rule("batch", &["jobs"], &["get", "list", "watch", "create"]),
        // Rolling upgrade deletes order pods one by one; watched for the caches; a backup's
        // round lists its Job's pod to read the result it left.
        rule("", &["pods"], &["list", "watch", "delete"]),
        // Scale-down and deletion remove the volumes of departed replicas; a restore creates
        // replica 0's before the StatefulSet does. Watched for the caches.
        rule(
            "",
            &["persistentvolumeclaims"],
            &["list", "watch", "create", "delete"],
        ),
        rule("events.k8s.io", &["events"], &["create", "patch"]),
    ]
}

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
    PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        ..PolicyRule::default()
    }
}

/// Whether `rules` grant `access` (wildcards included; resource names and non-resource URLs
/// are not used by the operator and grant nothing here).
pub fn allows(rules: &[PolicyRule], access: &Access) -> bool {
    let has = |list: &Option<Vec<String>>, want: &str| {
        list.iter()
            .flatten()
            .any(|item| item == "*" || item == want)
    };
    rules.iter().any(|r| {
        r.resource_names.as_ref().is_none_or(|n| n.is_empty())
            && (r.verbs.iter().any(|v| v == "*" || *v == access.verb))
            && has(&r.api_groups, &access.group)
            && has(&r.resources, &access.resource)
    })
}

impl Access {
    /// The permissions a request to the API server needs. A server-side apply patch
    /// (`apply`) of an object needs `create` as well as `patch`, because it creates a missing
    /// object; one of a subresource (`status`) never creates.
    /// `None` for a path that is not a resource request.
    pub fn of_request(method: &str, path: &str, query: &str, apply: bool) -> Option<Vec<Access>> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, rest) = match parts.as_slice() {
            ["api", _version, rest @ ..] => ("", rest),
            ["apis", group, _version, rest @ ..] => (*group, rest),
            _ => return None,
        };
        let (namespace, rest) = match rest {
            ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
            rest => (None, rest),
        };
        let (resource, named, sub) = match rest {
            [resource] => (resource.to_string(), false, false),
            [resource, _name] => (resource.to_string(), true, false),
            [resource, _name, sub] => (format!("{resource}/{sub}"), true, true),
            _ => return None,
        };
        let watch = query
            .split('&')
            .any(|kv| kv == "watch=true" || kv == "watch=1");
        let verbs: &[&str] = match (method, named) {
            ("GET", true) => &["get"],
            ("GET", false) if watch => &["watch"],
            ("GET", false) => &["list"],
            ("POST", _) => &["create"],
            ("PUT", _) => &["update"],
            ("PATCH", _) if apply && !sub => &["patch", "create"],
            ("PATCH", _) => &["patch"],
            ("DELETE", true) => &["delete"],
            ("DELETE", false) => &["deletecollection"],
            _ => return None,
        };
        Some(
            verbs
                .iter()
                .map(|verb| Access {
                    verb: verb.to_string(),
                    group: group.to_string(),
                    resource: resource.clone(),
                    namespace: namespace.clone(),
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(method: &str, path: &str, query: &str) -> Access {
        let mut all = Access::of_request(method, path, query, false).unwrap();
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    fn access(verb: &str, group: &str, resource: &str) -> Access {
        Access {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            namespace: Some("shop".into()),
        }
    }

    #[test]
    fn requests_map_to_verbs_groups_and_resources() {
        let ns = "/api/v1/namespaces/shop";
        assert_eq!(
            one("GET", &format!("{ns}/secrets/t"), ""),
            access("get", "", "secrets")
        );
        assert_eq!(
            one("GET", &format!("{ns}/pods"), "labelSelector=a%3Db"),
            access("list", "", "pods")
        );
        assert_eq!(
            one(
                "GET",
                "/apis/apps/v1/namespaces/shop/statefulsets",
                "watch=true&x=1"
            ),
            access("watch", "apps", "statefulsets")
        );
        assert_eq!(
            one(
                "PATCH",
                "/apis/toystore.dev/v1alpha1/namespaces/shop/toystores/s/status",
                ""
            ),
            access("patch", "toystore.dev", "toystores/status")
        );
        assert_eq!(
            one("DELETE", &format!("{ns}/persistentvolumeclaims/d"), ""),
            access("delete", "", "persistentvolumeclaims")
        );
        let all = Access::of_request("GET", "/apis/toystore.dev/v1alpha1/toystores", "", false);
        assert_eq!(all.unwrap()[0].namespace, None);
        let applied = Access::of_request("PATCH", &format!("{ns}/services/s"), "", true).unwrap();
        let verbs: Vec<_> = applied.iter().map(|a| a.verb.as_str()).collect();
        assert_eq!(verbs, ["patch", "create"]);
        let status = "/apis/toystore.dev/v1alpha1/namespaces/shop/toystores/s/status";
        assert_eq!(
            Access::of_request("PATCH", status, "", true).unwrap().len(),
            1
        );
        assert_eq!(Access::of_request("GET", "/version", "", false), None);
    }

    #[test]
    fn the_rules_grant_what_is_listed_and_nothing_else() {
        let rules = rules();
        assert!(allows(&rules, &access("create", "", "secrets")));
        assert!(allows(
            &rules,
            &access("patch", "toystore.dev", "toystores/status")
        ));
        assert!(allows(&rules, &access("delete", "", "pods")));
        assert!(allows(&rules, &access("create", "batch", "jobs")));
        assert!(allows(
            &rules,
            &access("create", "", "persistentvolumeclaims")
        ));
        assert!(allows(
            &rules,
            &access("delete", "toystore.dev", "toystorebackups")
        ));
        // Secrets are never listed or changed, pods never created, nothing deleted en masse,
        // Jobs never changed or deleted, a backup's spec never changed.
        assert!(!allows(&rules, &access("delete", "batch", "jobs")));
        assert!(!allows(&rules, &access("patch", "batch", "jobs")));
        assert!(!allows(
            &rules,
            &access("patch", "toystore.dev", "toystorebackups")
        ));
        assert!(!allows(&rules, &access("list", "", "secrets")));
        assert!(!allows(&rules, &access("patch", "", "secrets")));
        assert!(!allows(&rules, &access("create", "", "pods")));
        assert!(!allows(
            &rules,
            &access("deletecollection", "", "persistentvolumeclaims")
        ));
        // A resource name of another group does not match.
        assert!(!allows(&rules, &access("list", "toystore.dev", "pods")));
    }

    #[test]
    fn wildcards_match_and_resource_names_grant_nothing_here() {
        let wildcard = vec![rule("*", &["*"], &["*"])];
        assert!(allows(&wildcard, &access("delete", "apps", "deployments")));
        let named = vec![PolicyRule {
            resource_names: Some(vec!["one".into()]),
            ..rule("", &["secrets"], &["get"])
        }];
        assert!(!allows(&named, &access("get", "", "secrets")));
    }
}
