//! Serving a service inside the current process, on a loopback port the kernel picks: what
//! tests that stop no process (and tools embedding a service) use instead of starting the
//! binary. Binding port 0 and reading the address back means no port is ever raced for.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A service served by a task of this process.
#[derive(Debug)]
pub struct Spawned {
    /// The base URL it answers at (`http://127.0.0.1:<port>`).
    pub url: String,
    /// The task serving it; aborting it stops the service at once, as a crash would.
    pub task: JoinHandle<()>,
}

/// Binds a listener on loopback port 0 and returns it with its base URL.
pub async fn bind_loopback() -> std::io::Result<(TcpListener, String)> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((listener, url))
}
