//! `host new detector <name>` makes a crate that builds to a component and passes its
//! generated smoke test.

mod common;

use std::process::Command;

use common::*;

#[test]
fn scaffolded_detector_builds_and_passes_its_smoke_test() {
    let root = repo()
        .join("target/test-roots")
        .join(format!("scaffold-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let components = root.join("components");
    std::fs::create_dir_all(components.join(".cargo")).unwrap();
    std::os::unix::fs::symlink(repo().join("wit"), root.join("wit")).unwrap();
    std::os::unix::fs::symlink(
        repo().join("components/model-sdk"),
        components.join("model-sdk"),
    )
    .unwrap();
    std::fs::copy(
        repo().join("components/.cargo/config.toml"),
        components.join(".cargo/config.toml"),
    )
    .unwrap();
    // The project's guest workspace, with only the SDK as a member.
    let ws = std::fs::read_to_string(repo().join("components/Cargo.toml")).unwrap();
    let start = ws.find("members = [").unwrap();
    let end = start + ws[start..].find(']').unwrap();
    std::fs::write(
        components.join("Cargo.toml"),
        format!(
            "{}members = [\"model-sdk\"]{}",
            &ws[..start],
            &ws[end + 1..]
        ),
    )
    .unwrap();
    std::fs::copy(
        repo().join("components/Cargo.lock"),
        components.join("Cargo.lock"),
    )
    .unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("--root")
        .arg(&root)
        .args(["new", "detector", "my-net"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(components.join("Cargo.toml"))
        .unwrap()
        .contains("\"model-sdk\", \"my-net\""));
    // Refuses to overwrite, and refuses bad names.
    let again = Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("--root")
        .arg(&root)
        .args(["new", "detector", "my-net"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    let bad = Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("--root")
        .arg(&root)
        .args(["new", "detector", "../evil"])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    // Builds to a component with the same script as the real ones.
    let build = Command::new(repo().join("scripts/build-components.sh"))
        .arg(&components)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    let wasm = std::fs::read(components.join("my-net/component.wasm")).unwrap();
    assert_eq!(
        host::runtime::kind::kind_of(&wasm),
        Ok(host::runtime::kind::Kind::Detector)
    );

    // Its generated smoke test passes natively.
    let host_triple = String::from_utf8(Command::new("rustc").arg("-vV").output().unwrap().stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(String::from))
        .unwrap();
    let test = Command::new("cargo")
        .args(["test", "--quiet", "-p", "my-net", "--manifest-path"])
        .arg(components.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(repo().join("target/guest-native"))
        .args([
            "--target",
            &host_triple,
            "--config",
            "build.rustc=\"rustc\"",
            "--config",
            "target.wasm32-wasip2.rustflags=[]",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&test.stdout);
    assert!(
        test.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&test.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
    std::fs::remove_dir_all(root).unwrap();
}
