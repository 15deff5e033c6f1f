//! CVAT integration: the Nuclio-compatible gateway read the way CVAT's lambda manager reads
//! it (shared/docs/cvat-protocol.md §2-§4), both invoke modes, and the generated Nuclio
//! functions (YAML rules, marker files, the handler run with nuclio-sdk).

mod common;

use common::*;
use serde_json::{json, Value};

const RED: [u8; 3] = [230, 0, 0];

/// GET on the gateway with the headers CVAT sends on every dashboard request.
fn cvat_get(host: &Host, path: &str) -> (u16, Value) {
    let resp = ureq::get(&format!("http://127.0.0.1:{}{path}", host.gateway))
        .set("x-nuclio-project-name", "cvat")
        .set("x-nuclio-function-namespace", "nuclio")
        .set("x-nuclio-invoke-via", "domain-name")
        .set("X-Nuclio-Invoke-Timeout", "120s")
        .set("User-Agent", "CVAT/2.73.0 python-requests/2.32.3")
        .call();
    let resp = match resp {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    (resp.status(), resp.into_json().unwrap())
}

/// CVAT's `LambdaFunction.__init__`: every key it reads, with its failure modes.
fn parse_like_cvat(f: &Value) -> (String, String, Vec<String>) {
    let name = f["metadata"]["name"]
        .as_str()
        .expect("metadata.name (KeyError otherwise)")
        .to_string();
    let ann = f["metadata"]["annotations"]
        .as_object()
        .expect("metadata.annotations object");
    for (k, v) in ann {
        assert!(v.is_string(), "annotation {k} must be a string, got {v}");
    }
    let kind = ann["type"].as_str().unwrap().to_string();
    assert!(
        ["detector", "interactor", "tracker", "reid"].contains(&kind.as_str()),
        "type {kind}"
    );
    let spec: Value = serde_json::from_str(ann.get("spec").and_then(Value::as_str).unwrap_or("[]"))
        .expect("spec is JSON");
    let mut names = Vec::new();
    for label in spec.as_array().expect("spec is a list") {
        let n = label["name"].as_str().expect("label name").to_string();
        assert!(!names.contains(&n), "duplicate label {n}");
        for a in label
            .get("attributes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            assert!(
                a["name"].is_string() && a["input_type"].is_string() && a["values"].is_array(),
                "attribute {a}"
            );
        }
        if label["type"] == "skeleton" {
            assert!(label["sublabels"].is_array() && label["svg"].is_string());
        }
        names.push(n);
    }
    let version = ann.get("version").and_then(Value::as_str).unwrap_or("1");
    version.parse::<i64>().expect("version parses with int()");
    // bool("false") is True in CVAT: the flag may only appear when meant.
    for flag in ["startswith_box", "startswith_box_optional"] {
        if let Some(v) = ann.get(flag) {
            assert_eq!(v, "true", "{flag} present means true");
        }
    }
    if kind == "interactor" {
        assert!(version.parse::<i64>().unwrap() >= 2);
    }
    assert!(
        f["spec"]["description"].is_string(),
        "spec.description always present"
    );
    assert!(!f["spec"]["description"].as_str().unwrap().is_empty());
    assert!(f["status"].is_object(), "status always present");
    assert!(
        f["status"]["httpPort"].is_u64(),
        "status.httpPort for direct mode"
    );
    assert!(f["status"]["state"].is_string());
    (name, kind, names)
}

