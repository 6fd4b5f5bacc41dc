//! Loopback ports for child processes.
//!
//! A child binds its own port, so the launcher can only pick a port that is free when asked and
//! check, right before starting the child, that it still is. The check that matters comes after:
//! a process counts as started only when the service answering on its port reports the child's
//! own pid (see [`crate::process`]), so a port taken in between is reported, never mistaken.
//!
//! Ports come from *below* the kernel's ephemeral range. A process is restarted on its old port,
//! and a port from the ephemeral range can be taken in the meantime as the local end of any
//! outgoing connection on the machine (a CI run once failed so, restarting a killed replica).
//! Below that range only a listener can hold a port, and the bind check sees it.

use std::net::TcpListener;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Lowest port handed out: above the well-known and most registered service ports.
const LOWEST: u16 = 10_000;

/// The kernel's ephemeral range when it cannot be read (Linux's default).
const DEFAULT_EPHEMERAL: (u16, u16) = (32_768, 60_999);

/// A port on 127.0.0.1 that is free now, outside the ephemeral range, and not handed out before
/// by this process (until the range wraps around).
pub fn free_port() -> std::io::Result<u16> {
    let (low, high) = range();
    let span = u32::from(high - low);
    // Each process starts at a random point, so two test binaries run side by side rarely meet.
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    let next = NEXT.get_or_init(|| AtomicU32::new(rand::random_range(0..span)));
    for _ in 0..span {
        let port = low + (next.fetch_add(1, Ordering::Relaxed) % span) as u16;
        if is_free(port) {
            return Ok(port);
        }
    }
    // Everything below the ephemeral range is taken: let the kernel choose.
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether `port` on 127.0.0.1 can be bound now.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The ports [`free_port`] chooses from: `[LOWEST, start of the ephemeral range)`.
fn range() -> (u16, u16) {
    let (ephemeral_low, ephemeral_high) = ephemeral_range().unwrap_or(DEFAULT_EPHEMERAL);
    if ephemeral_low > LOWEST + 1_000 || ephemeral_high > u16::MAX - 1_000 {
        (LOWEST, ephemeral_low.max(LOWEST + 1))
    } else {
        // An unusual kernel setting leaves no room below: use the ports above the range instead.
        (ephemeral_high + 1, u16::MAX)
    }
}

/// The kernel's ephemeral port range, from `/proc/sys/net/ipv4/ip_local_port_range`.
fn ephemeral_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut parts = text.split_whitespace().map(str::parse::<u16>);
    Some((parts.next()?.ok()?, parts.next()?.ok()?))
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

    #[test]
    fn ports_are_distinct_and_below_the_ephemeral_range() {
        let (ephemeral_low, _) = ephemeral_range().unwrap_or(DEFAULT_EPHEMERAL);
        let ports: Vec<u16> = (0..200).map(|_| free_port().unwrap()).collect();
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
        for port in ports {
            assert!(
                (LOWEST..ephemeral_low).contains(&port),
                "{port} is not below the ephemeral range starting at {ephemeral_low}"
            );
        }
    }

    #[test]
    fn the_kernel_range_is_read() {
        if std::path::Path::new("/proc/sys/net/ipv4/ip_local_port_range").exists() {
            let (low, high) = ephemeral_range().expect("a readable range");
            assert!(low <= high);
        }
    }
}
