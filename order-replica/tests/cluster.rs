//! Distributed behaviour of the order group: on real `order-replica` processes where a test
//! kills, signals or restarts one, in this process otherwise.

mod support;

use std::time::{Duration, Instant};

use api::raft::RaftRole;
use nix::sys::signal::Signal;
use support::{Cluster, Options, assert_dense, assert_orders_on, order, place_orders, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_elect_one_leader_and_every_replica_serves_orders() {
    let cluster = Cluster::three_in_process(Options::default()).await;
    let leader = cluster.leader().await;
    let mut leaders = 0;
    for id in [1, 2, 3] {
        let s = cluster.status(id).await.unwrap();
        assert_eq!(
            s.leader,
            Some(leader),
            "replica {id} follows another leader"
        );
        assert_eq!(s.voters(), vec![1, 2, 3]);
        leaders += usize::from(s.role == RaftRole::Leader);
    }
    assert_eq!(leaders, 1);

    // Initialize again: the same members change nothing (200); other members are refused
    // (409, naming the group's voters), never silently ignored.
    let same = api::raft::InitializeRequest {
        members: cluster.members(&[1, 2, 3]),
    };
    for id in [1, 2, 3] {
        let answer = cluster.client(id).initialize(&same).await.unwrap();
        assert!(!answer.changed, "{answer:?}");
    }
    let other = api::raft::InitializeRequest {
        members: cluster.members(&[1, 2]),
    };
    let err = cluster.client(1).initialize(&other).await.unwrap_err();
    assert_eq!(err.status(), Some(reqwest::StatusCode::CONFLICT), "{err}");
    let url = cluster.url(3);
    assert!(err.to_string().contains(&format!("3 at {url}")), "{err}");
    assert_eq!(cluster.status(1).await.unwrap().voters(), vec![1, 2, 3]);

    let acked = place_orders(cluster.group(), "basic", 50, 4).await;
    assert_dense(&cluster, leader, 50).await;
    for id in [1, 2, 3] {
        assert_orders_on(&cluster, id, &acked).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_sigkill_loses_no_acknowledged_order() {
    let mut cluster = Cluster::three(Options::default()).await;
    let old = cluster.leader().await;
    let group = cluster.group();

    // Orders flow while the leader is killed.
    let load = tokio::spawn(place_orders(group.clone(), "failover", 400, 8));
    let during = place_orders(group.clone(), "before-kill", 50, 2).await;
    cluster.kill(old);
    let mut acked = load.await.unwrap();
    acked.extend(during);

    let new = cluster.leader().await;
    assert_ne!(new, old, "a new leader is elected among the survivors");
    acked.extend(place_orders(group.clone(), "after-kill", 50, 4).await);
    assert_dense(&cluster, new, acked.len() as u64).await;
    for id in [1, 2, 3].into_iter().filter(|id| *id != old) {
        assert_orders_on(&cluster, id, &acked).await;
    }

    // The old leader comes back on its data and catches up.
    cluster.restart(old).await;
    let target = cluster.status(new).await.unwrap().applied_index.unwrap();
    let s = cluster.wait_applied(old, target).await;
    assert_ne!(s.role, RaftRole::Leader);
    assert_orders_on(&cluster, old, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replica_down_during_compaction_catches_up_by_snapshot() {
    let options = Options {
        snapshot_threshold: 1000,
        logs_to_keep: 100,
        ..Options::default()
    };
    let mut cluster = Cluster::three(options).await;
    let leader = cluster.leader().await;
    let down = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let before = place_orders(cluster.group(), "early", 20, 2).await;
    let behind_at = cluster.status(down).await.unwrap().applied_index.unwrap();
    cluster.kill(down);

    // 10,000 purchases while it is down: 10,000 log entries (one each), compacted many times.
    let mut acked = place_orders(cluster.group(), "while-down", 10_000, 32).await;
    acked.extend(before);
    let leader = cluster.leader().await;
    let s = cluster.status(leader).await.unwrap();
    assert!(
        s.last_log_index.unwrap() >= 10_000,
        "at least 10k entries committed: {s:?}"
    );
    assert!(
        s.purged_index.unwrap_or(0) > behind_at,
        "the leader compacted past what the down replica has: {s:?}"
    );

    cluster.restart(down).await;
    let target = s.applied_index.unwrap();
    let caught_up = cluster.wait_applied(down, target).await;
    assert!(
        caught_up.snapshot_index.unwrap_or(0) > behind_at,
        "the replica installed a snapshot: {caught_up:?}"
    );
    assert_dense(&cluster, down, acked.len() as u64).await;
    assert_orders_on(&cluster, down, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_replicas_sigkilled_and_restarted_recover_every_order() {
    let options = Options {
        snapshot_threshold: 300,
        logs_to_keep: 50,
        ..Options::default()
    };
    let mut cluster = Cluster::three(options).await;
    let acked = place_orders(cluster.group(), "crash-all", 400, 8).await;
    for id in [1, 2, 3] {
        cluster.kill(id);
    }
    for id in [1, 2, 3] {
        cluster.restart(id).await;
    }
    let leader = cluster.leader().await;
    assert_dense(&cluster, leader, acked.len() as u64).await;
    for id in [1, 2, 3] {
        assert_orders_on(&cluster, id, &acked).await;
    }
    // The group accepts new orders after the restart, numbered after the old ones.
    let more = place_orders(cluster.group(), "after-restart", 10, 2).await;
    assert!(more.iter().all(|a| a.number >= acked.len() as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_idempotency_key_gives_one_order_even_across_leader_change() {
    let mut cluster = Cluster::three(Options::default()).await;
    let group = cluster.group();
    let first = group
        .place_order("dup-key", &order(3))
        .await
        .unwrap()
        .order_number;
    let again = group
        .place_order("dup-key", &order(3))
        .await
        .unwrap()
        .order_number;
    assert_eq!(first, again);

    // Concurrent duplicates resolve to one order too.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let g = group.clone();
        tasks.push(tokio::spawn(async move {
            g.place_order("racing-key", &order(1)).await
        }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap().unwrap());
    }
    numbers.dedup();
    assert_eq!(
        numbers.len(),
        1,
        "concurrent duplicates got different numbers: {numbers:?}"
    );

    let old = cluster.leader().await;
    cluster.kill(old);
    let after = group
        .place_order("dup-key", &order(3))
        .await
        .unwrap()
        .order_number;
    assert_eq!(
        after, first,
        "the retry after a leader change returned another order"
    );
    let new = cluster.leader().await;
    assert_dense(&cluster, new, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scale_three_to_five_to_three_while_orders_flow() {
    let mut cluster = Cluster::start_in_process(&[1, 2, 3], Options::default()).await;
    cluster.converge(&[1, 2, 3]).await;
    cluster.add_node(4).await;
    cluster.add_node(5).await;
    let group = cluster.group();

    let load = tokio::spawn(place_orders(group.clone(), "scale-up", 300, 4));
    cluster.converge(&[1, 2, 3, 4, 5]).await;
    let mut acked = load.await.unwrap();
    let leader = cluster.leader().await;
    let s = cluster.status(leader).await.unwrap();
    assert_eq!(s.voters(), vec![1, 2, 3, 4, 5]);

    // Shrink to three members without the current leader: it must hand leadership over first.
    let keep: Vec<u64> = [1, 2, 3, 4, 5]
        .into_iter()
        .filter(|id| *id != leader)
        .take(3)
        .collect();
    let load = tokio::spawn(place_orders(group.clone(), "scale-down", 300, 4));
    cluster.converge(&keep).await;
    acked.extend(load.await.unwrap());

    let new_leader = cluster.leader().await;
    assert!(keep.contains(&new_leader));
    let s = cluster.status(new_leader).await.unwrap();
    assert_eq!(s.voters(), keep);
    assert_eq!(
        s.members.len(),
        3,
        "removed members are gone, not learners: {s:?}"
    );
    assert_dense(&cluster, new_leader, acked.len() as u64).await;
    for id in &keep {
        assert_orders_on(&cluster, *id, &acked).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_shuts_a_replica_down_cleanly() {
    let mut cluster = Cluster::three(Options::default()).await;
    let acked = place_orders(cluster.group(), "term", 10, 2).await;
    let follower = cluster.leader().await % 3 + 1;
    assert!(
        cluster.terminate(follower).await,
        "replica exits 0 on SIGTERM"
    );
    cluster.restart(follower).await;
    let leader = cluster.leader().await;
    let target = cluster.status(leader).await.unwrap().applied_index.unwrap();
    cluster.wait_applied(follower, target).await;
    assert_orders_on(&cluster, follower, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn torn_last_log_record_is_cut_and_committed_orders_survive() {
    let mut cluster = Cluster::start(&[1], Options::default()).await;
    cluster.converge(&[1]).await;
    let acked = place_orders(cluster.group(), "torn", 30, 2).await;
    cluster.kill(1);

    // A crash mid-write: half a record frame at the end of the log file.
    let log = cluster.data_dir(1).join("raft-log");
    let mut bytes = std::fs::read(&log).unwrap();
    let garbage = [200u8, 0, 0, 0, 1, 2, 3, 4, b'{', b'"'];
    bytes.extend_from_slice(&garbage);
    std::fs::write(&log, &bytes).unwrap();

    cluster.restart(1).await;
    let s = wait_for(
        "replica 1 to lead again",
        Duration::from_secs(30),
        || async {
            let s = cluster.status(1).await.ok()?;
            (s.role == RaftRole::Leader).then_some(s)
        },
    )
    .await;
    assert_eq!(
        s.recovered_torn_bytes,
        garbage.len() as u64,
        "the cut is reported"
    );
    assert_dense(&cluster, 1, acked.len() as u64).await;
    assert_orders_on(&cluster, 1, &acked).await;
    let more = place_orders(cluster.group(), "after-torn", 5, 1).await;
    assert_eq!(more.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_of_the_leader_hands_leadership_over_before_exiting() {
    let mut cluster = Cluster::three(Options::default()).await;
    let acked = place_orders(cluster.group(), "handover", 10, 2).await;
    let old = cluster.leader().await;
    let old_term = cluster.status(old).await.unwrap().term;
    assert!(
        cluster.terminate(old).await,
        "the leader exits 0 on SIGTERM"
    );

    // An election after a crash takes at least the election timeout (400 ms here); a leader
    // that is already in place within 300 ms of the exit was handed over.
    let start = std::time::Instant::now();
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != old).collect();
    let new = wait_for(
        "a handed-over leader",
        Duration::from_millis(300),
        || async {
            for id in &others {
                if let Ok(s) = cluster.status(*id).await
                    && s.role == RaftRole::Leader
                    && s.term > old_term
                {
                    return Some(*id);
                }
            }
            None
        },
    )
    .await;
    assert!(start.elapsed() < Duration::from_millis(400));
    assert!(others.contains(&new));
    assert_orders_on(&cluster, new, &acked).await;
}

/// The log is the durability: applies are not fsynced, so a machine crash can take a replica's
/// state machine back to an older state. Simulated here by putting an older `state.redb` back:
/// the replica must apply the committed entries after it again from its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_state_machine_that_lost_its_latest_applies_replays_them_from_the_log() {
    let mut cluster = Cluster::three(Options::default()).await;
    let leader = cluster.leader().await;
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let mut acked = place_orders(cluster.group(), "early", 30, 2).await;
    let s = cluster.status(leader).await.unwrap();
    cluster
        .wait_applied(follower, s.applied_index.unwrap())
        .await;

    cluster.kill(follower);
    let state = cluster.data_dir(follower).join("state.redb");
    let older = std::fs::read(&state).unwrap();
    cluster.restart(follower).await;
    acked.extend(place_orders(cluster.group(), "later", 60, 4).await);
    let s = cluster.status(leader).await.unwrap();
    cluster
        .wait_applied(follower, s.applied_index.unwrap())
        .await;

    // Crash, and the state machine is back where it was before the later orders.
    cluster.kill(follower);
    std::fs::write(&state, older).unwrap();
    cluster.restart(follower).await;
    let restarted = cluster
        .wait_applied(follower, s.applied_index.unwrap())
        .await;
    assert!(restarted.applied_index >= s.applied_index);
    assert_orders_on(&cluster, follower, &acked).await;
    assert_dense(&cluster, follower, acked.len() as u64).await;
}

/// A follower that was paused past its election timeout (a stalled VM, a long GC, SIGSTOP) does
/// not depose a healthy leader when it comes back: it asks before it campaigns (pre-vote), and
/// its peers, hearing from the leader, say no. Without pre-vote it raises the term, and the
/// leader steps down at its next reply: an election for nothing, and purchases wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_back_from_a_pause_does_not_depose_the_leader() {
    let mut cluster = Cluster::three(Options::default()).await;
    let group = cluster.group();
    let leader = cluster.leader().await;
    let before = cluster.status(leader).await.unwrap();
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();

    cluster
        .processes()
        .replica(follower)
        .signal(Signal::SIGSTOP);
    // Orders go on without it until its election timeout has certainly run out (the fast
    // timing's maximum, plus the leader lease it honours, twice over).
    let paused = Instant::now();
    let mut acked = Vec::new();
    let mut round = 0;
    while paused.elapsed() < Duration::from_millis(4 * 800) {
        acked.extend(place_orders(group.clone(), &format!("paused-{round}"), 20, 2).await);
        round += 1;
    }
    cluster
        .processes()
        .replica(follower)
        .signal(Signal::SIGCONT);

    // Back, it catches up with the same leader in the same term.
    let target = cluster.status(leader).await.unwrap().commit_index.unwrap();
    let s = cluster.wait_applied(follower, target).await;
    acked.extend(place_orders(group.clone(), "after", 20, 2).await);
    let after = cluster.status(leader).await.unwrap();
    cluster
        .wait_applied(follower, after.commit_index.unwrap())
        .await;
    assert_eq!(
        (after.role, after.term),
        (RaftRole::Leader, before.term),
        "the leader kept its term; the returning follower saw term {}",
        s.term
    );
    assert_orders_on(&cluster, follower, &acked).await;
}

/// A leader killed and restarted before its followers time out must not lead again in the term
/// it had: it may have sent entries it had not yet flushed itself, and, leading the same term
/// again, it would write different entries under the same log ids (followers holding the old
/// ones would take them as matching, and lose acknowledged orders). It has to win a new
/// election, in a higher term, like any other replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_leader_does_not_lead_its_old_term_again() {
    // Followers wait seconds before they campaign, so the old leader is back well before.
    let options = Options {
        election_ms: Some((3000, 4000)),
        ..Options::default()
    };
    let mut cluster = Cluster::three(options).await;
    let group = cluster.group();
    let leader = cluster.leader().await;
    let mut acked = place_orders(group.clone(), "before", 40, 4).await;
    let term = cluster.status(leader).await.unwrap().term;

    cluster.kill(leader);
    cluster.restart(leader).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_term = loop {
        assert!(Instant::now() < deadline, "no leader in a newer term");
        if let Ok(s) = cluster.status(leader).await {
            assert!(
                !(s.role == RaftRole::Leader && s.term == term),
                "replica {leader} leads term {term} again after its restart"
            );
        }
        let now = cluster.leader().await;
        let s = cluster.status(now).await.unwrap();
        if s.term > term {
            break s.term;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(new_term > term);
    acked.extend(place_orders(group.clone(), "after", 40, 4).await);
    let target = cluster
        .status(cluster.leader().await)
        .await
        .unwrap()
        .commit_index
        .unwrap();
    for id in [1, 2, 3] {
        cluster.wait_applied(id, target).await;
        assert_orders_on(&cluster, id, &acked).await;
    }
}
