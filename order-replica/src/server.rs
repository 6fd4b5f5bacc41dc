//! Opening a replica and serving it on the listeners it is given until shutdown.
//!
//! The caller binds the listeners (the binary from `--listen` and `--raft-listen`, a test on
//! port 0), so nobody picks a port that another process may take before it is bound.

use std::future::Future;
use std::path::PathBuf;

use openraft::async_runtime::WatchReceiver;
use servicekit::Stop;
use tokio::net::TcpListener;

use crate::replica::{OpenError, RaftTiming, Replica};
use crate::types::NodeId;

/// Everything needed to run one replica, from its command line (see [`crate::args`]).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Raft node id, stable for the replica's life.
    pub id: NodeId,
    /// URL other replicas and clients reach this one at (`None`: `http://` and the client
    /// listener's address).
    pub advertise_url: Option<String>,
    /// URL peers reach the peer listener at (`None`: `http://` and its address).
    pub raft_advertise_url: Option<String>,
    /// Where the log, state and snapshots live.
    pub data_dir: PathBuf,
    /// The cluster token, required on Raft RPC and admin calls.
    pub token: String,
    /// Raft timing and compaction.
    pub timing: RaftTiming,
}

/// The bound listeners a replica serves.
#[derive(Debug)]
pub struct Listeners {
    /// Clients, admin calls, and Raft RPC when there is no peer listener.
    pub client: TcpListener,
    /// Raft RPC from the other replicas, on a listener of its own so client connections cannot
    /// crowd it out (`None`: on the client listener).
    pub peers: Option<TcpListener>,
}

/// Errors that stop a replica.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener's address could not be read.
    #[error("listener address: {0}")]
    Listener(#[source] std::io::Error),
    /// The replica could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Raft stopped on a fatal error (a storage failure, such as a full disk). The replica exits
    /// so that its supervisor restarts it: a restart reopens the storage, and Raft resumes once
    /// the cause is gone.
    #[error("raft stopped: {0}")]
    RaftStopped(String),
}

/// Serves a replica with `settings` in a task of this process, on a client and a peer
/// listener bound to loopback port 0, until the task is aborted (see [`servicekit::Spawned`]);
/// returns it with its peer URL. A replica that fails to open or stops logs why.
pub async fn spawn_on_loopback(
    settings: Settings,
) -> std::io::Result<(servicekit::Spawned, String)> {
    let (client, url) = servicekit::bind_loopback().await?;
    let (peers, raft_url) = servicekit::bind_loopback().await?;
    let id = settings.id;
    let listeners = Listeners {
        client,
        peers: Some(peers),
    };
    let task = tokio::spawn(async move {
        if let Err(e) = run(settings, listeners, std::future::pending()).await {
            tracing::error!(id, error = %e, "replica stopped");
        }
    });
    Ok((servicekit::Spawned { url, task }, raft_url))
}

/// Opens the replica, serves it on `listeners` until `shutdown` completes, then stops Raft
/// cleanly. On [`Stop::Terminate`] (this replica alone stops) a leader first hands leadership
/// to the most caught-up voter; on [`Stop::Interrupt`] (the whole store stops) it does not.
pub async fn run(
    settings: Settings,
    listeners: Listeners,
    shutdown: impl Future<Output = Stop> + Send + 'static,
) -> Result<(), ServeError> {
    let Listeners {
        client: listener,
        peers: peer_listener,
    } = listeners;
    let address = |l: &TcpListener| l.local_addr().map_err(ServeError::Listener);
    let listen = address(&listener)?;
    let advertise_url = settings
        .advertise_url
        .clone()
        .unwrap_or_else(|| format!("http://{listen}"));
    let raft_advertise_url = match &peer_listener {
        Some(peers) => Some(match &settings.raft_advertise_url {
            Some(url) => url.clone(),
            None => format!("http://{}", address(peers)?),
        }),
        None => None,
    };
    let replica = Replica::open(
        settings.id,
        advertise_url.clone(),
        raft_advertise_url,
        &settings.data_dir,
        settings.token.clone(),
        &settings.timing,
    )
    .await?;
    tracing::info!(
        id = settings.id,
        %listen,
        url = %advertise_url,
        data_dir = %settings.data_dir.display(),
        "order replica serving"
    );
    let app = crate::http::router(replica.clone());
    // Decide when to stop: on a signal (handing leadership away first, while both listeners
    // still answer Raft RPCs: the successor needs our vote, and clients then fail over within
    // a heartbeat instead of an election timeout), or when Raft stops by itself.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel();
    let watched = replica.clone();
    tokio::spawn(async move {
        tokio::select! {
            stop = shutdown => {
                if stop == Stop::Terminate {
                    step_down(&watched).await;
                }
            }
            fatal = raft_stopped(&watched) => {
                tracing::error!(
                    error = %fatal,
                    "raft stopped; exiting so that the supervisor restarts this replica"
                );
                let _ = stopped_tx.send(fatal);
            }
        }
        watched.stopping.send_replace(true);
        let _ = stop_tx.send(true);
    });
    let stopping = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let public = servicekit::serve(
        listener,
        app.clone(),
        servicekit::Limits::PUBLIC,
        stopping(stop_rx.clone()),
    );
    match peer_listener {
        // Peers have a listener of their own, so client connections cannot crowd them out.
        Some(peers) => {
            let peers = servicekit::serve(peers, app, servicekit::Limits::PEERS, stopping(stop_rx));
            tokio::join!(public, peers);
        }
        None => public.await,
    }
    tracing::info!("shutting down raft");
    if let Err(e) = replica.raft.shutdown().await {
        tracing::warn!(error = %e, "raft shutdown");
    }
    match stopped_rx.await {
        Ok(fatal) => Err(ServeError::RaftStopped(fatal)),
        Err(_) => Ok(()),
    }
}

/// Completes with the reason when Raft stops on its own (a fatal storage error).
async fn raft_stopped(replica: &Replica) -> String {
    let mut metrics = replica.raft.metrics();
    loop {
        if let Err(fatal) = &metrics.borrow_watched().running_state {
            return fatal.to_string();
        }
        if metrics.changed().await.is_err() {
            return "raft metrics closed".into();
        }
    }
}

/// If this replica leads, transfers leadership to the most caught-up other voter and waits
/// (up to 3 s) for the hand-over. Best effort: a failure only means a normal election follows.
async fn step_down(replica: &Replica) {
    let status = replica.status();
    if status.role != api::raft::RaftRole::Leader {
        return;
    }
    let others = status.voters().into_iter().filter(|v| *v != replica.id);
    let view = api::view::GroupView::of_answers([status.clone()]);
    let Some(to) = view.most_caught_up(others) else {
        return;
    };
    tracing::info!(to, "handing leadership away before shutting down");
    if let Err(e) = replica.raft.trigger().transfer_leader(to).await {
        tracing::warn!(error = %e, "leadership transfer failed");
        return;
    }
    let moved = replica
        .raft
        .wait(Some(std::time::Duration::from_secs(3)))
        .current_leader(to, "leadership hand-over at shutdown")
        .await;
    if moved.is_err() {
        tracing::warn!(to, "leadership did not move within 3 s; stopping anyway");
    }
}
