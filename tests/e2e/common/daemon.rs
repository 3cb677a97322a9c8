//! A `tiercare run` started in the background for a test, and `tiercare status --json`: what the
//! daemon tests of several modules share. Waiting polls what the daemon records until a
//! deadline; nothing sleeps to wait for it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{command_in, run_in};

/// How long any observable state of the daemon may take to appear.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A daemon started in the background, its stderr in a file; killed if still running at drop.
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// `tiercare run EXTRA...` in `root`, logging at info.
    pub fn start(root: &Path, extra: &[&str]) -> Daemon {
        Daemon::start_logging(root, "info", extra)
    }

    /// `tiercare run EXTRA...` in `root` with `TIERCARE_LOG=level`.
    pub fn start_logging(root: &Path, level: &str, extra: &[&str]) -> Daemon {
        Daemon::start_with(root, level, &[], extra)
    }

    /// `tiercare run EXTRA...` in `root`, logging at info, with the variables `env` set.
    pub fn start_env(root: &Path, env: &[(&str, &str)], extra: &[&str]) -> Daemon {
        Daemon::start_with(root, "info", env, extra)
    }

    /// `tiercare run EXTRA...` in `root` with `TIERCARE_LOG=level` and the variables `env`.
    pub fn start_with_env(
        root: &Path,
        level: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        Daemon::start_with(root, level, env, extra)
    }

    fn start_with(root: &Path, level: &str, env: &[(&str, &str)], extra: &[&str]) -> Daemon {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let log = root.with_extension(format!("log{}", NEXT.fetch_add(1, Ordering::SeqCst)));
        let child = command_in(root)
            .arg("run")
            .args(extra)
            .envs(env.iter().copied())
            .env("TIERCARE_LOG", level)
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("start tiercare run");
        Daemon { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's lines containing `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }

    /// Sends `signal` (`TERM`, `HUP`, `KILL`, ...) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (polling, with the deadline) for the process to end; its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not exit\n--- log\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls `tiercare status --json` in `root` until `ok` holds, failing with the status and
    /// the daemon's log at the deadline.
    pub fn wait_status(&self, root: &Path, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let status = status(root);
            if ok(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n--- status\n{status:#}\n--- log\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tiercare status --json` in `root`, which must succeed.
pub fn status(root: &Path) -> Value {
    let run = run_in(root, &["status", "--json"]);
    run.assert_code(0);
    run.json()
}
