//! The replica's command line: [`api::settings::OrderReplica`], every flag and `ORDER_*`
//! variable (written once, there, for the operator and the launcher too), and how it resolves
//! into the [`Settings`] a replica runs with.

use std::time::Duration;

use anyhow::Context;
use api::settings::OrderReplica;
use clap::Parser;

use crate::replica::RaftTiming;
use crate::server::Settings;

/// One replica of the ToyStore order service (Raft-replicated, durable).
///
/// The replica never initializes a group by itself: the membership driver (`toystore up` or the
/// operator) initializes a new group once and adds members through the admin API.
#[derive(Debug, Clone, Parser)]
#[command(name = "order-replica", version = api::VERSION, about)]
pub struct Args {
    /// Every setting (see [`OrderReplica`]).
    #[command(flatten)]
    pub settings: OrderReplica,
}

impl TryFrom<&OrderReplica> for Settings {
    type Error = anyhow::Error;

    /// The replica's settings, with the cluster token read from `--token` or `--token-file` and
    /// the defaults of the settings not given.
    fn try_from(given: &OrderReplica) -> anyhow::Result<Self> {
        let token = servicekit::read_token(given.token.clone(), given.token_file.as_deref())
            .map_err(anyhow::Error::msg)?
            .context("a cluster token is required: --token or --token-file")?;
        let ms = |value: Option<u64>, default| Duration::from_millis(value.unwrap_or(default));
        Ok(Settings {
            id: given.id.context("--id is required")?,
            advertise_url: given.advertise_url.clone(),
            raft_advertise_url: given.raft_advertise_url.clone(),
            data_dir: given.data_dir.clone().context("--data-dir is required")?,
            token,
            timing: RaftTiming {
                heartbeat: ms(given.heartbeat_ms, OrderReplica::DEFAULT_HEARTBEAT_MS),
                election_min: ms(
                    given.election_timeout_min_ms,
                    OrderReplica::DEFAULT_ELECTION_TIMEOUT_MIN_MS,
                ),
                election_max: ms(
                    given.election_timeout_max_ms,
                    OrderReplica::DEFAULT_ELECTION_TIMEOUT_MAX_MS,
                ),
                snapshot_threshold: given
                    .snapshot_threshold
                    .unwrap_or(OrderReplica::DEFAULT_SNAPSHOT_THRESHOLD),
                logs_to_keep: given
                    .logs_to_keep
                    .unwrap_or(OrderReplica::DEFAULT_LOGS_TO_KEEP),
            },
        })
    }
}
