//! Loopback ports for child processes.
//!
//! A child binds its own port, so the launcher can only pick a port that is free when asked and
//! check, right before starting the child, that it still is. The check that matters comes after:
//! a process counts as started only when the service answering on its port reports the child's
//! own pid (see [`crate::process`]), so a port taken in between is reported, never mistaken.

use std::net::TcpListener;

/// A port on 127.0.0.1 that is free now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether `port` on 127.0.0.1 can be bound now.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_port_is_not_free_and_a_released_one_is() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        assert!(!is_free(port));
        drop(held);
        assert!(is_free(port));
        assert!(is_free(free_port().unwrap()));
    }
}
