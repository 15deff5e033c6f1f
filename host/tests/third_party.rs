//! Third-party components: the contract as a product (`host wit`), projects made by
//! `host new` outside the repository (Python through componentize-py, standalone Rust), and
//! `host add` with each of its refusals, tested with crafted components.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn host_cmd(root: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_host"));
    c.arg("--root").arg(root);
    c
}

fn ok(out: Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// A fresh folder outside the repository (the system's temp dir).
fn outside(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cvat-host-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn host_wit_writes_the_contract_this_host_speaks() {
    let dir = outside("wit");
    ok(
        host_cmd(&repo())
            .arg("wit")
            .arg(dir.join("wit"))
            .output()
            .unwrap(),
        "host wit",
    );
    for rel in ["cvat-model.wit", "deps/wasi-nn/wasi-nn.wit"] {
        assert_eq!(
            std::fs::read(dir.join("wit").join(rel)).unwrap(),
            std::fs::read(repo().join("wit").join(rel)).unwrap(),
            "{rel}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_python_detector_made_outside_the_repo_is_built_added_listed_and_called_like_the_rust_one() {
    // From an empty folder: scaffold, build (one command), its own smoke test (one command).
    let work = outside("python");
    let project = work.join("face-py");
    ok(
        host_cmd(&repo())
            .args(["new", "detector", "face-py", "--lang", "python", "--dir"])
            .arg(&project)
            .output()
            .unwrap(),
        "host new --lang python",
    );
    let built = ok(
        Command::new(project.join("build.sh"))
            .env_remove("COMPONENTIZE_PY")
            .output()
            .unwrap(),
        "build.sh",
    );
    assert!(built.contains("built component.wasm"), "{built}");
    let smoke = ok(
        Command::new(project.join("smoke_test.py"))
            .output()
            .unwrap(),
        "smoke_test.py",
    );
    assert!(smoke.contains("smoke test passed"), "{smoke}");
    assert!(smoke.contains("7 inert"), "{smoke}");

    // `host add` into a running host, beside the Rust component of the same model.
    let rust_port = free_port();
    let host = Host::start(
        &[],
        &[Inst {
            classes: Some(&["face"]),
            ..inst(
                "face-rust",
                "blazeface",
                rust_port,
                &["weights: models/face_detection_short_range.onnx"],
                &[],
            )
        }],
    );
    let py_port = free_port();
    let added = ok(
        host_cmd(&host.dir)
            .arg("add")
            .arg(project.join("component.wasm"))
            .args(["--name", "face-py", "--port", &py_port.to_string()])
            .arg("--weights")
            .arg(repo().join("models/face_detection_short_range.onnx"))
            .output()
            .unwrap(),
        "host add",
    );
    assert!(added.contains("a detector on port"), "{added}");
    // The running host picks it up; CVAT's listing shows it with its label.
    wait_until(
        "the gateway lists face-py",
        Duration::from_secs(300),
        || {
            ureq::get(&format!(
                "http://127.0.0.1:{}/api/functions/face-py",
                host.gateway
            ))
            .call()
            .ok()
            .and_then(|r| r.into_json::<Value>().ok())
            .is_some_and(|f| {
                f["metadata"]["annotations"]["spec"]
                    .as_str()
                    .is_some_and(|s| s.contains("\"face\""))
            })
        },
    );

    // Its boxes match the Rust component's within 0.5 px, on the astronaut and on
    // a rescaled copy and crops of other aspect ratios (other letterbox mappings).
    let astronaut = image::open(need("tests/fixtures/astronaut.png"))
        .unwrap()
        .to_rgb8();
    let mut variants = vec![("astronaut".to_string(), astronaut.clone())];
    let half = image::imageops::resize(&astronaut, 256, 256, image::imageops::FilterType::Triangle);
    variants.push(("astronaut at 256x256".into(), half));
    let wide = image::imageops::crop_imm(&astronaut, 80, 20, 300, 220).to_image();
    variants.push(("a 300x220 crop".into(), wide));
    let tall = image::imageops::crop_imm(&astronaut, 150, 30, 200, 300).to_image();
    variants.push(("a 200x300 crop".into(), tall));
    let mut compared = 0;
    for (what, img) in &variants {
        let body = json!({"image": png_b64(img)});
        let (s, rust) = post(rust_port, &body);
        assert_eq!(s, 200, "{rust}");
        let (s, py, _) = invoke_via_gateway(host.gateway, "face-py", &body, "300s");
        assert_eq!(s, 200, "{what}: {py}");
        let (rust, py) = (boxes(&rust), boxes(&py));
        assert_eq!(rust.len(), py.len(), "{what}: rust {rust:?} python {py:?}");
        assert!(!rust.is_empty(), "{what}: no face found");
        for (r, p) in rust.iter().zip(&py) {
            assert_eq!(r.0, p.0);
            let worst =
                r.1.iter()
                    .zip(&p.1)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
            println!(
                "{what}: rust {:?} python {:?}: {worst:.3} px apart",
                r.1, p.1
            );
            assert!(worst <= 0.5, "{what}: {worst} px apart");
            compared += 1;
        }
    }
    assert!(compared >= 4);
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn a_standalone_rust_project_builds_with_the_setup_toolchain_and_passes_its_smoke_test() {
    let work = outside("rust");
    let project = work.join("my-det");
    ok(
        host_cmd(&repo())
            .args(["new", "detector", "my-det", "--lang", "rust", "--dir"])
            .arg(&project)
            .output()
            .unwrap(),
        "host new --lang rust --dir",
    );
    // Its own workspace, the contract and the SDK vendored: nothing points into the repo
    // but the toolchain path in build.sh.
    assert!(std::fs::read_to_string(project.join("Cargo.toml"))
        .unwrap()
        .contains("[workspace]"));
    assert!(project.join("wit/cvat-model.wit").is_file());
    assert!(project.join("sdk/src/pixels.rs").is_file());
    let built = ok(
        Command::new(project.join("build.sh"))
            // Shared between runs (with Debian's toolchain, build-std compiles std for the target).
            .env("CARGO_TARGET_DIR", repo().join("target/guest-standalone"))
            .output()
            .unwrap(),
        "build.sh",
    );
    assert!(built.contains("built component.wasm"), "{built}");
    let smoke = ok(
        Command::new(project.join("smoke_test.py"))
            .output()
            .unwrap(),
        "smoke_test.py",
    );
    assert!(smoke.contains("smoke test passed"), "{smoke}");
    let _ = std::fs::remove_dir_all(&work);
}

/// `wasm` with every occurrence of `from` replaced by `to` (same length: names in the
/// binary are length-prefixed).
fn patched(wasm: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "{from} -> {to}");
    let (from, to) = (from.as_bytes(), to.as_bytes());
    let mut out = wasm.to_vec();
    let mut i = 0;
    let mut n = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            n += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(n > 0, "{} not found", String::from_utf8_lossy(from));
    out
}

/// The name `wasm` imports that starts with `prefix` (e.g. `wasi:cli/environment@`), with its
/// version, whichever WASI release the guest toolchain's std targets.
fn imported(wasm: &[u8], prefix: &str) -> String {
    let at = wasm
        .windows(prefix.len())
        .position(|w| w == prefix.as_bytes())
        .unwrap_or_else(|| panic!("{prefix} not found"));
    let rest = &wasm[at + prefix.len()..];
    let version: String = rest
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'.')
        .map(|&b| b as char)
        .collect();
    format!("{prefix}{version}")
}

/// `wasm` with a custom section of `size` bytes appended (still a valid component).
fn padded(wasm: &[u8], size: usize) -> Vec<u8> {
    fn leb(mut v: usize, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    let name = b"padding";
    let mut payload = Vec::new();
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend(std::iter::repeat_n(0u8, size));
    let mut out = wasm.to_vec();
    out.push(0);
    leb(payload.len(), &mut out);
    out.extend(payload);
    out
}

#[test]
fn host_add_refuses_what_it_cannot_serve_or_should_not_trust_and_leaves_nothing_behind() {
    let (root, _) = make_root(&["request_timeout: 2s", "max_component_mb: 1"], &[]);
    let crafted = root.join("crafted");
    std::fs::create_dir_all(&crafted).unwrap();
    let blazeface = std::fs::read(need("components/blazeface/component.wasm")).unwrap();
    // Renamed imports (same length: names are length-prefixed), at whichever WASI version
    // the guest toolchain's std imports.
    let environment = imported(&blazeface, "wasi:cli/environment@");
    let spy = environment.replace("wasi:cli/", "acme:spy/");
    let io_error = imported(&blazeface, "wasi:io/error@");
    let http = io_error.replace("wasi:io/error", "wasi:http/err");
    let hostile = std::fs::read(need("tests/components/hostile/component.wasm")).unwrap();
    let weights = need("models/face_detection_short_range.onnx");
    let contract = format!("@{}", host::runtime::kind::CONTRACT_VERSION);
    let write = |name: &str, bytes: Vec<u8>| {
        let p = crafted.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let cases: Vec<(&str, PathBuf, Vec<&str>, Vec<String>)> = vec![
        (
            "over the size limit",
            write("big.wasm", padded(&blazeface, 2 << 20)),
            vec![],
            vec!["over the limit of 1.0 MB".into(), "max_component_mb".into()],
        ),
        (
            "no kind",
            write(
                "nokind.wasm",
                patched(
                    &blazeface,
                    &format!("cvat:model/detector{contract}"),
                    &format!("cvat:model/detectoz{contract}"),
                ),
            ),
            vec![],
            vec!["exports none of cvat:model/detector".into()],
        ),
        (
            "another contract version",
            write(
                "oldcontract.wasm",
                patched(
                    &blazeface,
                    &format!("cvat:model/detector{contract}"),
                    "cvat:model/detector@0.2.0",
                ),
            ),
            vec![],
            vec!["built against cvat:model@0.2.0".into()],
        ),
        (
            "imports outside the granted set",
            write(
                "spy.wasm",
                patched(&patched(&blazeface, &environment, &spy), &io_error, &http),
            ),
            vec![],
            vec![
                format!("{spy}: not in the granted set"),
                format!("{http}: HTTP is not granted"),
            ],
        ),
        (
            "describe traps",
            write("hostile-panic.wasm", hostile.clone()),
            vec!["--config", "describe=panic"],
            vec![
                "describe failed".into(),
                "asked to panic in describe".into(),
            ],
        ),
        (
            "describe never returns",
            write("hostile.wasm", hostile.clone()),
            vec!["--config", "describe=hang"],
            vec![
                "describe failed".into(),
                "exceeded its deadline of 2.0s".into(),
            ],
        ),
        (
            "a needed config key is missing",
            write("blazeface.wasm", blazeface.clone()),
            vec![],
            vec![
                "needs config `weights`".into(),
                "--weights weights=FILE.onnx".into(),
            ],
        ),
        (
            "weights that are not an .onnx file",
            crafted.join("blazeface.wasm"),
            vec!["--weights", "crafted/spy.wasm"],
            vec!["an .onnx model file is expected".into()],
        ),
    ];
    let models_yaml = root.join("config/models.yaml");
    let yaml_before = std::fs::read_to_string(&models_yaml).unwrap();
    let listing = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    };
    let components_before = listing(&root.join("components"));
    for (what, wasm, extra, expect) in &cases {
        let out = host_cmd(&root)
            .current_dir(&root)
            .arg("add")
            .arg(wasm)
            .args(["--name", "newcomer"])
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "{what}: accepted");
        println!("{what}: {}", err.trim());
        assert!(
            err.starts_with("error: newcomer not added: "),
            "{what}: {err}"
        );
        for e in expect {
            assert!(err.contains(e.as_str()), "{what}: expected `{e}` in {err}");
        }
        assert_eq!(
            std::fs::read_to_string(&models_yaml).unwrap(),
            yaml_before,
            "{what}: models.yaml changed"
        );
        assert_eq!(
            listing(&root.join("components")),
            components_before,
            "{what}: components/ changed"
        );
    }

    // The same component with what it needs is installed and registered.
    let out = host_cmd(&root)
        .arg("add")
        .arg(crafted.join("blazeface.wasm"))
        .args([
            "--name",
            "newcomer",
            "--classes",
            "face",
            "--config",
            "threshold=0.6",
        ])
        .arg("--weights")
        .arg(&weights)
        .output()
        .unwrap();
    let text = ok(out, "host add");
    assert!(text.contains("added newcomer: a detector"), "{text}");
    let yaml = std::fs::read_to_string(&models_yaml).unwrap();
    assert!(
        yaml.starts_with(&yaml_before),
        "the user's text is kept as it was:\n{yaml}"
    );
    let file = host::config::ModelsFile::parse(&yaml, &root).unwrap();
    let spec = file
        .instances
        .iter()
        .find(|i| i.name == "newcomer")
        .unwrap_or_else(|| panic!("no newcomer in\n{yaml}"));
    assert_eq!(spec.implementation, "newcomer");
    assert_eq!(spec.classes, vec![(0, "face".to_string())]);
    assert!(spec.config.contains(&("threshold".into(), "0.6".into())));
    let staged_weights = root.join("components/newcomer/face_detection_short_range.onnx");
    assert_eq!(
        spec.graphs["weights"],
        staged_weights.canonicalize().unwrap()
    );
    assert!(root.join("components/newcomer/component.wasm").is_file());
    // Installing it again under the same name is refused.
    let again = host_cmd(&root)
        .arg("add")
        .arg(crafted.join("blazeface.wasm"))
        .args(["--name", "newcomer"])
        .arg("--weights")
        .arg(&weights)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let _ = std::fs::remove_dir_all(&root);
}

/// Scaffold the Python example of `kind` outside the repo, build it, run its smoke test;
/// returns the built component.
/// `host new KIND <lang>-KIND --lang LANG` in `work`, built, smoke-tested: its component.
fn example(work: &Path, kind: &str, lang: &str) -> PathBuf {
    let name = format!("{lang}-{kind}");
    let project = work.join(&name);
    ok(
        host_cmd(&repo())
            .args(["new", kind, &name, "--lang", lang, "--dir"])
            .arg(&project)
            .output()
            .unwrap(),
        &format!("host new {kind} --lang {lang}"),
    );
    ok(
        Command::new(project.join("build.sh"))
            // Rust: shared between projects (with Debian's toolchain, build-std compiles std).
            .env("CARGO_TARGET_DIR", repo().join("target/guest-standalone"))
            .output()
            .unwrap(),
        &format!("{name}: build.sh"),
    );
    let smoke = ok(
        Command::new(project.join("smoke_test.py"))
            .output()
            .unwrap(),
        &format!("{name}: smoke_test.py"),
    );
    assert!(smoke.contains("smoke test passed"), "{smoke}");
    if lang == "rust" {
        // Its unit tests, natively, as its README says.
        let tests = ok(
            Command::new(project.join("test.sh"))
                .env(
                    "CARGO_TARGET_DIR",
                    repo().join("target/guest-standalone-native"),
                )
                .output()
                .unwrap(),
            &format!("{name}: test.sh"),
        );
        assert!(tests.contains("test result: ok"), "{tests}");
    }
    project.join("component.wasm")
}

fn iou(a: &[f64], b: &[f64]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

#[test]
fn the_python_examples_of_the_other_kinds_build_pass_their_smoke_tests_and_work() {
    examples_work("python");
}

#[test]
fn the_rust_examples_of_the_other_kinds_build_pass_their_smoke_tests_and_work() {
    examples_work("rust");
}

/// The tracker, interactor and re-id examples in `lang`, scaffolded outside the repo, built,
/// smoke-tested, added to a running host and checked on behaviour.
fn examples_work(lang: &str) {
    let work = outside(&format!("kinds-{lang}"));
    let host = Host::start(&[], &[]);
    let mut ports = std::collections::HashMap::new();
    for kind in ["tracker", "interactor", "reid"] {
        let wasm = example(&work, kind, lang);
        let port = free_port();
        ok(
            host_cmd(&host.dir)
                .arg("add")
                .arg(&wasm)
                .args([
                    "--name",
                    &format!("{lang}-{kind}"),
                    "--port",
                    &port.to_string(),
                ])
                .output()
                .unwrap(),
            &format!("host add {lang}-{kind}"),
        );
        ports.insert(kind, port);
    }
    for kind in ["tracker", "interactor", "reid"] {
        wait_until(
            &format!("{lang}-{kind} is listed"),
            Duration::from_secs(300),
            || {
                ureq::get(&format!(
                    "http://127.0.0.1:{}/api/functions/{lang}-{kind}",
                    host.gateway
                ))
                .call()
                .is_ok()
            },
        );
    }

    // Tracker: a textured square moving 6 px right and 3 px down per frame.
    let (w, h) = (320u32, 240u32);
    let frame = |i: u32| {
        let mut img = texture(w, h, 7);
        let square = texture(40, 40, 99);
        image::imageops::overlay(&mut img, &square, (60 + 6 * i) as i64, (50 + 3 * i) as i64);
        img
    };
    let truth = |i: u32| {
        let (x, y) = ((60 + 6 * i) as f64, (50 + 3 * i) as f64);
        vec![x, y, x + 40.0, y + 40.0]
    };
    let port = ports["tracker"];
    let (s, v) = post(
        port,
        &json!({"image": png_b64(&frame(0)), "shapes": [truth(0)], "states": []}),
    );
    assert_eq!(s, 200, "{v}");
    let mut states = v["states"].clone();
    for i in 1..8 {
        let (s, v) = post(
            port,
            &json!({"image": png_b64(&frame(i)), "shapes": [null], "states": states}),
        );
        assert_eq!(s, 200, "{v}");
        let shape = &v["shapes"][0];
        let points: Vec<f64> = shape
            .get("points")
            .unwrap_or(shape)
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect();
        let overlap = iou(&points, &truth(i));
        println!("{lang} tracker frame {i}: {points:?} IoU {overlap:.2}");
        assert!(overlap > 0.7, "frame {i}: {points:?} vs {:?}", truth(i));
        states = v["states"].clone();
    }

    // Interactor: a click inside a red rectangle on grey; the mask is the rectangle.
    let mut img = image::RgbImage::from_pixel(w, h, image::Rgb([128, 128, 128]));
    for y in 80..150 {
        for x in 100..220 {
            img.put_pixel(x, y, image::Rgb([220, 30, 30]));
        }
    }
    let (s, v) = post(
        ports["interactor"],
        &json!({"image": png_b64(&img), "pos_points": [[150.0, 110.0]], "neg_points": [], "obj_bbox": []}),
    );
    assert_eq!(s, 200, "{v}");
    let mask = mask_from_rle(&v["shapes"][0]["points"], w as usize, h as usize);
    let (mut inter, mut union) = (0, 0);
    for y in 0..h {
        for x in 0..w {
            let want = (100..220).contains(&x) && (80..150).contains(&y);
            let got = mask[(y * w + x) as usize];
            inter += (want && got) as u32;
            union += (want || got) as u32;
        }
    }
    println!(
        "{lang} interactor mask IoU {:.3}",
        inter as f64 / union as f64
    );
    assert!(inter as f64 / union as f64 > 0.98);

    // Re-id: red, green and blue squares move 10 px and are listed in another order; a
    // fourth box in frame 0 has no partner near it.
    let squares = |shift: u32, order: &[usize]| {
        let colours = [[220u8, 30, 30], [30, 200, 30], [30, 30, 220]];
        let mut img = image::RgbImage::from_pixel(w, h, image::Rgb([128, 128, 128]));
        let mut boxes = Vec::new();
        for &k in order {
            let (x0, y0) = (20 + 100 * k as u32 + shift, 40 + shift);
            for y in y0..y0 + 50 {
                for x in x0..x0 + 50 {
                    img.put_pixel(x, y, image::Rgb(colours[k]));
                }
            }
            boxes.push(json!({"points": [x0, y0, x0 + 50, y0 + 50]}));
        }
        (img, boxes)
    };
    let (img0, mut boxes0) = squares(0, &[0, 1, 2]);
    boxes0.push(json!({"points": [10, 180, 60, 230]}));
    let (img1, boxes1) = squares(10, &[2, 0, 1]);
    let (s, v) = post(
        ports["reid"],
        &json!({"image0": png_b64(&img0), "image1": png_b64(&img1), "boxes0": boxes0, "boxes1": boxes1}),
    );
    assert_eq!(s, 200, "{v}");
    println!("{lang} reid matches {v}");
    assert_eq!(v, json!([1, 2, 0, -1]));
    let _ = std::fs::remove_dir_all(&work);
}
