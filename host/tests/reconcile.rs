//! Live reconcile and discovery: models.yaml edits take effect without a restart, new
//! component folders become instances, and the user's file is edited without losing a byte.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const RED: [u8; 3] = [230, 0, 0];

fn connect_refused(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
}

#[test]
fn models_yaml_edits_apply_without_restart() {
    let (a, b) = (free_port(), free_port());
    let host = Host::start(
        &[],
        &[Inst {
            name: "a",
            implementation: "yolo",
            port: a,
            config: &["weights: tests/fixtures/yolo_v8_test.onnx"],
            classes: Some(&["red", "green"]),
            extra: &[],
        }],
    );
    let img = json!({"image": frame_png(640, 320, &[(100, 60, 299, 159, RED)])});
    assert_eq!(boxes(&post(a, &img).1).len(), 1);
    assert!(connect_refused(b));
    let original = std::fs::read_to_string(host.config_path()).unwrap();
    // Change a's threshold and add b.
    let edited = original.replace("      weights: tests/fixtures/yolo_v8_test.onnx\n", "      weights: tests/fixtures/yolo_v8_test.onnx\n      threshold: 0.95\n")
        + &format!("  b:\n    implementation: yolo\n    port: {b}\n    config:\n      weights: tests/fixtures/yolo_v8_test.onnx\n    classes: [red, green]\n");
    std::fs::write(host.config_path(), &edited).unwrap();
    host.wait_log("models.yaml applied", 1, Duration::from_secs(60));
    assert_eq!(post(b, &img).0, 200, "the added instance serves");
    assert_eq!(
        boxes(&post(a, &img).1).len(),
        0,
        "the changed instance uses its new config"
    );
    // Writing the same content again (new mtime) changes nothing.
    std::thread::sleep(Duration::from_millis(50));
    std::fs::write(host.config_path(), &edited).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        host.log().matches("models.yaml applied").count(),
        1,
        "{}",
        host.log()
    );
    // Remove b: its port is released; a keeps serving.
    let without_b = edited[..edited.find("  b:\n").unwrap()].to_string();
    std::fs::write(host.config_path(), &without_b).unwrap();
    host.wait_log("models.yaml applied", 2, Duration::from_secs(60));
    assert!(connect_refused(b), "removed instance's port is released");
    assert_eq!(post(a, &img).0, 200);
    // A broken edit keeps the running state.
    std::fs::write(host.config_path(), "models: [this is not a mapping\n").unwrap();
    host.wait_log("running state kept", 1, Duration::from_secs(60));
    assert_eq!(post(a, &img).0, 200);
}

/// Publish `text` as a Kubernetes ConfigMap volume does: a new timestamped folder, a
/// `..data_tmp` symlink to it renamed over `..data` (atomic), the old folder removed;
/// `models.yaml` itself is a symlink to `..data/models.yaml` that never changes.
fn publish_like_a_configmap(config_dir: &std::path::Path, version: u32, text: &str) {
    use std::os::unix::fs::symlink;
    let folder = format!("..2026_12_02_00_00_0{version}.{version}");
    std::fs::create_dir_all(config_dir.join(&folder)).unwrap();
    std::fs::write(config_dir.join(&folder).join("models.yaml"), text).unwrap();
    let _ = std::fs::remove_file(config_dir.join("..data_tmp"));
    symlink(&folder, config_dir.join("..data_tmp")).unwrap();
    let old = std::fs::read_link(config_dir.join("..data")).ok();
    std::fs::rename(config_dir.join("..data_tmp"), config_dir.join("..data")).unwrap();
    if let Some(old) = old {
        std::fs::remove_dir_all(config_dir.join(old)).unwrap();
    }
    if !config_dir.join("models.yaml").exists() {
        symlink("..data/models.yaml", config_dir.join("models.yaml")).unwrap();
    }
}

#[test]
fn a_configmap_mounted_models_yaml_is_reloaded_on_the_kubernetes_symlink_swap() {
    let (a, b) = (free_port(), free_port());
    let (root, gateway) = make_root(
        &[],
        &[Inst {
            classes: Some(&["red", "green"]),
            ..inst(
                "a",
                "yolo",
                a,
                &["weights: tests/fixtures/yolo_v8_test.onnx"],
                &[],
            )
        }],
    );
    let config_dir = root.join("config");
    let original = std::fs::read_to_string(config_dir.join("models.yaml")).unwrap();
    std::fs::remove_file(config_dir.join("models.yaml")).unwrap();
    publish_like_a_configmap(&config_dir, 1, &original);
    let host = Host::start_in(root, gateway);
    let img = json!({"image": frame_png(640, 320, &[(100, 60, 299, 159, RED)])});
    assert_eq!(post(a, &img).0, 200);
    assert!(connect_refused(b));
    let added = original.clone()
        + &format!("  b:\n    implementation: yolo\n    port: {b}\n    config:\n      weights: tests/fixtures/yolo_v8_test.onnx\n    classes: [red, green]\n");
    publish_like_a_configmap(&config_dir, 2, &added);
    host.wait_log("models.yaml applied", 1, Duration::from_secs(60));
    assert_eq!(
        post(b, &img).0,
        200,
        "the instance added by the swap serves"
    );
    publish_like_a_configmap(&config_dir, 3, &original);
    host.wait_log("models.yaml applied", 2, Duration::from_secs(60));
    assert!(
        connect_refused(b),
        "the instance removed by the next swap is gone"
    );
    assert_eq!(post(a, &img).0, 200);
}

