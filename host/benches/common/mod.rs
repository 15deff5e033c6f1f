//! What the benches share: the repository root, a free loopback port, waiting for a port,
//! and timing a closure to its median.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The repository root (the parent of the host crate).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A port free on loopback right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Wait up to 10 s for something to listen on `port`.
pub fn wait_for(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("host did not start");
}

/// Median of `f`'s run time in ms: 2 warm-up calls, then runs for about `budget` (at least
/// 5, at most 200).
pub fn measure(budget: Duration, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 5 || (start.elapsed() < budget && times.len() < 200) {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
    }
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e3
}
