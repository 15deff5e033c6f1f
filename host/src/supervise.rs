//! `host up -d` keeps the serving process alive, like compose's `restart: unless-stopped`:
//! the detached process is a small supervisor that runs `host up` as its child and starts it
//! again when it dies (a native library's abort, the kernel's OOM killer, a `kill -9`),
//! within half a second, backing off when it keeps dying at start (a crash loop). Each exit
//! is logged with its reason and counted in `.state/supervisor.json`, which `host status`
//! shows. `host down` signals the supervisor, which stops the child (SIGTERM: the usual
//! drain) and then exits; the child also gets SIGTERM if the supervisor dies.
//!
//! The foreground `host up` is not supervised: under systemd or Kubernetes, they restart it.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

/// What the supervisor records for `host status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The supervisor's pid.
    pub supervisor_pid: u32,
    /// The serving process now (none while it is being restarted).
    pub serving_pid: Option<u32>,
    /// How often the serving process died and was started again.
    pub restarts: u64,
    /// The last exit of a serving process.
    pub last_exit: Option<Exit>,
}

/// One exit of the serving process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exit {
    /// In words: `killed by signal 9 (SIGKILL) ...` or `exited with code 1`.
    pub reason: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// How long it had run.
    pub uptime_s: f64,
}

/// Where the record lives under the state directory.
pub fn record_path(state_dir: &Path) -> PathBuf {
    state_dir.join("supervisor.json")
}

/// The record, if a supervisor wrote one.
pub fn read_record(state_dir: &Path) -> Option<Record> {
    serde_json::from_str(&std::fs::read_to_string(record_path(state_dir)).ok()?).ok()
}

fn write_record(state_dir: &Path, r: &Record) {
    if let Ok(text) = serde_json::to_string(r) {
        let _ = crate::config::yaml_edit::write_atomic(&record_path(state_dir), &text);
    }
}

/// Whether `pid` is a serving process a supervisor started (`host ... up --supervised`).
pub fn is_serving(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == b"--supervised"))
}

/// The wait before restart `n` (1-based) after a process that ran for `uptime`: at once
/// (half a second) after one that had been serving, doubling up to 30 s while processes
/// keep dying within 10 s of their start.
pub fn backoff(previous: Duration, uptime: Duration) -> Duration {
    const FIRST: Duration = Duration::from_millis(500);
    if uptime >= Duration::from_secs(10) {
        FIRST
    } else {
        (previous * 2).clamp(FIRST, Duration::from_secs(30))
    }
}

/// The kernel's count of processes its OOM killer killed: in the cgroup of process `pid`
/// when its `memory.events` is readable (cgroup v2), else machine-wide (`/proc/vmstat`).
fn oom_kills(pid: u32) -> Option<u64> {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok();
    let events = cgroup
        .as_deref()
        .and_then(|c| c.lines().find_map(|l| l.strip_prefix("0::")))
        .and_then(|path| {
            std::fs::read_to_string(format!("/sys/fs/cgroup{}/memory.events", path.trim())).ok()
        });
    let count = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
    };
    match events {
        Some(e) => count(&e, "oom_kill "),
        None => count(&std::fs::read_to_string("/proc/vmstat").ok()?, "oom_kill "),
    }
}

/// A signal's name.
fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGINT => "SIGINT",
        _ => "a signal",
    }
}

/// Why the serving process ended, in words; `oom` when the kernel's OOM-kill count rose
/// while it ran.
pub fn reason(status: ExitStatus, oom: bool) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => {
            let mut r = format!("killed by signal {sig} ({})", signal_name(sig));
            if status.core_dumped() {
                r.push_str(", core dumped");
            }
            if oom && sig == libc::SIGKILL {
                r.push_str(": the kernel's OOM killer (its oom_kill count rose)");
            }
            r
        }
        _ => "ended for an unknown reason".into(),
    }
}

/// Run `host up` under supervision until SIGTERM or SIGINT. `serve` is the command that
/// serves (this executable with `up --supervised`); `state_dir` holds the record. Logging
/// must be set up (the supervisor's lines go to the same log as the child's).
pub fn run(serve: std::process::Command, state_dir: &Path) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(supervise(serve, state_dir))
}

async fn supervise(serve: std::process::Command, state_dir: &Path) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut serve = tokio::process::Command::from(serve);
    // SAFETY: prctl is async-signal-safe; the child gets SIGTERM (a drain) if we die.
    unsafe {
        serve.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut record = Record {
        supervisor_pid: std::process::id(),
        ..Default::default()
    };
    let mut delay = Duration::ZERO;
    loop {
        let mut child = serve.spawn()?;
        let pid = child.id().unwrap_or(0);
        let started = Instant::now();
        // The child shares the supervisor's cgroup.
        let ooms_before = oom_kills(std::process::id());
        record.serving_pid = Some(pid);
        write_record(state_dir, &record);
        let status = tokio::select! {
            s = child.wait() => s?,
            _ = term.recv() => return stop(child, state_dir).await,
            _ = int.recv() => return stop(child, state_dir).await,
        };
        let uptime = started.elapsed();
        let oom =
            matches!((ooms_before, oom_kills(std::process::id())), (Some(a), Some(b)) if b > a);
        let why = reason(status, oom);
        delay = backoff(delay, uptime);
        record.restarts += 1;
        record.serving_pid = None;
        record.last_exit = Some(Exit {
            reason: why.clone(),
            at: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            uptime_s: uptime.as_secs_f64(),
        });
        write_record(state_dir, &record);
        tracing::error!(
            pid,
            restarts = record.restarts,
            "supervisor: the serving process ended ({why}) after {:.1}s; starting it again in {:.1}s",
            uptime.as_secs_f64(),
            delay.as_secs_f64()
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    let _ = std::fs::remove_file(record_path(state_dir));
    Ok(())
}

/// Stop the child the usual way (SIGTERM: drain, unload, exit) and wait for it.
async fn stop(mut child: tokio::process::Child, state_dir: &Path) -> anyhow::Result<()> {
    if let Some(pid) = child.id() {
        // SAFETY: our own child, not yet reaped.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    let _ = child.wait().await;
    let _ = std::fs::remove_file(record_path(state_dir));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt as _;

    #[test]
    fn backs_off_only_while_processes_keep_dying_at_start() {
        let quick = Duration::from_secs(1);
        let mut d = Duration::ZERO;
        let waits: Vec<u64> = (0..8)
            .map(|_| {
                d = backoff(d, quick);
                d.as_millis() as u64
            })
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(
            backoff(Duration::from_secs(30), Duration::from_secs(60)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn reasons_name_the_signal_the_code_and_the_oom_killer() {
        assert_eq!(
            reason(ExitStatus::from_raw(9), true),
            "killed by signal 9 (SIGKILL): the kernel's OOM killer (its oom_kill count rose)"
        );
        assert_eq!(
            reason(ExitStatus::from_raw(9), false),
            "killed by signal 9 (SIGKILL)"
        );
        assert_eq!(
            reason(ExitStatus::from_raw(6 | 0x80), false),
            "killed by signal 6 (SIGABRT), core dumped"
        );
        assert_eq!(
            reason(ExitStatus::from_raw(1 << 8), false),
            "exited with code 1"
        );
    }
}
