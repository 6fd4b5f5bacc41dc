//! openraft's own storage conformance suite (`openraft::testing`), the contract every log store
//! and state machine is expected to meet, run against ours on a real data directory.

use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;

use order_replica::log_store::LogStore;
use order_replica::state_machine::StateMachineStore;
use order_replica::types::TypeConfig;

/// A fresh log and state machine in a new temporary directory (dropped after each case).
struct OnDisk;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for OnDisk {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError<TypeConfig>> {
        let fail = |e: std::io::Error| StorageError::read(TypeConfig::err_from_error(&e));
        let dir = tempfile::tempdir().map_err(fail)?;
        let log = LogStore::open(dir.path()).map_err(fail)?;
        let state = StateMachineStore::open(dir.path()).map_err(fail)?;
        Ok((dir, log, state))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_store_and_state_machine_pass_openraft_storage_suite() {
    Suite::test_all(OnDisk)
        .await
        .expect("openraft storage suite");
}
