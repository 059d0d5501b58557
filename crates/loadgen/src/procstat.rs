//! The target process's resident memory and CPU time, read from `/proc/<pid>`.

use std::time::Instant;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// User plus system CPU time in seconds.
    pub cpu_seconds: f64,
    /// When it was read.
    pub at: Instant,
}

/// Reads `/proc/<pid>/status` and `/proc/<pid>/stat`; `None` when the process is gone or the
/// files are not as expected.
pub fn sample(pid: u32) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces and parentheses): state is field 3,
    // utime and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = rustix::param::clock_ticks_per_second().max(1);
    Some(Sample {
        rss_bytes: rss_kib * 1024,
        cpu_seconds: (utime + stime) as f64 / ticks as f64,
        at: Instant::now(),
    })
}

/// CPU use between two samples, in percent of one core.
pub fn cpu_percent(from: &Sample, to: &Sample) -> f64 {
    let wall = to.at.duration_since(from.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    (to.cpu_seconds - from.cpu_seconds).max(0.0) / wall * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let first = sample(std::process::id()).unwrap();
        assert!(first.rss_bytes > 0);
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 100 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let second = sample(std::process::id()).unwrap();
        assert!(cpu_percent(&first, &second) > 10.0);
        assert!(sample(u32::MAX).is_none());
    }
}
