//! The target process's resident memory and CPU time, read from `/proc/<pid>`. The files are
//! opened once, before the subscribers take every descriptor the limit allows, and re-read.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
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

/// Open `/proc/<pid>/status` and `/proc/<pid>/stat`.
pub struct Proc {
    status: File,
    stat: File,
    text: String,
}

impl Proc {
    /// Opens the process's files; `None` when there is no such process.
    pub fn open(pid: u32) -> Option<Self> {
        Some(Self {
            status: File::open(format!("/proc/{pid}/status")).ok()?,
            stat: File::open(format!("/proc/{pid}/stat")).ok()?,
            text: String::new(),
        })
    }

    fn read(file: &mut File, text: &mut String) -> Option<()> {
        text.clear();
        file.seek(SeekFrom::Start(0)).ok()?;
        file.read_to_string(text).ok()?;
        Some(())
    }

    /// Reads the process now; `None` when it is gone or the files are not as expected.
    pub fn sample(&mut self) -> Option<Sample> {
        Self::read(&mut self.status, &mut self.text)?;
        let rss_kib: u64 = self
            .text
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Self::read(&mut self.stat, &mut self.text)?;
        // Fields after the command name (which may hold spaces and parentheses): state is
        // field 3, utime and stime are fields 14 and 15.
        let after = &self.text[self.text.rfind(')')? + 1..];
        let mut fields = after.split_whitespace().skip(11);
        let utime: u64 = fields.next()?.parse().ok()?;
        let stime: u64 = fields.next()?.parse().ok()?;
        let ticks = rustix::param::clock_ticks_per_second().max(1);
        Some(Sample {
            rss_bytes: rss_kib.saturating_mul(1024),
            cpu_seconds: (utime + stime) as f64 / ticks as f64,
            at: Instant::now(),
        })
    }
}

/// CPU time (user plus system) spent between two samples, in seconds.
pub fn cpu_seconds(from: &Sample, to: &Sample) -> f64 {
    (to.cpu_seconds - from.cpu_seconds).max(0.0)
}

/// CPU use between two samples, in percent of one core.
pub fn cpu_percent(from: &Sample, to: &Sample) -> f64 {
    let wall = to.at.duration_since(from.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    cpu_seconds(from, to) / wall * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process_again_and_again() {
        let mut proc = Proc::open(std::process::id()).unwrap();
        let first = proc.sample().unwrap();
        assert!(first.rss_bytes > 0);
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 100 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let second = proc.sample().unwrap();
        assert!(cpu_percent(&first, &second) > 10.0);
        assert!(cpu_seconds(&first, &second) > 0.0);
        assert_eq!(cpu_seconds(&second, &first), 0.0);
        assert!(second.cpu_seconds > first.cpu_seconds);
        assert!(Proc::open(u32::MAX).is_none());
    }
}