#[test]
fn new_component_folders_are_discovered_and_registered_without_losing_the_users_file() {
    let a = free_port();
    let host = Host::start(
        &[&format!("port_range: {}-{}", a + 1, a + 200)],
        &[Inst {
            name: "a",
            implementation: "yolo",
            port: a,
            config: &["weights: tests/fixtures/yolo_v8_test.onnx"],
            classes: Some(&["red", "green"]),
            extra: &[],
        }],
    );
    // The user's file, with comments and odd formatting that must survive byte for byte.
    let users = std::fs::read_to_string(host.config_path())
        .unwrap()
        .replace(
            "models:\n",
            "# my models, keep this comment\nmodels:   # and this one\n",
        )
        + "    idle_timeout:   10m   # spaced out\n";
    std::fs::write(host.config_path(), &users).unwrap();

    // The first ports of the range are taken by another process: discovery skips them.
    let squatters: Vec<_> = (a + 1..=a + 3)
        .filter_map(|p| std::net::TcpListener::bind(("0.0.0.0", p)).ok())
        .collect();
    assert!(!squatters.is_empty());
    // A model-only folder, created together with its file.
    let folder = host.dir.join("components/my-detector");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(
        need("tests/fixtures/yolo_v5_test.onnx"),
        folder.join("model.onnx"),
    )
    .unwrap();
    // A component folder that needs nothing: registered as is.
    let comp = host.dir.join("components/extra-comp");
    std::fs::create_dir(&comp).unwrap();
    std::fs::copy(
        need("tests/components/hostile/component.wasm"),
        comp.join("component.wasm"),
    )
    .unwrap();
    host.wait_log(
        "registered a discovered instance",
        2,
        Duration::from_secs(120),
    );

    let now = std::fs::read_to_string(host.config_path()).unwrap();
    assert!(
        now.starts_with(&users),
        "the user's text is a byte-for-byte prefix:\n{now}"
    );
    let file: serde_norway::Value = serde_norway::from_str(&now).unwrap();
    let models = file["models"].as_mapping().unwrap();
    let md = &file["models"]["my-detector"];
    assert_eq!(md["implementation"].as_str(), Some("yolo"));
    let rel = folder
        .join("model.onnx")
        .strip_prefix(repo())
        .unwrap()
        .display()
        .to_string();
    assert_eq!(md["config"]["weights"].as_str(), Some(rel.as_str()));
    let port = md["port"].as_u64().unwrap() as u16;
    assert!((a + 1..=a + 200).contains(&port));
    let taken: Vec<u16> = squatters
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    assert!(
        !taken.contains(&port),
        "port {port} is taken by another process: {taken:?}"
    );
    let other = file["models"]["extra-comp"]["port"].as_u64().unwrap() as u16;
    assert!(!taken.contains(&other) && other != port);
    assert_eq!(
        file["models"]["extra-comp"]["implementation"].as_str(),
        Some("extra-comp")
    );
    assert_eq!(models.len(), 3);
    // classes.txt came from the model's Ultralytics metadata.
    let classes = std::fs::read_to_string(folder.join("classes.txt")).unwrap();
    assert_eq!(
        classes
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>(),
        vec!["red", "green"]
    );
    // And the new instances serve.
    let start = std::time::Instant::now();
    while !["my-detector", "extra-comp"].iter().all(|n| {
        host.status()["instances"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == *n)
    }) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not applied: {}",
            host.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (s, v) = post(
        port,
        &json!({"image": frame_png(640, 320, &[(100, 60, 299, 159, RED)])}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        boxes(&v),
        vec![("red".to_string(), vec![100.0, 60.0, 300.0, 160.0])]
    );
    assert_eq!(host.instance_status("extra-comp")["kind"], "detector");
}

#[test]
fn generic_components_and_unfit_models_are_left_alone() {
    let a = free_port();
    let host = Host::start(
        &[],
        &[Inst {
            name: "a",
            implementation: "hostile",
            port: a,
            config: &[],
            classes: None,
            extra: &[],
        }],
    );
    // yolo needs `weights` and its folder has none: a generic implementation, not an instance.
    let generic = host.dir.join("components/another-yolo");
    std::fs::create_dir(&generic).unwrap();
    std::fs::copy(
        need("components/yolo/component.wasm"),
        generic.join("component.wasm"),
    )
    .unwrap();
    // An ONNX model the generic detector cannot read (the face model's outputs).
    let unfit = host.dir.join("components/not-yolo");
    std::fs::create_dir(&unfit).unwrap();
    std::fs::copy(
        need("models/face_detection_short_range.onnx"),
        unfit.join("model.onnx"),
    )
    .unwrap();
    host.wait_log("not registered", 2, Duration::from_secs(120));
    let text = std::fs::read_to_string(host.config_path()).unwrap();
    assert!(
        !text.contains("another-yolo") && !text.contains("not-yolo"),
        "{text}"
    );
    assert!(host.log().contains("needs `weights`"));
}
