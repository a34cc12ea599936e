//! What the load generator reads from the operating system: CPU time and memory of processes
//! (from /proc), the clock tick rate, and the open-file limit.

use anyhow::{Context, Result};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Clock ticks per second (`getconf CLK_TCK`), the unit of /proc/PID/stat CPU times.
pub fn clock_ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// utime + stime of a process, in clock ticks (threads included).
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // The command name (field 2) may contain spaces: count fields after its closing ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc stat format")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at indexes 11 and 12.
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

pub fn cpu_ticks_sum(pids: &[u32]) -> Result<u64> {
    pids.iter().map(|p| cpu_ticks(*p)).sum()
}

/// Resident set size of a process in KiB (VmRSS of /proc/PID/status).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    line.split_whitespace()
        .nth(1)
        .context("no VmRSS value")?
        .parse()
        .context("bad VmRSS value")
}

/// Raises the soft open-file limit to at least `wanted` (capped by the hard limit); returns
/// the limit now in force.
pub fn raise_nofile(wanted: u64) -> Result<u64> {
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= wanted {
        return Ok(current);
    }
    let target = limit.maximum.map_or(wanted, |max| wanted.min(max));
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: limit.maximum,
        },
    )
    .context("setrlimit(RLIMIT_NOFILE)")?;
    Ok(target)
}

/// Per-CPU (busy, total) jiffies from /proc/stat, to see whether something besides the
/// measured processes used the CPUs during a run.
pub fn cpu_jiffies() -> Result<Vec<(u64, u64)>> {
    let stat = std::fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
    let mut cpus = Vec::new();
    for line in stat.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            continue; // the "cpu" total line
        }
        let fields: Vec<u64> = rest
            .split_whitespace()
            .skip(1)
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        // user nice system idle iowait irq softirq steal (guest time is already in user)
        let total: u64 = fields.iter().take(8).sum();
        let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
        cpus.push((total - idle, total));
    }
    Ok(cpus)
}

/// Busy share of each CPU between two `cpu_jiffies` readings.
pub fn busy_shares(before: &[(u64, u64)], after: &[(u64, u64)]) -> Vec<f64> {
    before
        .iter()
        .zip(after)
        .map(|((b0, t0), (b1, t1))| {
            let total = t1.saturating_sub(*t0);
            if total == 0 {
                0.0
            } else {
                ((b1.saturating_sub(*b0)) as f64 / total as f64 * 100.0).round() / 100.0
            }
        })
        .collect()
}

/// The processes whose parent is `parent` (the worker processes a server started).
pub fn children(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(')')?.1.to_string();
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// `cpu_ticks_sum` of those of `pids` that still run (a worker may be replaced meanwhile).
pub fn cpu_ticks_present(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|p| cpu_ticks(*p).ok()).sum()
}
