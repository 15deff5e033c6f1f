//! A graph's signature read straight from its ONNX file (what components see while the
//! host lists them, `describe`) is the signature an ONNX Runtime session reports (what they
//! see once loaded), for every model file the project has.

mod common;

use common::*;
use host::nn::{graph, onnx_meta, Backend, Device, SessionOptions};

fn model_files() -> Vec<std::path::PathBuf> {
    let mut files = vec![];
    for dir in ["tests/fixtures", "models", "../shared/models"] {
        let Ok(entries) = std::fs::read_dir(repo().join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "onnx") {
                files.push(e.path());
            }
        }
    }
    files.sort();
    files
}

#[test]
fn signatures_read_from_files_match_onnx_runtime_sessions() {
    host::up::init_onnxruntime(&repo(), "signature-test").unwrap();
    let files = model_files();
    assert!(
        files.len() >= 8,
        "fixtures missing: run scripts/setup.sh ({files:?})"
    );
    let options = SessionOptions {
        intra_threads: 1,
        backend: Backend::OnnxRuntime,
        device: Device::Cpu,
        precision: Default::default(),
        requests_per_load: 1,
    };
    for path in files {
        let session = graph::load(&path, options, &Default::default()).unwrap();
        let mut from_session = session.signature().clone();
        let mut from_file = onnx_meta::signature(&std::fs::read(&path).unwrap()).unwrap();
        // ONNX Runtime does not promise the metadata's order.
        from_session.metadata.sort();
        from_file.metadata.sort();
        assert_eq!(from_file, from_session, "{}", path.display());
    }
}

#[test]
fn files_that_are_not_onnx_models_are_refused() {
    assert!(onnx_meta::signature(b"").is_err());
    let jpeg = std::fs::read(need("tests/fixtures/astronaut.jpg")).unwrap();
    assert!(onnx_meta::signature(&jpeg).is_err());
}
