//! Memory and CPU limits for a service's instances through Linux control groups: one group per
//! instance, below Slipway's own group, with a memory limit (the kernel's OOM killer ends the
//! instance when it goes over; its supervisor says so and restarts it) and a CPU quota (the
//! instance is throttled to its share). cgroup v1 (the `memory` and `cpu` hierarchies) and v2 (a
//! delegated unified hierarchy) are both supported; where neither is writable, limits are not
//! enforced and Slipway says so at start and in every deployment log.

use slipway_core::Resources;
use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// CFS period for CPU quotas: 100 ms, the kernel's default.
const CPU_PERIOD_US: u64 = 100_000;

/// Where Slipway creates its instances' groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroups {
    /// cgroup v1: `<memory mount><own path>/slipway` and `<cpu mount><own path>/slipway`.
    V1 { memory: PathBuf, cpu: PathBuf },
    /// cgroup v2: a directory whose children get `memory.max` and `cpu.max`.
    V2 { base: PathBuf },
}

impl Cgroups {
    /// Finds, and creates, the place for instance groups below Slipway's own group, or says why
    /// there is none. `scope` (a plain name) keeps the groups of several Slipways on one host apart.
    pub fn detect(scope: &str) -> Result<Self, String> {
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let mounts = parse_mounts(&mounts);
        // A pure v2 host has the unified hierarchy with controllers at /sys/fs/cgroup; a hybrid
        // one has v1 controllers and an empty v2 mount beside them.
        let v2_with_controllers = mounts.iter().find(|m| {
            m.v2 && std::fs::read_to_string(m.point.join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|x| x == "memory"))
        });
        if let Some(m) = v2_with_controllers {
            let path = own_path(&own, None).ok_or("no cgroup v2 entry in /proc/self/cgroup")?;
            return v2_base(&m.point.join(path.trim_start_matches('/')), scope)
                .map(|base| Cgroups::V2 { base });
        }
        let mount_of = |controller: &str| {
            mounts
                .iter()
                .find(|m| !m.v2 && m.controllers.iter().any(|c| c == controller))
        };
        let (Some(mem), Some(cpu)) = (mount_of("memory"), mount_of("cpu")) else {
            return Err(
                "neither a cgroup v2 hierarchy with the memory controller nor cgroup v1 \
                        memory and cpu hierarchies are mounted"
                    .into(),
            );
        };
        let path_in = |m: &Mount| {
            own_path(&own, Some(&m.controllers))
                .map(|p| {
                    m.point
                        .join(p.trim_start_matches('/'))
                        .join(format!("slipway-{scope}"))
                })
                .ok_or_else(|| format!("no entry for {:?} in /proc/self/cgroup", m.controllers))
        };
        let (memory, cpu) = (path_in(mem)?, path_in(cpu)?);
        for dir in [&memory, &cpu] {
            // Empty places of data directories gone (test runs, moved installs) are removed; a
            // running Slipway whose place is empty recreates it at its next instance.
            if let Some(Ok(siblings)) = dir.parent().map(std::fs::read_dir) {
                for e in siblings.flatten() {
                    if e.file_name().to_string_lossy().starts_with("slipway-") {
                        let _ = std::fs::remove_dir(e.path());
                    }
                }
            }
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        Ok(Cgroups::V1 { memory, cpu })
    }

