//! Client connections cannot starve the group: Raft RPC has a listener of its own.
//!
//! The followers' client ports are filled past their connection limit with idle sockets (as an
//! unauthenticated client could), then the leader is SIGKILLed: the survivors must still reach
//! each other to elect a new leader, well before the idle sockets time out (10 s). Sharing one
//! listener, the vote requests would wait behind the idle sockets for seconds.

mod support;

use std::time::Duration;

use api::client::{ReplicaClient, http_client};
use api::raft::RaftRole;
use support::{Cluster, Options, TOKEN, wait_for};
use tokio::net::TcpStream;

/// More than a listener serves at once (`servicekit::Limits::PUBLIC`).
const IDLE_PER_REPLICA: usize = 1100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_client_connections_cannot_stop_a_new_leader_being_elected() {
    let mut cluster = Cluster::three(Options::default()).await;
    let old = cluster.leader().await;
    let survivors: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != old).collect();

    let mut idle = Vec::new();
    for &id in &survivors {
        let addr = cluster.url(id).trim_start_matches("http://").to_string();
        for _ in 0..IDLE_PER_REPLICA {
            idle.push(TcpStream::connect(&addr).await.expect("connect"));
        }
    }
    // The idle sockets are closed by the servers 10 s after they were accepted; the election
    // must come well before, which it cannot if it has to queue behind them.
    let killed = std::time::Instant::now();
    cluster.kill(old);
    let http = http_client(Duration::from_millis(300));
    // Asked on the peer ports, which the idle sockets do not touch.
    let peers: Vec<ReplicaClient> = survivors
        .iter()
        .map(|id| ReplicaClient::new(http.clone(), cluster.raft_url(*id), Some(TOKEN.into())))
        .collect();
    let new = wait_for(
        "a new leader while the client ports are full (before idle sockets time out)",
        Duration::from_secs(4),
        || async {
            for p in &peers {
                if let Ok(s) = p.status().await
                    && s.role == RaftRole::Leader
                {
                    return Some(s.id);
                }
            }
            None
        },
    )
    .await;
    eprintln!("new leader {:?} after the kill", killed.elapsed());
    assert_ne!(new, old);
    drop(idle);
}
