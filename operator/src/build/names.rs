//! What a store's objects are called and where its components answer.
//!
//! The three [`Component`]s, the names of every object the operator makes, the ports and the
//! in-cluster URLs. Every name derives from the store's name (and a URL from its namespace)
//! alone, never from its spec: the clean-up on deletion and the status find a store's objects
//! even when its spec no longer validates, and the names never change for the life of a store.

/// One of a store's three components: a label value, a name suffix and a binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// The Raft-replicated order group (`order-replica`).
    Orders,
    /// The stateless catalog over the order group (`catalog`).
    Catalog,
    /// The public frontend (`frontend`).
    Frontend,
}

impl Component {
    /// Every component, in build order.
    pub const ALL: [Component; 3] = [Component::Orders, Component::Catalog, Component::Frontend];

    /// The `app.kubernetes.io/component` label value, also the suffix of its objects' names.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Orders => "orders",
            Component::Catalog => "catalog",
            Component::Frontend => "frontend",
        }
    }

    /// The binary its container runs (also the container's name).
    pub fn binary(self) -> &'static str {
        match self {
            Component::Orders => "order-replica",
            Component::Catalog => "catalog",
            Component::Frontend => "frontend",
        }
    }

    /// The port its container listens on.
    pub fn port(self) -> i32 {
        match self {
            Component::Orders => ORDER_PORT,
            Component::Catalog => CATALOG_PORT,
            Component::Frontend => FRONTEND_PORT,
        }
    }
}

/// Port of an order replica (clients, Raft RPC and admin API).
pub const ORDER_PORT: i32 = 7000;
/// The order replicas' peer port: Raft RPC between replicas only, on a listener of its own so
/// client connections cannot crowd it out.
pub const ORDER_RAFT_PORT: i32 = 7001;
/// Name of the peer port on containers and the headless Service.
pub const RAFT_PORT_NAME: &str = "raft";
/// Port of the catalog (its Service and its container).
pub const CATALOG_PORT: i32 = 7100;
/// Port the frontend container listens on.
pub const FRONTEND_PORT: i32 = 8080;
/// Port of the public frontend Service.
pub const FRONTEND_SERVICE_PORT: i32 = 80;
/// Name of every container and Service port.
pub const PORT_NAME: &str = "http";

/// Name of the order replicas' data volume claim template (and of its mount).
pub const DATA_VOLUME: &str = "data";

/// `{store}-{component}`: the component's workload, Service, ServiceAccount and NetworkPolicy
/// (and, for the orders and the catalog, the PodDisruptionBudget; for the orders, the
/// headless Service).
pub fn component_name(store: &str, component: Component) -> String {
    format!("{store}-{}", component.as_str())
}

/// `{store}-orders`: the order StatefulSet and its governing headless Service.
pub fn orders_name(store: &str) -> String {
    component_name(store, Component::Orders)
}

/// `{store}-orders-client`: the order group's ClusterIP Service.
pub fn orders_client_name(store: &str) -> String {
    format!("{}-client", orders_name(store))
}

/// `{store}-orders-{ordinal}`: the pod of order replica `ordinal` (also its Raft node id).
pub fn order_pod_name(store: &str, ordinal: i32) -> String {
    format!("{}-{ordinal}", orders_name(store))
}

/// `data-{store}-orders-{ordinal}`: the volume claim of order replica `ordinal`.
pub fn order_pvc_name(store: &str, ordinal: i32) -> String {
    format!("{DATA_VOLUME}-{}", order_pod_name(store, ordinal))
}

/// `{store}-raft-token`: the cluster token Secret.
pub fn token_secret_name(store: &str) -> String {
    format!("{store}-raft-token")
}

/// `{backup}-backup`: the Job of the ToyStoreBackup `backup`.
pub fn backup_job_name(backup: &str) -> String {
    format!("{backup}-backup")
}

/// `{store}-restore`: the Job that seeds order replica 0's volume of a store created from a
/// backup.
pub fn restore_job_name(store: &str) -> String {
    format!("{store}-restore")
}

/// `{store}-config`: the ConfigMap of settings.
pub fn config_map_name(store: &str) -> String {
    format!("{store}-config")
}

/// The stable URL of order replica `ordinal` through the headless Service, as it advertises
/// itself: `http://{store}-orders-{ordinal}.{store}-orders.{namespace}.svc:7000`.
pub fn order_replica_url(store: &str, namespace: &str, ordinal: i32) -> String {
    format!(
        "http://{}.{}.{namespace}.svc:{ORDER_PORT}",
        order_pod_name(store, ordinal),
        orders_name(store),
    )
}

/// The stable URL of order replica `ordinal`'s peer listener (Raft RPC):
/// `http://{store}-orders-{ordinal}.{store}-orders.{namespace}.svc:7001`.
pub fn order_replica_raft_url(store: &str, namespace: &str, ordinal: i32) -> String {
    format!(
        "http://{}.{}.{namespace}.svc:{ORDER_RAFT_PORT}",
        order_pod_name(store, ordinal),
        orders_name(store),
    )
}

/// The catalog's URL inside the cluster: `http://{store}-catalog.{namespace}.svc:7100`.
pub fn catalog_url(store: &str, namespace: &str) -> String {
    format!(
        "http://{}.{namespace}.svc:{CATALOG_PORT}",
        component_name(store, Component::Catalog)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_store_name() {
        assert_eq!(orders_name("shop"), "shop-orders");
        assert_eq!(orders_client_name("shop"), "shop-orders-client");
        assert_eq!(order_pod_name("shop", 2), "shop-orders-2");
        assert_eq!(order_pvc_name("shop", 2), "data-shop-orders-2");
        assert_eq!(token_secret_name("shop"), "shop-raft-token");
        assert_eq!(config_map_name("shop"), "shop-config");
        assert_eq!(
            backup_job_name("shop-202501010300"),
            "shop-202501010300-backup"
        );
        assert_eq!(restore_job_name("shop"), "shop-restore");
        assert_eq!(
            order_replica_url("shop", "toys", 2),
            "http://shop-orders-2.shop-orders.toys.svc:7000"
        );
        assert_eq!(
            catalog_url("shop", "toys"),
            "http://shop-catalog.toys.svc:7100"
        );
    }
}