    /// Creates (or reuses) the group `name` with the limits `r` (unset values: no limit).
    pub fn create(&self, name: &str, r: Resources) -> io::Result<Group> {
        let memory = r.memory_mb.map(|m| u64::from(m) * 1024 * 1024);
        let quota = r
            .cpu_millis
            .map(|c| u64::from(c) * CPU_PERIOD_US / 1000)
            // The kernel's minimum quota is 1 ms.
            .map(|q| q.max(1000));
        let dirs = match self {
            Cgroups::V1 { memory: m, cpu } => {
                // The place itself may have been removed at a shutdown of an earlier engine
                // on this data directory (tests start several).
                for base in [m, cpu] {
                    std::fs::create_dir_all(base)?;
                }
                let (mdir, cdir) = (m.join(name), cpu.join(name));
                for d in [&mdir, &cdir] {
                    create_dir(d)?;
                }
                if let Some(bytes) = memory {
                    // No swap beyond the limit where the kernel accounts it.
                    write(&mdir.join("memory.limit_in_bytes"), &bytes.to_string())?;
                    let _ = write(
                        &mdir.join("memory.memsw.limit_in_bytes"),
                        &bytes.to_string(),
                    );
                }
                write(&cdir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                let q = quota.map_or("-1".to_string(), |q| q.to_string());
                write(&cdir.join("cpu.cfs_quota_us"), &q)?;
                vec![mdir, cdir]
            }
            Cgroups::V2 { base } => {
                let dir = base.join(name);
                create_dir(&dir)?;
                let max = memory.map_or("max".to_string(), |b| b.to_string());
                write(&dir.join("memory.max"), &max)?;
                let _ = write(&dir.join("memory.swap.max"), "0");
                let cpu = quota.map_or("max".to_string(), |q| q.to_string());
                write(&dir.join("cpu.max"), &format!("{cpu} {CPU_PERIOD_US}"))?;
                vec![dir]
            }
        };
        let procs = dirs
            .iter()
            .map(|d| {
                CString::new(d.join("cgroup.procs").as_os_str().as_encoded_bytes())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
            })
            .collect::<io::Result<_>>()?;
        let oom = match self {
            Cgroups::V1 { .. } => dirs[0].join("memory.oom_control"),
            Cgroups::V2 { .. } => dirs[0].join("memory.events"),
        };
        Ok(Group {
            dirs,
            procs,
            oom,
            memory_mb: r.memory_mb,
            v2: matches!(self, Cgroups::V2 { .. }),
        })
    }

    /// [`Cgroups::remove_empty`], then this data directory's own place too when nothing is left
    /// in it (at shutdown).
    pub fn remove_all_empty(&self) {
        self.remove_empty();
        let bases: Vec<&Path> = match self {
            Cgroups::V1 { memory, cpu } => vec![memory, cpu],
            Cgroups::V2 { base } => vec![base],
        };
        for base in bases {
            let _ = std::fs::remove_dir(base);
        }
    }

    /// Removes the groups of instances that no longer run (left by an earlier run of Slipway):
    /// `rmdir` only succeeds on a group without processes.
    pub fn remove_empty(&self) {
        let bases: Vec<&Path> = match self {
            Cgroups::V1 { memory, cpu } => vec![memory, cpu],
            Cgroups::V2 { base } => vec![base],
        };
        for base in bases {
            if let Ok(entries) = std::fs::read_dir(base) {
                for e in entries.flatten() {
                    if e.path().is_dir() {
                        let _ = std::fs::remove_dir(e.path());
                    }
                }
            }
        }
    }
}

/// One instance's group.
#[derive(Debug)]
pub struct Group {
    dirs: Vec<PathBuf>,
    /// `cgroup.procs` of each hierarchy, ready for the child to write to between fork and exec.
    procs: Vec<CString>,
    /// `memory.oom_control` (v1) or `memory.events` (v2): where the OOM kills are counted.
    oom: PathBuf,
    pub memory_mb: Option<u32>,
    /// cgroup v2, where a sandboxed child cannot join by itself.
    pub v2: bool,
}

impl Group {
    /// Makes the command's process join the group before it runs anything, so everything it
    /// starts is limited from its first allocation. Runs after the child dropped to a
    /// sandbox's uid, so the group's `cgroup.procs` must be writable by it ([`Group::allow`]).
    pub fn attach(&self, cmd: &mut Command) {
        let procs = self.procs.clone();
        // SAFETY: runs in the child between fork and exec; open, write and close are
        // async-signal-safe, and the paths were allocated before the fork.
        unsafe {
            cmd.pre_exec(move || {
                for path in &procs {
                    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    // "0" is the writing process itself.
                    let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                    let err = io::Error::last_os_error();
                    libc::close(fd);
                    if written != 1 {
                        return Err(err);
                    }
                }
                Ok(())
            });
        }
    }

    /// Moves the process `pid` (and its threads) into the group, from the parent: for where the
    /// child cannot join by itself (a sandboxed child on cgroup v2, which needs write access to
    /// the common ancestor of both groups). Joining here leaves the moments between exec and this
    /// call unaccounted; children it starts later are limited.
    pub fn add(&self, pid: u32) -> io::Result<()> {
        for d in &self.dirs {
            write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// After the spawn of a child set up with [`Group::attach`]'s caller: a sandboxed child on
    /// cgroup v2 could not join by itself, so the parent moves it ([`Group::add`]); otherwise it
    /// already has.
    pub fn joined(&self, pid: Option<u32>, sandboxed: bool) -> io::Result<()> {
        match pid {
            Some(pid) if self.v2 && sandboxed => self.add(pid),
            _ => Ok(()),
        }
    }

    /// Lets `uid` move its own processes into this group (and only this one: the files of
    /// every other group stay root's).
    pub fn allow(&self, uid: u32) -> io::Result<()> {
        for d in &self.dirs {
            std::os::unix::fs::chown(d.join("cgroup.procs"), Some(uid), Some(uid))?;
        }
        Ok(())
    }

    /// How many times the kernel's OOM killer killed a process of the group.
    pub fn oom_kills(&self) -> u64 {
        std::fs::read_to_string(&self.oom)
            .ok()
            .and_then(|text| {
                text.lines().find_map(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse().ok())
                })
            })
            .unwrap_or(0)
    }

