//! Processes of apps and builds: each runs in its own process group, so that stopping it stops
//! whatever it started (`npm start` → `sh` → `node`), and is identified by pid *and* start time, so
//! that a pid the kernel recycled is never taken for ours.

use std::path::Path;
use std::time::Duration;

/// Sends `signal` to the process group `pgid`. Does nothing for pgid ≤ 1 (never signal init or
/// "every process").
pub fn signal_group(pgid: i64, signal: i32) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid addresses a process group.
    unsafe { libc::kill(-pgid, signal) == 0 }
}

/// Kills a process group when dropped.
pub struct GroupGuard(pub i64);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        signal_group(self.0, libc::SIGKILL);
    }
}

/// `/proc/<pid>/stat` split after the command name (which may contain spaces and parentheses).
fn stat_fields(pid: i64) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// The process's start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
pub fn start_time(pid: i64) -> Option<i64> {
    // Fields after the name start at field 3 (state), so field 22 is index 19.
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Whether `pid` is still the process that started at `start` (and not a zombie).
pub fn is_alive(pid: i64, start: i64) -> bool {
    match stat_fields(pid) {
        Some(f) => {
            f.first().map(String::as_str) != Some("Z")
                && f.get(19).and_then(|s| s.parse::<i64>().ok()) == Some(start)
        }
        None => false,
    }
}

/// Whether any process of group `pgid` is still alive.
pub fn group_alive(pgid: i64) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    if pgid <= 1 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

/// Stops a process group: SIGTERM, then SIGKILL after `grace`.
pub async fn stop_group(pgid: i64, grace: Duration) {
    if !signal_group(pgid, libc::SIGTERM) {
        return;
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if !group_alive(pgid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    signal_group(pgid, libc::SIGKILL);
}

/// CPU time (clock ticks) and resident memory (bytes) of every process in group `pgid`.
pub fn group_usage(pgid: i64) -> Option<(u64, u64)> {
    let page = 4096u64;
    let mut cpu = 0u64;
    let mut rss = 0u64;
    let mut found = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i64>().ok()) else {
            continue;
        };
        let Some(f) = stat_fields(pid) else { continue };
        // Index 2 is field 5 (pgrp); 11/12 are utime/stime; 21 is rss in pages.
        if f.get(2).and_then(|s| s.parse::<i64>().ok()) != Some(pgid) {
            continue;
        }
        found = true;
        let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        cpu += num(11) + num(12);
        rss += num(21) * page;
    }
    found.then_some((cpu, rss))
}

/// Clock ticks per second (for CPU usage).
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// A free TCP port on 127.0.0.1 (the kernel's pick), avoiding `taken`.
pub fn free_port(taken: &[u16]) -> std::io::Result<u16> {
    for _ in 0..50 {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        if !taken.contains(&port) {
            return Ok(port);
        }
    }
    Err(std::io::Error::other("no free port found"))
}

/// Whether something accepts connections on 127.0.0.1:`port`.
pub async fn port_in_use(port: u16) -> bool {
    tokio::time::timeout(
        Duration::from_millis(300),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    .map(|r| r.is_ok())
    .unwrap_or(false)
}

/// The result of one health probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Healthy(String),
    /// Nothing accepts connections on the port (yet).
    Refused(String),
    /// The app accepted the connection but did not answer healthy (its own log may record it).
    Unhealthy(String),
}

/// One health probe: `GET path` over HTTP/1.1 expecting 2xx or 3xx, or, without a path, a TCP connect.
pub async fn probe(port: u16, path: Option<&str>, timeout: Duration) -> Probe {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
    let mut stream = match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Probe::Refused(format!("connect to port {port}: {e}")),
        Err(_) => {
            return Probe::Refused(format!(
                "connect to port {port}: no answer within {timeout:?}"
            ))
        }
    };
    let attempt = async {
        let Some(path) = path else {
            return Ok(format!("port {port} accepts connections"));
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: slipway-health\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut head = Vec::with_capacity(256);
        let mut buf = [0u8; 256];
        while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
            let n = stream
                .read(&mut buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head);
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| "no HTTP status line in the answer".to_string())?;
        if (200..400).contains(&status) {
            Ok(format!("GET {path} answered {status}"))
        } else {
            Err(format!("GET {path} answered {status}"))
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(msg)) => Probe::Healthy(msg),
        Ok(Err(msg)) => Probe::Unhealthy(msg),
        Err(_) => Probe::Unhealthy(format!("no answer within {timeout:?}")),
    }
}

/// Removes a directory tree; missing is fine.
pub async fn remove_dir(path: &Path) {
    if let Err(e) = tokio::fs::remove_dir_all(path).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "could not remove directory");
        }
    }
}
