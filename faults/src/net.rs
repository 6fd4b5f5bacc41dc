//! A network of namespaces for network faults: each process (every catalog, every order replica)
//! runs in a network namespace of its own, linked by a veth pair to a bridge in the test's
//! namespace, which reaches them all (so do the frontends, which stay outside). Faults are
//! `iptables` rules inside the namespaces: traffic between two hosts dropped both ways or one
//! way, or a share of it lost at random. Healing flushes every rule.
//!
//! Needs root, `ip` (iproute2) and `iptables`; [`Net::available`] says why not otherwise, and the
//! network scenarios are then skipped with that message.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use anyhow::Context;
use launcher::Host;

/// One host of the network: a namespace and its address on the bridge.
#[derive(Debug, Clone)]
struct Member {
    ns: String,
    ip: Ipv4Addr,
}

/// The namespaces, their links and the bridge; removed when dropped.
#[derive(Debug)]
pub struct Net {
    bridge: String,
    gateway: Ipv4Addr,
    members: BTreeMap<String, Member>,
}

fn run(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("running {}", args.join(" ")))?;
    anyhow::ensure!(
        out.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

fn in_ns(ns: &str, args: &[&str]) -> anyhow::Result<()> {
    let mut all = vec!["ip", "netns", "exec", ns];
    all.extend_from_slice(args);
    run(&all)
}

impl Net {
    /// Why network faults cannot run here, if they cannot.
    pub fn available() -> Result<(), String> {
        if !nix::unistd::Uid::effective().is_root() {
            return Err("network namespaces need root".into());
        }
        for tool in [["ip", "-V"], ["iptables", "--version"]] {
            let ok = Command::new(tool[0])
                .arg(tool[1])
                .output()
                .is_ok_and(|o| o.status.success());
            if !ok {
                return Err(format!("{} is not installed", tool[0]));
            }
        }
        Ok(())
    }

    /// Creates a namespace per name in `names` on a new bridge; `subnet` (1..=254) picks
    /// `10.<subnet>.0.0/24`, so concurrent networks do not collide.
    pub fn create(names: &[&str], subnet: u8) -> anyhow::Result<Self> {
        let tag = format!("{:04x}", rand::random::<u16>());
        let bridge = format!("tsbr{tag}");
        let gateway = Ipv4Addr::new(10, subnet, 0, 1);
        run(&["ip", "link", "add", &bridge, "type", "bridge"])?;
        let mut net = Self {
            bridge: bridge.clone(),
            gateway,
            members: BTreeMap::new(),
        };
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{gateway}/24"),
            "dev",
            &bridge,
        ])?;
        run(&["ip", "link", "set", &bridge, "up"])?;
        for (i, name) in names.iter().enumerate() {
            let ns = format!("ts{tag}{i}");
            let ip = Ipv4Addr::new(10, subnet, 0, 10 + i as u8);
            let outside = format!("tsv{tag}{i}");
            run(&["ip", "netns", "add", &ns])?;
            net.members
                .insert(name.to_string(), Member { ns: ns.clone(), ip });
            run(&[
                "ip", "link", "add", &outside, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            run(&["ip", "link", "set", &outside, "master", &bridge])?;
            run(&["ip", "link", "set", &outside, "up"])?;
            in_ns(
                &ns,
                &["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
            )?;
            in_ns(&ns, &["ip", "link", "set", "eth0", "up"])?;
            in_ns(&ns, &["ip", "link", "set", "lo", "up"])?;
            in_ns(
                &ns,
                &["ip", "route", "add", "default", "via", &gateway.to_string()],
            )?;
        }
        Ok(net)
    }

    /// Where the process `name` runs (its namespace and address), as the launcher takes it.
    pub fn host(&self, name: &str) -> Host {
        let m = &self.members[name];
        Host {
            ip: IpAddr::V4(m.ip),
            netns: Some(m.ns.clone()),
        }
    }

    /// Every host's placement, by name, for the launcher.
    pub fn hosts(&self) -> BTreeMap<String, Host> {
        self.members
            .keys()
            .map(|name| (name.clone(), self.host(name)))
            .collect()
    }

    fn ip_of(&self, name: &str) -> String {
        match self.members.get(name) {
            Some(m) => m.ip.to_string(),
            // Anything outside the namespaces (frontends, the test) comes through the bridge.
            None => self.gateway.to_string(),
        }
    }

    /// `a` no longer receives what `b` sends (`b` still hears `a`).
    pub fn drop_from(&self, a: &str, b: &str) -> anyhow::Result<()> {
        let ns = &self.members[a].ns;
        in_ns(
            ns,
            &[
                "iptables",
                "-A",
                "INPUT",
                "-s",
                &self.ip_of(b),
                "-j",
                "DROP",
            ],
        )
    }

    /// No traffic between `a` and `b`, either way.
    pub fn cut(&self, a: &str, b: &str) -> anyhow::Result<()> {
        for (x, y) in [(a, b), (b, a)] {
            if self.members.contains_key(x) {
                self.drop_from(x, y)?;
            }
        }
        Ok(())
    }

    /// `a` loses a share `p` (0..1) of what `b` sends it.
    pub fn lose_from(&self, a: &str, b: &str, p: f64) -> anyhow::Result<()> {
        let ns = &self.members[a].ns;
        in_ns(
            ns,
            &[
                "iptables",
                "-A",
                "INPUT",
                "-s",
                &self.ip_of(b),
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p.to_string(),
                "-j",
                "DROP",
            ],
        )
    }

    /// Removes every rule: the network is whole again.
    pub fn heal(&self) -> anyhow::Result<()> {
        for m in self.members.values() {
            in_ns(&m.ns, &["iptables", "-F", "INPUT"])?;
        }
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for m in self.members.values() {
            let _ = run(&["ip", "netns", "del", &m.ns]);
        }
        let _ = run(&["ip", "link", "del", &self.bridge]);
    }
}