    /// The memory the group uses now, in bytes (page cache included, as the limit counts it).
    pub fn memory_bytes(&self) -> Option<u64> {
        ["memory.usage_in_bytes", "memory.current"]
            .iter()
            .find_map(|f| std::fs::read_to_string(self.dirs[0].join(f)).ok())
            .and_then(|t| t.trim().parse().ok())
    }

    /// Removes the group; fails while processes are still in it.
    pub fn remove(&self) -> io::Result<()> {
        let mut result = Ok(());
        for d in &self.dirs {
            if let Err(e) = std::fs::remove_dir(d) {
                if e.kind() != io::ErrorKind::NotFound {
                    result = Err(e);
                }
            }
        }
        result
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }
}

fn create_dir(d: &Path) -> io::Result<()> {
    match std::fs::create_dir(d) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

fn write(path: &Path, value: &str) -> io::Result<()> {
    std::fs::write(path, value)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// cgroup v2: Slipway's own group holds Slipway, and a group with processes cannot hand
/// controllers to children; so Slipway moves itself into a `slipway` leaf, enables the memory and
/// cpu controllers for its group's children, and puts instances below `workloads/<scope>`.
fn v2_base(own: &Path, scope: &str) -> Result<PathBuf, String> {
    let fail = |what: &str, e: io::Error| format!("{what} ({}): {e}", own.display());
    let leaf = own.join("slipway");
    let workloads = own.join("workloads");
    let base = workloads.join(scope);
    let subtree = |dir: &Path| {
        std::fs::read_to_string(dir.join("cgroup.subtree_control")).is_ok_and(|c| {
            ["memory", "cpu"]
                .iter()
                .all(|x| c.split_whitespace().any(|y| y == *x))
        })
    };
    if !subtree(own) {
        create_dir(&leaf).map_err(|e| fail("cannot create Slipway's leaf group", e))?;
        write(&leaf.join("cgroup.procs"), &std::process::id().to_string())
            .map_err(|e| fail("cannot move Slipway into its leaf group", e))?;
        write(&own.join("cgroup.subtree_control"), "+memory +cpu")
            .map_err(|e| fail("cannot enable the memory and cpu controllers", e))?;
    }
    for dir in [&workloads, &base] {
        create_dir(dir).map_err(|e| fail("cannot create the workloads group", e))?;
        if !subtree(dir) {
            write(&dir.join("cgroup.subtree_control"), "+memory +cpu")
                .map_err(|e| fail("cannot enable the controllers for workloads", e))?;
        }
    }
    Ok(base)
}

#[derive(Debug, PartialEq)]
struct Mount {
    point: PathBuf,
    v2: bool,
    controllers: Vec<String>,
}

/// The cgroup mounts of `/proc/self/mountinfo`.
fn parse_mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split_whitespace().nth(4)?;
            let mut r = right.split_whitespace();
            let fstype = r.next()?;
            let _source = r.next()?;
            let options = r.next().unwrap_or("");
            let v2 = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            let controllers = if v2 {
                Vec::new()
            } else {
                options
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                    .map(str::to_string)
                    .collect()
            };
            Some(Mount {
                point: PathBuf::from(point),
                v2,
                controllers,
            })
        })
        .collect()
}

/// The path of this process's group in the hierarchy with `controllers` (v1), or in the unified
/// hierarchy (`None`).
fn own_path(proc_cgroup: &str, controllers: Option<&[String]>) -> Option<String> {
    proc_cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = match controllers {
            None => names.is_empty(),
            Some(wanted) => {
                let names: Vec<&str> = names.split(',').collect();
                wanted.iter().all(|w| names.contains(&w.as_str()))
            }
        };
        matches.then(|| path.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn mounts_and_own_groups_are_read() {
        let mounts = parse_mounts(MOUNTINFO);
        assert_eq!(mounts.len(), 4);
        assert_eq!(mounts[0].point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(mounts[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(mounts[2].controllers, ["xattr"]);
        assert!(mounts[3].v2);
        let own = "9:name=systemd:/\n4:memory:/box/7\n2:cpu,cpuacct:/box\n0::/user.slice\n";
        assert_eq!(
            own_path(own, Some(&mounts[1].controllers)).as_deref(),
            Some("/box/7")
        );
        assert_eq!(
            own_path(own, Some(&mounts[0].controllers)).as_deref(),
            Some("/box")
        );
        assert_eq!(own_path(own, None).as_deref(), Some("/user.slice"));
    }
}
