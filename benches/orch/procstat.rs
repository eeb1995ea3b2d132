//! What a process costs, read from /proc: CPU time (its own, and that of the children it
//! has reaped, such as the `tmux` clients it ran) and memory; and a description of the
//! machine for the report.

use std::time::Instant;

/// Clock ticks per second of /proc's CPU times.
fn ticks_per_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// CPU seconds of a process so far.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cpu {
    /// utime + stime of all its threads, dead ones included.
    pub own: f64,
    /// cutime + cstime: children it has waited for.
    pub children: f64,
}

impl Cpu {
    pub(crate) fn total(&self) -> f64 {
        self.own + self.children
    }
}

pub(crate) fn cpu(pid: u32) -> Option<Cpu> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(") ")?.1;
    let f: Vec<f64> = rest
        .split(' ')
        .map(|x| x.parse::<f64>().unwrap_or(0.0))
        .collect();
    // rest[0] is field 3 (state): utime is field 14, so rest[11].
    let tick = ticks_per_s();
    Some(Cpu {
        own: (f.get(11)? + f.get(12)?) / tick,
        children: (f.get(13)? + f.get(14)?) / tick,
    })
}

/// (VmRSS, VmHWM) in KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU use over a span, sampled every `every` for `windows` windows: the share of one core
/// used in each window, the share over the whole, and the largest RSS seen.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Per window: share of one core (0.01 = 1 %), own + children.
    pub windows: Vec<f64>,
    /// Over the whole span.
    pub total_share: f64,
    pub own_share: f64,
    pub children_share: f64,
    pub span_s: f64,
    /// Summed over the process and the children it had (VmHWM: the sum of each one's peak).
    pub max_rss_kib: u64,
    pub hwm_kib: u64,
    /// How many processes were measured together.
    pub processes: usize,
}

/// The processes whose parent is `pid`, now.
pub(crate) fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(") ")?.1.to_string();
                    rest.split(' ').nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Samples a process for `windows` × `every`, and with `with_children` the children it has
/// when sampling starts too (orch's engine and its tmux control-mode client: both are
/// orch's cost; not the tmux server's, whose children are the agents). Returns None if
/// the process itself went away.
pub(crate) fn watch_usage(
    pid: u32,
    with_children: bool,
    every: std::time::Duration,
    windows: usize,
) -> Option<Usage> {
    let mut pids = vec![pid];
    if with_children {
        pids.extend(children(pid));
    }
    let sum = |pids: &[u32]| -> Option<Cpu> {
        let main = cpu(pids[0])?;
        let rest = pids[1..].iter().filter_map(|p| cpu(*p));
        Some(rest.fold(main, |a, c| Cpu {
            own: a.own + c.own,
            children: a.children + c.children,
        }))
    };
    let rss = |pids: &[u32]| -> (u64, u64) {
        pids.iter()
            .filter_map(|p| rss_kib(*p))
            .fold((0, 0), |a, r| (a.0 + r.0, a.1 + r.1))
    };
    let start = Instant::now();
    let first = sum(&pids)?;
    let mut last = (start, first);
    let mut usage = Usage {
        processes: pids.len(),
        ..Usage::default()
    };
    for _ in 0..windows {
        std::thread::sleep(every);
        let now = Instant::now();
        let c = sum(&pids)?;
        let span = now.duration_since(last.0).as_secs_f64();
        usage.windows.push((c.total() - last.1.total()) / span);
        let (rss, hwm) = rss(&pids);
        usage.max_rss_kib = usage.max_rss_kib.max(rss);
        usage.hwm_kib = hwm;
        last = (now, c);
    }
    let span = last.0.duration_since(start).as_secs_f64();
    usage.span_s = span;
    usage.own_share = (last.1.own - first.own) / span;
    usage.children_share = (last.1.children - first.children) / span;
    usage.total_share = usage.own_share + usage.children_share;
    Some(usage)
}

/// The 1-minute load average.
pub(crate) fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// One line describing the machine: CPU model, cores, memory, kernel.
pub(crate) fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown CPU".into(), |(_, v)| v.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!("{model}, {cores} cores, {mem_gib:.0} GiB RAM, Linux {kernel}")
}

/// (busy, total) jiffies of all CPUs so far, from /proc/stat: the machine's load between
/// two readings, every process included (this benchmark, its agents, anyone else's work).
pub(crate) fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = f.iter().take(8).sum();
    // idle and iowait are fields 4 and 5.
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}
