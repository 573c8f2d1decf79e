//! Workload isolation for a Slipway that does not run as root: every build command and every app
//! instance runs inside bubblewrap (`bwrap`) in its own user, PID, IPC and mount namespaces. The
//! whole file system is read-only, the data directory (database, `secrets.key`, `admin-token`, the
//! platform repository, other services' releases and homes) is replaced by an empty tmpfs, and only
//! the release being built or run and the service's `$HOME` are bound back in, writable. `/tmp` is
//! a private tmpfs. The network is shared (apps listen on loopback for the proxy).
//!
//! The command line is an argument vector; the repository's own command stays one `sh -c` argument.

use crate::local::Isolation;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// How workloads are put in a user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// The `bwrap` binary.
    pub bwrap: PathBuf,
    /// Paths hidden from workloads: directories behind an empty tmpfs, files behind `/dev/null`.
    /// The data directory comes first.
    pub hide: Vec<PathBuf>,
    /// Process, open-file and core limits (set before `bwrap` starts; they apply inside).
    pub limits: Isolation,
}

/// The arguments every sandbox gets, before the hidden paths and the binds.
const BASE: &[&str] = &[
    "--unshare-user",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--die-with-parent",
    "--ro-bind",
    "/",
    "/",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
    "--tmpfs",
    "/tmp",
];

/// Finds `bwrap` on `PATH` and checks that it can create the namespaces workloads get (unprivileged
/// user namespaces may be switched off, or bwrap may be missing). `Err` says why not.
pub async fn probe() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let Some(bwrap) = std::env::split_paths(&path)
        .map(|d| d.join("bwrap"))
        .find(|p| p.is_file())
    else {
        return Err("bubblewrap (`bwrap`, Debian package bubblewrap) is not installed".into());
    };
    let out = Command::new(&bwrap)
        .args(BASE)
        .args(["--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(std::time::Duration::from_secs(10), out).await {
        Ok(Ok(o)) if o.status.success() => Ok(bwrap),
        Ok(Ok(o)) => Err(format!(
            "{} cannot create a user namespace ({}): {}",
            bwrap.display(),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(Err(e)) => Err(format!("{} cannot start: {e}", bwrap.display())),
        Err(_) => Err(format!("{} did not answer within 10 s", bwrap.display())),
    }
}

impl Namespace {
    /// `bwrap … -- sh -c <command>` in `dir`, with `writable` (the release and the service's
    /// home) bound back in. The caller sets the environment, pipes and limits; the command starts
    /// a session of its own (no controlling terminal) whose process group is that of `bwrap`, so
    /// signalling the group reaches everything inside.
    pub fn command(&self, dir: &Path, writable: &[&Path], command: &str) -> Command {
        let mut cmd = Command::new(&self.bwrap);
        cmd.args(BASE);
        for hidden in &self.hide {
            if hidden.is_dir() {
                // Not listable either (it would show only the paths bound back in).
                cmd.args(["--perms", "0111", "--tmpfs"]).arg(hidden);
            } else if hidden.exists() {
                cmd.arg("--ro-bind").arg("/dev/null").arg(hidden);
            }
        }
        for w in writable {
            cmd.arg("--bind").arg(w).arg(w);
        }
        cmd.arg("--chdir")
            .arg(dir)
            .arg("--")
            .arg("sh")
            .arg("-c")
            .arg(command);
        // SAFETY: runs in the child between fork and exec; setsid is async-signal-safe. It replaces
        // bwrap's --new-session, which would put the workload in a process group of its own.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }
}

/// Sends `signal` to every process in group `pgid` except its leader (`bwrap` itself, which would
/// die of SIGTERM and take the workload with it at once): the workload gets the chance to stop on
/// its own, and `bwrap` exits after it.
pub fn signal_workload(pgid: i64, signal: i32) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        if i64::from(pid) == pgid {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command (which may contain spaces): state, ppid, pgrp.
        let pgrp = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2))
            .and_then(|s| s.parse::<i64>().ok());
        if pgrp == Some(pgid) {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }
}

/// Whether Slipway runs as root (then services get uids of their own instead).
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
