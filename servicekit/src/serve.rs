//! Serving a router on a listener with bounded connections.
//!
//! `axum::serve` keeps a connection open as long as the client likes and accepts as many as the
//! process has file descriptors, so idle or slow clients can take a service down (and with it,
//! on a shared listener, the Raft RPC it carries). [`serve`] bounds both:
//!
//! - **header time**: a client must send a whole request head within
//!   [`Limits::header_read_timeout`], counted from when the connection starts waiting for one,
//!   so the same bound closes idle keep-alive connections and slow-header ("slowloris") ones;
//! - **connections**: at most [`Limits::max_connections`] at once; at the limit the listener
//!   stops accepting until one closes (the kernel's backlog holds the rest), as mini-redis does.
//!
//! An accept error (out of file descriptors, say) is logged once per burst and retried after a
//! pause instead of spinning. Shutdown stops accepting, lets requests in flight finish, and
//! closes idle connections.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Bounds of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time a client has to send a request head, idle keep-alive time included.
    pub header_read_timeout: Duration,
}

impl Limits {
    /// For a public listener: many clients, each bounded tightly.
    pub const PUBLIC: Limits = Limits {
        max_connections: 1024,
        header_read_timeout: Duration::from_secs(10),
    };
    /// For a listener only peers of the same service use (Raft RPC): few, long-lived.
    pub const PEERS: Limits = Limits {
        max_connections: 256,
        header_read_timeout: Duration::from_secs(60),
    };
}

/// The listen address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address asked for, so the message says which listener failed.
    pub addr: std::net::SocketAddr,
    /// The operating system's reason (in use, not a local address, no permission, ...).
    #[source]
    pub source: std::io::Error,
}

/// Binds a listener on `addr`, with an error that names the address.
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// How long to wait after a failed accept (e.g. no file descriptor left) before the next.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// How long shutdown waits for connections to finish their requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` within `limits` until `shutdown` completes. Raises the process's
/// open-file limit first ([`raise_fd_limit`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    match raise_fd_limit() {
        Ok(n) => tracing::debug!(open_files = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut failing = false;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let (stream, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    failing = false;
                    a
                }
                Err(e) => {
                    if !failing {
                        tracing::error!(error = %e, "accept failed; retrying");
                        failing = true;
                    }
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that goes away or is too slow is its own business: nothing to log.
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open {DRAIN_TIMEOUT:?} after shutdown; closing them");
    }
}

/// Raises this process's soft limit of open files to its hard limit, so that the connection
/// limits, not the file-descriptor limit, decide how many clients are served. Returns the new
/// soft limit.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    // The soft limit never exceeds the hard one, so it is now the hard limit.
    Ok(hard)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    async fn start(limits: Limits) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/", get(|| async { "ok" }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, app, limits, async {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    /// Reads until the server closes the connection; returns how long that took.
    async fn time_to_close(stream: &mut TcpStream) -> Duration {
        let start = Instant::now();
        let mut buf = [0u8; 256];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    }

    #[tokio::test]
    async fn idle_and_slow_header_connections_are_closed() {
        let limits = Limits {
            max_connections: 8,
            header_read_timeout: Duration::from_millis(300),
        };
        let (addr, _stop) = start(limits).await;
        let mut idle = TcpStream::connect(addr).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_secs(5), time_to_close(&mut idle))
            .await
            .expect("an idle connection is closed");
        assert!(waited >= Duration::from_millis(250), "{waited:?}");

        // A head trickled one line at a time is closed too, however steadily it trickles.
        let mut slow = TcpStream::connect(addr).await.unwrap();
        let trickle = async {
            slow.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
            for _ in 0..50 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
                    return;
                }
            }
            panic!("a trickled header was never cut off");
        };
        tokio::time::timeout(Duration::from_secs(10), trickle)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_wait_and_are_served_when_one_closes() {
        let limits = Limits {
            max_connections: 2,
            header_read_timeout: Duration::from_secs(30),
        };
        let (addr, _stop) = start(limits).await;
        let hold1 = TcpStream::connect(addr).await.unwrap();
        let _hold2 = TcpStream::connect(addr).await.unwrap();
        let http = reqwest::Client::new();
        let third = http
            .get(format!("http://{addr}/"))
            .timeout(Duration::from_millis(500))
            .send()
            .await;
        assert!(
            third.is_err(),
            "a third connection is not served at the limit"
        );
        drop(hold1);
        let served = http
            .get(format!("http://{addr}/"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("served once a slot is free");
        assert_eq!(served.text().await.unwrap(), "ok");
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        use nix::sys::resource::{Resource, getrlimit};
        let raised = raise_fd_limit().expect("the limit can be raised to the hard limit");
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!((soft, hard), (raised, raised));
    }
}