#[test]
fn cvat_lists_describes_and_invokes_through_the_gateway_and_directly() {
    let (face, yolo) = (free_port(), free_port());
    let host = Host::start(
        &[],
        &[
            Inst {
                name: "face",
                implementation: "blazeface",
                port: face,
                config: &["weights: models/face_detection_short_range.onnx"],
                classes: Some(&["face"]),
                extra: &[],
            },
            Inst {
                name: "yolo",
                implementation: "yolo",
                port: yolo,
                config: &["weights: tests/fixtures/yolo_v8_test.onnx"],
                classes: Some(&["red", "green"]),
                extra: &[],
            },
        ],
    );
    let (status, all) = cvat_get(&host, "/api/functions");
    assert_eq!(status, 200);
    let all = all.as_object().expect("an object keyed by function name");
    assert_eq!(all.len(), 2);
    for (key, f) in all {
        let (name, kind, labels) = parse_like_cvat(f);
        assert_eq!(&name, key);
        assert_eq!(kind, "detector");
        let expect: Vec<String> = if name == "face" {
            vec!["face".into()]
        } else {
            vec!["red".into(), "green".into()]
        };
        assert_eq!(labels, expect);
        let spec: Value =
            serde_json::from_str(f["metadata"]["annotations"]["spec"].as_str().unwrap()).unwrap();
        assert_eq!(
            spec[0]["type"], "rectangle",
            "label types come from the component's describe"
        );
        let port = if name == "face" { face } else { yolo };
        assert_eq!(f["status"]["httpPort"].as_u64(), Some(port as u64));
        // GET one returns the same object.
        let (s, one) = cvat_get(&host, &format!("/api/functions/{name}"));
        assert_eq!((s, &one), (200, f));
    }
    // Listing never loads a model.
    assert_eq!(host.instance_status("face")["state"], "unloaded");
    assert_eq!(host.instance_status("yolo")["state"], "unloaded");
    let (s, e) = cvat_get(&host, "/api/functions/nope");
    assert_eq!(s, 404);
    assert!(e["error"].as_str().unwrap().contains("nope"));

    // Dashboard invoke mode and direct mode give the same answer.
    let body = json!({"image": frame_png(640, 320, &[(100, 60, 299, 159, RED)]), "threshold": 0.5});
    let via_gateway = |name: &str, timeout: &str| {
        let r = ureq::post(&format!(
            "http://127.0.0.1:{}/api/function_invocations",
            host.gateway
        ))
        .set("content-type", "application/json")
        .set("x-nuclio-function-name", name)
        .set("x-nuclio-path", "/")
        .set("x-nuclio-project-name", "cvat")
        .set("x-nuclio-function-namespace", "nuclio")
        .set("x-nuclio-invoke-via", "domain-name")
        .set("X-Nuclio-Invoke-Timeout", timeout)
        .send_string(&body.to_string());
        let r = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        (r.status(), r.into_json::<Value>().unwrap())
    };
    let (s, g) = via_gateway("yolo", "120s");
    assert_eq!(s, 200, "{g}");
    let (s, d) = post(yolo, &body);
    assert_eq!(s, 200);
    assert_eq!(g, d);
    assert_eq!(
        boxes(&g),
        vec![("red".to_string(), vec![100.0, 60.0, 300.0, 160.0])]
    );
    // The function's status code passes through (a 4xx from the instance stays a 4xx).
    let r = ureq::post(&format!(
        "http://127.0.0.1:{}/api/function_invocations",
        host.gateway
    ))
    .set("x-nuclio-function-name", "yolo")
    .send_string("{\"image\": 5}");
    let Err(ureq::Error::Status(400, r)) = r else {
        panic!("expected 400")
    };
    assert_eq!(r.into_json::<Value>().unwrap()["field"], "image");
    // Dashboard errors: JSON, with the right status.
    assert_eq!(via_gateway("nope", "120s").0, 404);
    assert_eq!(via_gateway("yolo", "soon").0, 400);
    let r = ureq::post(&format!(
        "http://127.0.0.1:{}/api/function_invocations",
        host.gateway
    ))
    .send_string("{}");
    let Err(ureq::Error::Status(400, r)) = r else {
        panic!("missing function header must be a 400")
    };
    assert!(r.into_json::<Value>().unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("x-nuclio-function-name"));
}

