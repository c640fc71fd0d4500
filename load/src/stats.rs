//! Pure parts: latency percentiles, the time stamp in the payload, server /proc readings.

use core::fmt::Write as _;

/// Latency samples in microseconds.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    us: Vec<u32>,
}

/// Percentiles of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// How many samples.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Samples {
    /// Adds one latency (saturating at about 71 minutes).
    pub fn push(&mut self, us: u64) {
        self.us.push(u32::try_from(us).unwrap_or(u32::MAX));
    }

    /// Sorts and summarises (nearest-rank percentiles).
    #[must_use]
    pub fn summary(&mut self) -> Summary {
        self.us.sort_unstable();
        Summary {
            count: self.us.len(),
            p50: ms(percentile(&self.us, 50.0)),
            p99: ms(percentile(&self.us, 99.0)),
            p999: ms(percentile(&self.us, 99.9)),
            max: ms(self.us.last().copied().unwrap_or(0)),
        }
    }
}

fn ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

/// Nearest-rank percentile of sorted values (0 if empty).
#[must_use]
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = (p * n as f64 / 100.0 - 1e-9).ceil() as usize;
    let idx = rank.clamp(1, n) - 1;
    sorted.get(idx).copied().unwrap_or(0)
}

/// The payload: `T<send time µs>` then `c<client>` then padding to `size` bytes.
#[must_use]
pub fn payload(sent_us: u64, client: usize, size: usize) -> String {
    let mut s = String::with_capacity(size.max(32));
    let _ = write!(s, "T{sent_us} c{client} ");
    while s.len() < size {
        s.push('x');
    }
    s
}

/// The send time stamp of a payload made by [`payload`].
#[must_use]
pub fn parse_stamp(text: &str) -> Option<u64> {
    let rest = text.strip_prefix('T')?;
    let end = rest.find(' ').unwrap_or(rest.len());
    rest.get(..end)?.parse().ok()
}

/// A reading of a process: resident set and CPU seconds (user + system).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// `VmRSS` in KiB.
    pub rss_kib: u64,
    /// `utime + stime` in seconds.
    pub cpu_secs: f64,
}

/// `VmRSS` in KiB from the text of `/proc/<pid>/status`.
#[must_use]
pub fn parse_vmrss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `utime + stime` in clock ticks from the text of `/proc/<pid>/stat`.
#[must_use]
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let after = stat.get(stat.rfind(')')? + 1..)?;
    let mut f = after.split_whitespace();
    // After ')' come state(3) ppid … utime(14) stime(15): utime is the 12th field here.
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Reads `/proc/<pid>`; `ticks` is the clock tick rate (`getconf CLK_TCK`).
pub fn read_proc(pid: u32, ticks: f64) -> anyhow::Result<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rss_kib = parse_vmrss(&status).ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))?;
    let t = parse_cpu_ticks(&stat).ok_or_else(|| anyhow::anyhow!("bad stat for {pid}"))?;
    #[allow(clippy::cast_precision_loss)]
    let cpu_secs = t as f64 / ticks;
    Ok(ProcSample { rss_kib, cpu_secs })
}

/// CPU µs per event between two readings, `-` when a reading is missing or nothing happened
/// (`events` deliveries in the window).
#[must_use]
pub fn cpu_us_per(a: Option<ProcSample>, b: Option<ProcSample>, events: f64) -> String {
    match (a, b) {
        (Some(a), Some(b)) if events >= 1.0 => {
            format!("{:.2}", (b.cpu_secs - a.cpu_secs).max(0.0) * 1e6 / events)
        }
        _ => "-".to_owned(),
    }
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 if that fails).
#[must_use]
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&v, 50.0), 500);
        assert_eq!(percentile(&v, 99.0), 990);
        assert_eq!(percentile(&v, 99.9), 999);
        assert_eq!(percentile(&v, 100.0), 1000);
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(percentile(&[7], 99.9), 7);
    }

    #[test]
    fn summary_in_ms() {
        let mut s = Samples::default();
        for us in [3000, 1000, 2000] {
            s.push(us);
        }
        let sum = s.summary();
        assert_eq!(sum.count, 3);
        assert!((sum.p50 - 2.0).abs() < 1e-9);
        assert!((sum.max - 3.0).abs() < 1e-9);
    }

    #[test]
    fn payload_round_trip() {
        let p = payload(1_234_567, 42, 64);
        assert_eq!(p.len(), 64);
        assert!(p.starts_with("T1234567 c42 x"));
        assert_eq!(parse_stamp(&p), Some(1_234_567));
        assert_eq!(parse_stamp(&payload(5, 0, 0)), Some(5));
        assert_eq!(parse_stamp("hello"), None);
        assert_eq!(parse_stamp("Tabc"), None);
    }

    #[test]
    fn proc_parsing() {
        let status = "Name:\tx\nVmPeak:\t 9 kB\nVmRSS:\t   12345 kB\nThreads: 3\n";
        assert_eq!(parse_vmrss(status), Some(12345));
        let stat = "4242 (chat box) S 1 2 3 4 5 6 7 8 9 10 150 50 0 0 20 0 4 0";
        assert_eq!(parse_cpu_ticks(stat), Some(200));
    }

    #[test]
    fn cpu_per_delivery() {
        let at = |cpu_secs| {
            Some(ProcSample {
                rss_kib: 0,
                cpu_secs,
            })
        };
        // 1.5 CPU seconds over 300 000 deliveries: 5 µs each.
        assert_eq!(cpu_us_per(at(2.0), at(3.5), 300_000.0), "5.00");
        assert_eq!(cpu_us_per(at(2.0), None, 300_000.0), "-");
        assert_eq!(cpu_us_per(at(2.0), at(3.5), 0.0), "-");
        let me = read_proc(std::process::id(), clock_ticks()).unwrap_or_default();
        assert!(me.rss_kib > 0, "{me:?}");
    }
}
