//! CPU time per operation, read from `/proc` around a load run.
//!
//! Throughput on a small machine is bounded by CPU as soon as the cores are busy: with every
//! process on the same two cores, a store cannot do more purchases a second than the cores'
//! seconds divided by the CPU a purchase costs. Measuring that cost per process (client,
//! frontend, leader, followers, catalog) and per etcd put says where the floor is and which
//! process to make cheaper, which a latency figure alone cannot.

use std::time::Instant;

use procfs::CurrentSI;
use procfs::process::Process;
use serde::{Deserialize, Serialize};

/// CPU a process (or a group of processes, summed) spent during one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleCpu {
    /// Which process: `client`, `frontend`, `leader`, `followers`, `catalog`, `etcd members`.
    pub role: String,
    /// CPU seconds (user + system) during the run.
    pub cpu_secs: f64,
    /// CPU milliseconds per successful operation.
    pub ms_per_op: f64,
}

/// Where the CPU of one load run went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuUse {
    /// Concurrent clients of the run.
    pub clients: usize,
    /// Successful operations (purchases or puts).
    pub ops: u64,
    /// Wall-clock seconds measured.
    pub wall_secs: f64,
    /// Per process, in the order given.
    pub roles: Vec<RoleCpu>,
    /// Sum over the roles, CPU milliseconds per operation.
    pub total_ms_per_op: f64,
    /// Cores the whole machine kept busy on average (from `/proc/stat`, every process).
    pub machine_busy_cores: f64,
}

/// A measurement in progress: CPU counters of the named processes at its start (and at its
/// end, once [`stop`](CpuMeter::stop)ped).
pub struct CpuMeter {
    clients: usize,
    roles: Vec<(String, Vec<u32>, u64)>,
    machine_busy: Option<u64>,
    started: Instant,
    end: Option<Sample>,
}

/// The counters at the end of a measurement.
struct Sample {
    roles: Vec<u64>,
    machine_busy: Option<u64>,
    wall_secs: f64,
}

impl CpuMeter {
    /// Starts measuring `roles`, each a name and the pids whose CPU counts for it (a pid that
    /// has gone counts as nothing).
    pub fn start(clients: usize, roles: Vec<(String, Vec<u32>)>) -> Self {
        let roles = roles
            .into_iter()
            .map(|(name, pids)| {
                let ticks = pids.iter().filter_map(|&p| process_ticks(p)).sum();
                (name, pids, ticks)
            })
            .collect();
        Self {
            clients,
            roles,
            machine_busy: machine_busy_ticks(),
            started: Instant::now(),
            end: None,
        }
    }

    /// Takes the end counters now, when the measured work ends before its figures are known
    /// (a load run's read-back comes after its load, and is not measured). Later calls keep
    /// the first end.
    pub fn stop(&mut self) {
        if self.end.is_none() {
            self.end = Some(self.sample());
        }
    }

    fn sample(&self) -> Sample {
        Sample {
            roles: self
                .roles
                .iter()
                .map(|(_, pids, _)| pids.iter().filter_map(|&p| process_ticks(p)).sum())
                .collect(),
            machine_busy: machine_busy_ticks(),
            wall_secs: self.started.elapsed().as_secs_f64(),
        }
    }

    /// Ends the measurement (at [`stop`](CpuMeter::stop), or now) of a run that did `ops`
    /// successful operations.
    pub fn finish(mut self, ops: u64) -> CpuUse {
        let end = self.end.take().unwrap_or_else(|| self.sample());
        let wall_secs = end.wall_secs;
        let hz = ticks_per_second();
        let per_op = |secs: f64| {
            if ops == 0 {
                0.0
            } else {
                secs * 1000.0 / ops as f64
            }
        };
        let roles: Vec<RoleCpu> = self
            .roles
            .into_iter()
            .zip(end.roles)
            .map(|((role, _, before), after)| {
                let cpu_secs = after.saturating_sub(before) as f64 / hz;
                RoleCpu {
                    role,
                    cpu_secs,
                    ms_per_op: per_op(cpu_secs),
                }
            })
            .collect();
        let machine_busy_cores = match (self.machine_busy, end.machine_busy) {
            (Some(before), Some(after)) if wall_secs > 0.0 => {
                after.saturating_sub(before) as f64 / hz / wall_secs
            }
            _ => 0.0,
        };
        CpuUse {
            clients: self.clients,
            ops,
            wall_secs,
            total_ms_per_op: roles.iter().map(|r| r.ms_per_op).sum(),
            roles,
            machine_busy_cores,
        }
    }
}

/// One line: CPU per operation, by process, and the machine's busy cores.
pub fn summary(c: &CpuUse) -> String {
    let by: Vec<String> = c
        .roles
        .iter()
        .map(|r| format!("{} {:.3}", r.role, r.ms_per_op))
        .collect();
    format!(
        "CPU {:.3} ms per operation ({}), machine busy {:.2} cores",
        c.total_ms_per_op,
        by.join(", "),
        c.machine_busy_cores
    )
}

/// The pid of this process (the load client runs in it).
pub fn own_pid() -> u32 {
    std::process::id()
}

/// Clock ticks per second of the `/proc` counters, to turn them into seconds.
fn ticks_per_second() -> f64 {
    match procfs::ticks_per_second() {
        // The value Linux has always exported to user space.
        0 => 100.0,
        hz => hz as f64,
    }
}

/// User + system ticks of `pid`, all its threads (`/proc/PID/stat`); `None` once it has gone.
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = Process::new(i32::try_from(pid).ok()?).ok()?.stat().ok()?;
    Some(stat.utime + stat.stime)
}

/// Busy ticks of the whole machine, every core and every process (`/proc/stat`): everything
/// but idle and iowait, so that a load that waits on the disk does not count as CPU used.
fn machine_busy_ticks() -> Option<u64> {
    let t = procfs::KernelStats::current().ok()?.total;
    // guest and guest_nice are already counted in user and nice.
    Some(
        t.user
            + t.nice
            + t.system
            + t.irq.unwrap_or(0)
            + t.softirq.unwrap_or(0)
            + t.steal.unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits (with a deadline) until `pid` has used more than `ticks`.
    fn wait_past(pid: u32, ticks: u64) -> u64 {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let now = process_ticks(pid).expect("the busy child runs");
            if now > ticks {
                return now;
            }
            assert!(Instant::now() < deadline, "the busy child used no CPU");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn a_busy_process_is_measured_until_stop_and_a_gone_one_counts_as_nothing() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut meter = CpuMeter::start(
            1,
            vec![("busy".into(), vec![pid]), ("gone".into(), vec![u32::MAX])],
        );
        let started = meter.roles[0].2;
        wait_past(pid, started);
        meter.stop();
        let stopped = meter.end.as_ref().unwrap().roles[0];
        // Work after stop() is not counted.
        wait_past(pid, stopped + 2);
        let used = meter.finish(10);
        let _ = child.kill();
        let _ = child.wait();
        let hz = ticks_per_second();
        assert!(stopped > started);
        assert_eq!(used.roles[0].cpu_secs, (stopped - started) as f64 / hz);
        assert_eq!(used.roles[0].ms_per_op, used.roles[0].cpu_secs * 100.0);
        assert_eq!(used.roles[1].cpu_secs, 0.0);
        assert_eq!(used.total_ms_per_op, used.roles[0].ms_per_op);
        assert!(used.machine_busy_cores > 0.0);
    }
}
