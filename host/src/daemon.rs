//! `host up -d` / `host down`: a detached host with a pid file and a log file under the
//! state directory (`<root>/.state/`), like `docker compose up -d`.
//!
//! The pid file holds the pid and the process's start time (from `/proc`), so a stale
//! file whose pid was reused by another process is recognised and never signalled.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Files of a root's detached host.
pub struct StateDir {
    pub dir: PathBuf,
}

impl StateDir {
    /// The state directory of project `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            dir: root.join(".state"),
        }
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("host.pid")
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("host.log")
    }

    /// The running host recorded in the pid file, if that process is still the one that
    /// wrote it. A stale file is removed; returns what happened.
    pub fn running(&self) -> Running {
        let Ok(text) = std::fs::read_to_string(self.pid_file()) else {
            return Running::No;
        };
        let mut parts = text.split_whitespace();
        let (Some(pid), Some(start)) = (
            parts.next().and_then(|p| p.parse::<i32>().ok()),
            parts.next(),
        ) else {
            let _ = std::fs::remove_file(self.pid_file());
            return Running::Stale(0);
        };
        if start_time(pid).as_deref() == Some(start) {
            Running::Yes(pid)
        } else {
            let _ = std::fs::remove_file(self.pid_file());
            Running::Stale(pid)
        }
    }

    /// Record `pid` as the detached host.
    pub fn write_pid(&self, pid: i32) -> std::io::Result<()> {
        let start = start_time(pid)
            .ok_or_else(|| std::io::Error::other(format!("process {pid} is gone")))?;
        std::fs::create_dir_all(&self.dir)?;
        crate::config::yaml_edit::write_atomic(&self.pid_file(), &format!("{pid} {start}\n"))
    }
}

/// What the pid file says.
#[derive(Debug, PartialEq, Eq)]
pub enum Running {
    /// No pid file.
    No,
    /// The pid file named a process that is gone or another process; it was removed.
    Stale(i32),
    /// This process is the host.
    Yes(i32),
}

/// A process's start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
pub fn start_time(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(String::from)
}

fn alive(pid: i32, start: &Option<String>) -> bool {
    start_time(pid) == *start && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s[s.rfind(')')? + 1..]
                .split_whitespace()
                .next()
                .map(|st| st == "Z")
        })
        .unwrap_or(false)
}

/// Ask `pid` to stop (SIGTERM: stop accepting, finish in-flight requests, unload, exit);
/// after `timeout`, SIGKILL. Returns whether it had to be killed.
pub fn stop(pid: i32, timeout: Duration) -> std::io::Result<bool> {
    let start = start_time(pid);
    // SAFETY: plain kill(2) on a pid whose identity was just checked.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !alive(pid, &start) {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(pid, &start) {
        // SAFETY: as above; same process (start time unchanged).
        unsafe { libc::kill(pid, libc::SIGKILL) };
        return Ok(true);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_readable_and_stale_files_are_removed() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        let dir = std::env::temp_dir().join(format!("statedir-{me}"));
        let s = StateDir { dir: dir.clone() };
        s.write_pid(me).unwrap();
        assert_eq!(s.running(), Running::Yes(me));
        // Same pid, other start time: a reused pid is not ours.
        std::fs::write(s.pid_file(), format!("{me} 1\n")).unwrap();
        assert_eq!(s.running(), Running::Stale(me));
        assert!(!s.pid_file().exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
