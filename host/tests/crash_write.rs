//! A models.yaml write killed at any instant leaves a complete file (old or new), never a
//! torn one: the writer is this test binary re-run as a child and SIGKILLed mid-loop.

use std::process::Command;
use std::time::Duration;

const OLD: &str = "models:\n  a:\n    implementation: yolo\n    port: 5001\n";

fn new_text() -> String {
    // Large enough that a torn write would be visible.
    let mut t = String::from(OLD);
    for i in 0..2000 {
        t.push_str(&format!(
            "  m{i}:\n    implementation: yolo\n    port: {}\n",
            6000 + i
        ));
    }
    t
}

#[test]
fn killed_writer_leaves_a_whole_file() {
    if let Ok(path) = std::env::var("CRASH_WRITE_CHILD") {
        // Child: rewrite the file forever, alternating contents.
        let big = new_text();
        loop {
            host::config::yaml_edit::write_atomic(std::path::Path::new(&path), &big).unwrap();
            host::config::yaml_edit::write_atomic(std::path::Path::new(&path), OLD).unwrap();
        }
    }
    let dir = std::env::temp_dir().join(format!("crash-write-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("models.yaml");
    let big = new_text();
    for round in 0..20u64 {
        std::fs::write(&path, OLD).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "killed_writer_leaves_a_whole_file",
                "--nocapture",
            ])
            .env("CRASH_WRITE_CHILD", &path)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(30 + round * 7));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text == OLD || text == big,
            "round {round}: torn file of {} bytes",
            text.len()
        );
        serde_norway::from_str::<serde_norway::Value>(&text).unwrap();
    }
    std::fs::remove_dir_all(dir).unwrap();
}
