//! A replica whose volume is lost: it knows, it takes no part in the group until the membership
//! driver has replaced its old identity, and no acknowledged order is lost on the way.
//! Real `order-replica` processes, SIGKILL, and a data directory deleted from under them.

mod support;

use std::time::Duration;

use api::raft::RaftRole;
use support::{Cluster, Options, assert_dense, assert_orders_on, place_orders, wait_for};

/// Deletes replica `id`'s data directory (it must be stopped) and starts it again on an empty one.
async fn wipe_and_restart(cluster: &mut Cluster, id: u64) {
    assert!(!cluster.is_running(id), "replica {id} must be stopped");
    std::fs::remove_dir_all(cluster.data_dir(id)).unwrap();
    cluster.restart(id).await;
}

/// How many Raft RPCs replica `id` refused on `path` because it is not admitted.
async fn refused(cluster: &Cluster, id: u64, path: &str) -> u64 {
    let url = format!("{}/metrics", cluster.url(id));
    let Ok(resp) = reqwest::get(&url).await else {
        return 0;
    };
    let body = resp.text().await.unwrap_or_default();
    let prefix = format!("toystore_order_raft_rpc_refused_total{{path=\"{path}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follower_that_lost_its_volume_rejoins_with_every_acknowledged_order() {
    let mut cluster = Cluster::three(Options::default()).await;
    let leader = cluster.leader().await;
    let lost = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let before = cluster.status(lost).await.unwrap();
    assert!(before.admitted && before.initialized);

    // Orders flow while the follower's volume is lost.
    let load = tokio::spawn(place_orders(cluster.group(), "flowing", 600, 4));
    cluster.wait_applied(lost, 100).await;
    cluster.kill(lost);
    wipe_and_restart(&mut cluster, lost).await;

    let s = cluster.status(lost).await.unwrap();
    assert_ne!(
        s.data_id, before.data_id,
        "a new directory has a new identity"
    );
    assert!(!s.admitted, "a wiped replica is not admitted: {s:?}");
    assert!(!s.initialized, "a wiped replica holds no membership: {s:?}");
    // The leader's heartbeats do not make it look like a member again.
    wait_for(
        "the leader to be refused",
        Duration::from_secs(10),
        || async { (refused(&cluster, lost, "/raft/append").await > 0).then_some(()) },
    )
    .await;
    assert!(!cluster.status(lost).await.unwrap().initialized);

    // The driver removes the old identity, adds the replica as a learner and promotes it.
    cluster.converge(&[1, 2, 3]).await;
    let mut acked = load.await.unwrap();
    acked.extend(place_orders(cluster.group(), "after", 50, 2).await);

    let leader = cluster.leader().await;
    let s = cluster.status(leader).await.unwrap();
    assert_eq!(s.voters(), vec![1, 2, 3]);
    let replica = cluster.wait_applied(lost, s.applied_index.unwrap()).await;
    assert!(replica.admitted && replica.initialized);
    assert_eq!(replica.role, RaftRole::Follower);
    assert_orders_on(&cluster, lost, &acked).await;
    assert_dense(&cluster, lost, acked.len() as u64).await;
    // The leader replicates to it again.
    let matched = wait_for(
        "the leader to report the rejoined replica's matched index",
        Duration::from_secs(10),
        || async {
            let s = cluster.status(leader).await.ok()?;
            let m = s.members.iter().find(|m| m.id == lost)?.matched_index?;
            (m == s.last_log_index?).then_some(m)
        },
    )
    .await;
    assert!(matched >= replica.applied_index.unwrap());
}

/// Orders are committed on A and B while C is down; B's volume is lost, A stops. C, behind,
/// campaigns: the empty B must not vote for it, or C would lead without the orders A and B
/// acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_voter_never_helps_elect_a_leader_that_lacks_acknowledged_orders() {
    let mut cluster = Cluster::three(Options::default()).await;
    let a = cluster.leader().await;
    let mut others = [1, 2, 3].into_iter().filter(|id| *id != a);
    let (b, c) = (others.next().unwrap(), others.next().unwrap());

    cluster.kill(c);
    let acked = place_orders(cluster.group(), "on-a-and-b", 200, 4).await;
    cluster.kill(b);
    wipe_and_restart(&mut cluster, b).await;
    cluster.kill(a);
    cluster.restart(c).await;

    // C campaigns again and again; B refuses every request (or, were it to vote, C would win).
    wait_for(
        "C to ask the wiped B for votes three times, or a leader without A",
        Duration::from_secs(30),
        || async {
            let asked = refused(&cluster, b, "/raft/pre-vote").await
                + refused(&cluster, b, "/raft/vote").await;
            let mut leader = false;
            for id in [b, c] {
                leader |= cluster
                    .status(id)
                    .await
                    .is_ok_and(|s| s.role == RaftRole::Leader);
            }
            (asked >= 3 || leader).then_some(())
        },
    )
    .await;
    for id in [b, c] {
        let s = cluster.status(id).await.unwrap();
        assert_ne!(
            s.role,
            RaftRole::Leader,
            "replica {id} leads without A's acknowledged orders: {s:?}"
        );
    }

    // A comes back: the group elects a leader holding every order, and B is replaced.
    cluster.restart(a).await;
    cluster.converge(&[1, 2, 3]).await;
    let leader = cluster.leader().await;
    let applied = cluster.status(leader).await.unwrap().applied_index.unwrap();
    for id in [a, b, c] {
        cluster.wait_applied(id, applied).await;
        assert_orders_on(&cluster, id, &acked).await;
        assert_dense(&cluster, id, acked.len() as u64).await;
    }
}
