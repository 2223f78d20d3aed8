//! CPU time and memory of a process from /proc (Linux), and the open-files limit.

use std::io;
use std::sync::OnceLock;

/// CPU time and resident memory of a process at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcSample {
    /// User plus system CPU time of all its threads, in seconds (`utime + stime` of
    /// /proc/PID/stat; the kernel counts in ticks, usually 10 ms).
    pub cpu_s: f64,
    /// Resident set size (`VmRSS` of /proc/PID/status), in bytes.
    pub rss_bytes: u64,
    /// The highest resident set size since the process started (`VmHWM`), in bytes.
    pub peak_rss_bytes: u64,
}

/// Why /proc could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// No such process, or /proc is not there.
    #[error("cannot read /proc/{pid}/{file}: {source}")]
    Read {
        /// The process.
        pid: u32,
        /// `stat` or `status`.
        file: &'static str,
        /// The error.
        source: io::Error,
    },
    /// The file did not look as expected.
    #[error("/proc/{pid}/{file}: unexpected format")]
    Format {
        /// The process.
        pid: u32,
        /// `stat` or `status`.
        file: &'static str,
    },
}

/// Clock ticks per second of /proc/PID/stat times.
pub fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        // SAFETY: sysconf only reads a configuration value.
        let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        // USER_HZ is 100 on every architecture Linux runs the generator on.
        if t > 0 {
            t as f64
        } else {
            100.0
        }
    })
}

/// Samples process `pid`.
pub fn sample(pid: u32) -> Result<ProcSample, ProcError> {
    let read =
        |file: &'static str| {
            std::fs::read_to_string(format!("/proc/{pid}/{file}"))
                .map_err(|source| ProcError::Read { pid, file, source })
        };
    let stat = read("stat")?;
    let cpu_ticks = parse_stat_cpu(&stat).ok_or(ProcError::Format { pid, file: "stat" })?;
    let status = read("status")?;
    let rss_bytes = parse_status_kb(&status, "VmRSS:").ok_or(ProcError::Format {
        pid,
        file: "status",
    })?;
    // Kernel threads have no VmHWM; a server always has one.
    let peak_rss_bytes = parse_status_kb(&status, "VmHWM:").unwrap_or(rss_bytes);
    Ok(ProcSample {
        cpu_s: cpu_ticks as f64 / clock_ticks(),
        rss_bytes,
        peak_rss_bytes,
    })
}

/// `utime + stime` in ticks from the text of /proc/PID/stat.
fn parse_stat_cpu(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces or parentheses:
    // the fields after the last ')' are fixed. utime and stime are fields 14 and 15,
    // the 12th and 13th after the name.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut f = after.split_ascii_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` field of /proc/PID/status (`VmRSS:`, `VmHWM:`), in bytes.
fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    let mut f = line[field.len()..].split_ascii_whitespace();
    let kb: u64 = f.next()?.parse().ok()?;
    (f.next()? == "kB").then_some(kb * 1024)
}

/// The machine's count of connections dropped because a listen queue was full
/// (`TcpExt: ListenOverflows` in /proc/net/netstat). On loopback the server's queue is on
/// this machine, so a rise during a run means the server's backlog was too small: the
/// client's TCP retries the SYN a second later.
pub fn listen_overflows() -> Option<u64> {
    parse_netstat(
        &std::fs::read_to_string("/proc/net/netstat").ok()?,
        "TcpExt:",
        "ListenOverflows",
    )
}

fn parse_netstat(text: &str, prefix: &str, field: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with(prefix));
    // Pairs of lines: names, then values.
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let i = names.split_ascii_whitespace().position(|n| n == field);
        if let Some(i) = i {
            return values.split_ascii_whitespace().nth(i)?.parse().ok();
        }
    }
    None
}

/// Raises the soft limit on open files to the hard limit; returns the new soft limit.
// rlim_t is 32 bits on 32-bit targets.
#[allow(clippy::unnecessary_cast)]
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the limits into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } != 0 {
            return Err(io::Error::last_os_error());
        }
        lim = want;
    }
    Ok(lim.rlim_cur as u64)
}

/// The current soft limit on open files.
#[allow(clippy::unnecessary_cast)]
pub fn nofile_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the limits into the struct it is given.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim.rlim_cur as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        let stat = "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 8 0 100 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_cpu(stat), Some(325));
        assert_eq!(parse_stat_cpu("garbage"), None);
        assert_eq!(parse_stat_cpu("1 (x) S 1 2"), None);
    }

    #[test]
    fn parses_status() {
        let s =
            "Name:\tx\nVmPeak:\t  100 kB\nVmHWM:\t    4096 kB\nVmRSS:\t    2048 kB\nThreads:\t3\n";
        assert_eq!(parse_status_kb(s, "VmRSS:"), Some(2048 * 1024));
        assert_eq!(parse_status_kb(s, "VmHWM:"), Some(4096 * 1024));
        assert_eq!(parse_status_kb("Name:\tx\n", "VmRSS:"), None);
        assert_eq!(parse_status_kb("VmRSS:\tlots kB\n", "VmRSS:"), None);
    }

    #[test]
    fn parses_netstat() {
        let t = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 227 227\nIpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(parse_netstat(t, "TcpExt:", "ListenOverflows"), Some(227));
        assert_eq!(parse_netstat(t, "TcpExt:", "Nope"), None);
        assert_eq!(parse_netstat("", "TcpExt:", "ListenOverflows"), None);
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_bytes > 0);
        assert!(s.peak_rss_bytes >= s.rss_bytes);
        assert!(s.cpu_s >= 0.0);
        assert!(matches!(sample(u32::MAX), Err(ProcError::Read { .. })));
    }
}