#[test]
fn labels_are_listed_before_any_request_and_a_detector_without_labels_is_an_error() {
    let (named, blind) = (free_port(), free_port());
    let host = Host::start(
        &[],
        &[
            // No `classes`, no classes.txt: the names live in the export's metadata only.
            inst(
                "named",
                "yolo",
                named,
                &["weights: tests/fixtures/yolo_v5_test.onnx"],
                &[],
            ),
            // A detector whose component lists no labels, and none configured.
            inst("blind", "hostile", blind, &[], &[]),
        ],
    );
    // As CVAT reads it, on a fresh host, before any request.
    let (s, all) = cvat_get(&host, "/api/functions");
    assert_eq!(s, 200);
    let (_, kind, labels) = parse_like_cvat(&all["named"]);
    assert_eq!(
        (kind.as_str(), labels),
        ("detector", vec!["red".to_string(), "green".to_string()])
    );
    let spec: Value = serde_json::from_str(
        all["named"]["metadata"]["annotations"]["spec"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(spec[0]["type"], "rectangle");
    assert_eq!(all["named"]["status"]["state"], "ready");
    let (s, one) = cvat_get(&host, "/api/functions/named");
    assert_eq!((s, &one), (200, &all["named"]));
    let st = host.instance_status("named");
    assert_eq!(st["state"], "unloaded", "listing loads nothing: {st}");
    assert_eq!(st["labels"], 2, "{st}");

    // Never an empty spec that would silently annotate nothing: listed as an error that
    // CVAT shows (description), and CVAT's own requests for it fail with the reason.
    let blind_f = &all["blind"];
    let (_, _, labels) = parse_like_cvat(blind_f);
    assert!(labels.is_empty());
    assert_eq!(blind_f["status"]["state"], "error");
    let d = blind_f["spec"]["description"].as_str().unwrap();
    assert!(
        d.starts_with("UNUSABLE: no labels are known") && d.contains("classes"),
        "{d}"
    );
    let (s, e) = cvat_get(&host, "/api/functions/blind");
    assert_eq!(s, 500, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("no labels are known"),
        "{e}"
    );
    let st = host.instance_status("blind");
    assert_eq!(st["state"], "error", "{st}");
    assert!(st["error"].as_str().unwrap().contains("classes"), "{st}");
    // ... and no Nuclio function is generated for it.
    let nuclio = host.dir.join("nuclio_functions");
    wait_until(
        "the generated functions",
        std::time::Duration::from_secs(60),
        || nuclio.join("named/function.yaml").is_file(),
    );
    assert!(!nuclio.join("blind").exists());

    // Loading changes nothing CVAT sees.
    let body = json!({"image": frame_png(64, 64, &[(10, 10, 29, 29, RED)])});
    let (s, v) = post(named, &body);
    assert_eq!(s, 200, "{v}");
    assert_eq!(boxes(&v)[0].0, "red");
    assert_eq!(host.instance_status("named")["state"], "ready");
    let (_, again) = cvat_get(&host, "/api/functions/named");
    assert_eq!(again["metadata"], all["named"]["metadata"]);
}

/// The `RESULT <json>` lines of tests/nuclio_handler.py (nuclio-sdk logs to stdout too).
fn results(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn yaml(path: &std::path::Path) -> serde_norway::Value {
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn generated_nuclio_functions_follow_the_rules_and_forward_for_real() {
    let port = free_port();
    let host = Host::start(
        &["nuclio_port_offset: 1000"],
        &[Inst {
            name: "yolo",
            implementation: "yolo",
            port,
            config: &["weights: tests/fixtures/yolo_v8_test.onnx"],
            classes: Some(&["red", "green"]),
            extra: &[],
        }],
    );
    let fdir = host.dir.join("nuclio_functions/yolo");
    // Generation runs in the background after start-up.
    for _ in 0..2400 {
        if fdir.join("function.yaml").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let y = yaml(&fdir.join("function.yaml"));
    let ann = y["metadata"]["annotations"].as_mapping().unwrap();
    for (k, v) in ann {
        assert!(v.is_string(), "annotation {k:?} must be a string");
    }
    assert_eq!(y["metadata"]["name"].as_str(), Some("yolo"));
    let annotation = |k: &str| {
        y["metadata"]["annotations"][k]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(annotation("type"), "detector");
    let spec: Value = serde_json::from_str(&annotation("spec")).unwrap();
    assert_eq!(
        spec,
        json!([{"id": 0, "name": "red", "type": "rectangle"}, {"id": 1, "name": "green", "type": "rectangle"}])
    );
    assert!(!y["spec"]["description"].as_str().unwrap().is_empty());
    let trigger = &y["spec"]["triggers"]["myHttpTrigger"];
    assert!(trigger["numWorkers"].as_u64().is_some() && trigger.get("maxWorkers").is_none());
    assert_eq!(
        trigger["attributes"]["port"].as_u64(),
        Some(port as u64 + 1000)
    );
    assert!(
        trigger["attributes"]["maxRequestBodySize"]
            .as_u64()
            .unwrap()
            >= 64 << 20
    );
    let event_timeout: u64 = y["spec"]["eventTimeout"]
        .as_str()
        .unwrap()
        .trim_end_matches('s')
        .parse()
        .unwrap();
    let env = y["spec"]["env"].as_sequence().unwrap();
    let env_value = |n: &str| {
        env.iter().find(|e| e["name"].as_str() == Some(n)).unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let upstream: u64 = env_value("CVAT_WASM_TIMEOUT").parse().unwrap();
    assert!(
        event_timeout > upstream && upstream > 30,
        "eventTimeout {event_timeout} > proxy timeout {upstream} > a cold load"
    );
    assert_eq!(
        env_value("CVAT_WASM_HOST_URL"),
        format!("http://host.docker.internal:{port}")
    );
    assert_eq!(
        y["spec"]["platform"]["attributes"]["restartPolicy"]["name"].as_str(),
        Some("always")
    );

    // The handler, run by nuclio-sdk against the running host, returns what the host returns.
    let req = json!({"image": frame_png(640, 320, &[(100, 60, 299, 159, RED)])});
    let req_file = host.dir.join("req.json");
    std::fs::write(&req_file, req.to_string()).unwrap();
    let out = std::process::Command::new(need(".deps/venv/bin/python"))
        .arg(need("tests/nuclio_handler.py"))
        .arg(&fdir)
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(&req_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, direct) = post(port, &req);
    let lines = results(&out.stdout);
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(l["status"], 200, "{l}");
        assert_eq!(l["body"], direct, "{}", l["flavour"]);
    }
    // An error status passes through the handler too.
    std::fs::write(&req_file, "{\"image\": \"not base64!\"}").unwrap();
    let out = std::process::Command::new(need(".deps/venv/bin/python"))
        .arg(need("tests/nuclio_handler.py"))
        .arg(&fdir)
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(&req_file)
        .output()
        .unwrap();
    let first = &results(&out.stdout)[0];
    assert_eq!(
        (first["status"].as_u64(), first["body"]["field"].as_str()),
        (Some(400), Some("image"))
    );
}

#[test]
fn regeneration_removes_only_what_the_host_generated() {
    let dir = std::env::temp_dir().join(format!("nuclio-gen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("components")).unwrap();
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::os::unix::fs::symlink(repo().join("components/yolo"), dir.join("components/yolo"))
        .unwrap();
    // A function a person wrote, which must survive.
    std::fs::create_dir_all(dir.join("nuclio_functions/handmade")).unwrap();
    std::fs::write(
        dir.join("nuclio_functions/handmade/function.yaml"),
        "metadata: {name: handmade}\n",
    )
    .unwrap();
    let config = |names: &[&str]| {
        let mut y = format!("settings:\n  models_root: {}\nmodels:\n", repo().display());
        for (i, n) in names.iter().enumerate() {
            y.push_str(&format!("  {n}:\n    implementation: yolo\n    port: {}\n    config: {{weights: tests/fixtures/yolo_v8_test.onnx}}\n", 6001 + i));
        }
        std::fs::write(dir.join("config/models.yaml"), y).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_host"))
            .arg("--root")
            .arg(&dir)
            .arg("nuclio")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let out = config(&["one", "two", "handmade"]);
    assert!(
        out.contains("wrote") && out.contains("one") && out.contains("two"),
        "{out}"
    );
    assert!(out.contains("kept") && out.contains("handmade"), "{out}");
    let again = config(&["one", "two", "handmade"]);
    assert!(
        again.contains("is up to date") && !again.contains("wrote"),
        "{again}"
    );
    let out = config(&["one"]);
    assert!(out.contains("removed") && out.contains("two"), "{out}");
    assert!(dir.join("nuclio_functions/one/function.yaml").is_file());
    assert!(!dir.join("nuclio_functions/two").exists());
    assert!(
        dir.join("nuclio_functions/handmade/function.yaml")
            .is_file(),
        "a hand-written function is never deleted"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
