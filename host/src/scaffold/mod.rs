//! `host new <kind> <name>`: a component that builds and passes its smoke test. Either a
//! crate in this repository's guest workspace ([`new_component`]), or a standalone project in
//! a folder of its own, Rust or Python, with the contract vendored ([`new_project`]).

use std::path::{Path, PathBuf};

use crate::config::check_name;

/// Rust templates by kind: the detector a skeleton to fill in for a model, the others
/// complete small examples like the Python ones.
const RUST_TEMPLATES: &[(&str, &str)] = &[
    ("detector", include_str!("rust/detector.rs.tmpl")),
    ("tracker", include_str!("rust/tracker.rs.tmpl")),
    ("interactor", include_str!("rust/interactor.rs.tmpl")),
    ("reid", include_str!("rust/reid.rs.tmpl")),
];
/// Python templates by kind: each a complete small example (see docs/writing-a-component.md).
const PY_TEMPLATES: &[(&str, &str)] = &[
    ("detector", include_str!("python/detector.py")),
    ("tracker", include_str!("python/tracker.py")),
    ("interactor", include_str!("python/interactor.py")),
    ("reid", include_str!("python/reid.py")),
];
const PY_BUILD: &str = include_str!("python/build.sh");
const RUST_BUILD: &str = include_str!("rust/build.sh");
const RUST_TEST: &str = include_str!("rust/test.sh");
const SMOKE_TEST: &str = include_str!("smoke_test.py");
const GUEST_CARGO_CONFIG: &str = include_str!("../../../components/.cargo/config.toml");
const GUEST_LOCK: &str = include_str!("../../../components/Cargo.lock");
/// The SDK's sources, vendored into standalone Rust projects (`sdk/src/<file>`).
const SDK: &[(&str, &str)] = &[
    (
        "lib.rs",
        include_str!("../../../components/model-sdk/src/lib.rs"),
    ),
    (
        "anchors.rs",
        include_str!("../../../components/model-sdk/src/anchors.rs"),
    ),
    (
        "b64.rs",
        include_str!("../../../components/model-sdk/src/b64.rs"),
    ),
    (
        "boxes.rs",
        include_str!("../../../components/model-sdk/src/boxes.rs"),
    ),
    (
        "config.rs",
        include_str!("../../../components/model-sdk/src/config.rs"),
    ),
    (
        "image.rs",
        include_str!("../../../components/model-sdk/src/image.rs"),
    ),
    (
        "nn.rs",
        include_str!("../../../components/model-sdk/src/nn.rs"),
    ),
    (
        "pixels.rs",
        include_str!("../../../components/model-sdk/src/pixels.rs"),
    ),
    (
        "results.rs",
        include_str!("../../../components/model-sdk/src/results.rs"),
    ),
];

/// The componentize-py version Python projects build with (also in scripts/requirements.txt).
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The language of a standalone project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
}

impl Lang {
    /// `rust` or `python`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "rust" => Ok(Lang::Rust),
            "python" => Ok(Lang::Python),
            other => Err(format!("--lang {other}: rust or python")),
        }
    }
}

/// A standalone component project to create.
#[derive(Debug, Clone)]
pub struct Project {
    pub kind: String,
    pub name: String,
    pub lang: Lang,
    /// The project folder (must not exist, or be empty).
    pub dir: PathBuf,
    /// The host's project root: where its toolchain (.deps/) and sample files are.
    pub host_root: PathBuf,
    /// The host binary the smoke test runs.
    pub host_bin: PathBuf,
}

fn check_component_name(name: &str) -> Result<(), String> {
    check_name(name)?;
    if name.contains(['.', '_']) || name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "`{name}`: use lowercase letters, digits and '-' for a component"
        ));
    }
    Ok(())
}

/// The template for `kind` from `templates`, or why there is none.
fn template(templates: &[(&str, &'static str)], kind: &str) -> Result<&'static str, String> {
    templates
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, t)| *t)
        .ok_or_else(|| format!("unknown kind `{kind}` (detector, tracker, interactor, reid)"))
}

/// Create a standalone project: the component's source, `wit/` (the contract), `build.sh`
/// (one command to `component.wasm`), `smoke_test.py` (installs it into a throwaway host
/// root and calls it as CVAT would) and a README. Returns the files written.
pub fn new_project(p: &Project) -> Result<Vec<PathBuf>, String> {
    check_component_name(&p.name)?;
    let source = template(
        match p.lang {
            Lang::Rust => RUST_TEMPLATES,
            Lang::Python => PY_TEMPLATES,
        },
        &p.kind,
    )?;
    if p.dir.exists()
        && std::fs::read_dir(&p.dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(format!("{} exists and is not empty", p.dir.display()));
    }
    let root = p.host_root.display().to_string();
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let world = format!("{}-model", p.kind);
    let mut files: Vec<(String, String, bool)> = Vec::new();
    let (weights, config, classes, expect) = match p.lang {
        // The examples of the other kinds need no model.
        _ if p.kind != "detector" => (String::new(), String::new(), "", 0),
        // The example is BlazeFace: one face on the astronaut.
        Lang::Python => (
            quote(&format!("{root}/models/face_detection_short_range.onnx")),
            quote("threshold=0.5"),
            "",
            1,
        ),
        // The Rust skeleton's decode does not know this model; the test checks the path.
        Lang::Rust => (
            quote(&format!("{root}/tests/fixtures/yolo_v8_test.onnx")),
            String::new(),
            "red,green",
            0,
        ),
    };
    let image = format!("{root}/tests/fixtures/astronaut.png");
    let smoke = SMOKE_TEST
        .replace("{{host_bin}}", &p.host_bin.display().to_string())
        .replace("{{weights}}", &weights)
        .replace("{{config}}", &config)
        .replace("{{classes}}", classes)
        .replace("{{image}}", &image)
        .replace("{{expect}}", &expect.to_string())
        .replace("{{kind}}", &p.kind)
        .replace("{{name}}", &p.name);
    files.push(("smoke_test.py".into(), smoke, true));
    let crate_name = p.name.replace('-', "_");
    match p.lang {
        Lang::Python => {
            files.push(("app.py".into(), source.replace("{{name}}", &p.name), false));
            files.push((
                "build.sh".into(),
                PY_BUILD
                    .replace("{{componentize_py_version}}", COMPONENTIZE_PY_VERSION)
                    .replace("{{host_root}}", &root)
                    .replace("{{world}}", &world),
                true,
            ));
            files.push((
                ".gitignore".into(),
                ".venv/\n.smoke/\n__pycache__/\ncomponent.wasm\n".into(),
                false,
            ));
        }
        Lang::Rust => {
            files.push((
                "Cargo.toml".into(),
                format!(
                    "[package]\nname = \"{}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nwit-bindgen = {{ workspace = true }}\nmodel-sdk = {{ path = \"sdk\" }}\n\n[workspace]\nmembers = [\".\", \"sdk\"]\n\n[workspace.dependencies]\nwit-bindgen = {{ version = \"0.63\", default-features = false, features = [\"macros\", \"realloc\"] }}\n\n[profile.release]\nopt-level = 3\nlto = true\npanic = \"abort\"\nstrip = true\ncodegen-units = 1\n",
                    p.name
                ),
                false,
            ));
            files.push((
                "src/lib.rs".into(),
                source
                    .replace("{{name}}", &p.name)
                    .replace(
                        &format!("model_sdk::world!(\"{world}\");"),
                        &format!("model_sdk::world!(\"{world}\", \"wit\");"),
                    )
                    .replace(
                        "Build with scripts/build-components.sh; run the\n//! smoke test with scripts/test.sh.",
                        "Build with ./build.sh; test natively with ./test.sh and in\n//! the host with ./smoke_test.py.",
                    ),
                false,
            ));
            files.push((
                "sdk/Cargo.toml".into(),
                "[package]\nname = \"model-sdk\"\nversion = \"0.1.0\"\nedition = \"2021\"\ndescription = \"The host's component SDK, vendored by `host new`\"\n\n[dependencies]\nwit-bindgen = { workspace = true }\n".into(),
                false,
            ));
            for (file, text) in SDK {
                // The SDK finds the contract two levels up in the host's repository; here
                // it is the project's wit/.
                let text = text
                    .replace("path: \"../../wit\",", "path: \"../wit\",")
                    .replace(
                        "$crate::world!($world, \"../../wit\");",
                        "$crate::world!($world, \"wit\");",
                    );
                files.push((format!("sdk/src/{file}"), text, false));
            }
            files.push((
                ".cargo/config.toml".into(),
                GUEST_CARGO_CONFIG.into(),
                false,
            ));
            files.push(("Cargo.lock".into(), GUEST_LOCK.into(), false));
            files.push((
                "build.sh".into(),
                RUST_BUILD
                    .replace("{{host_root}}", &root)
                    .replace("{{crate}}", &crate_name),
                true,
            ));
            files.push((
                "test.sh".into(),
                RUST_TEST.replace("{{host_root}}", &root),
                true,
            ));
            files.push((
                ".gitignore".into(),
                "target/\n.smoke/\ncomponent.wasm\n".into(),
                false,
            ));
        }
    }
    files.push(("README.md".into(), readme(p), false));

    let mut written = Vec::new();
    for (rel, text, executable) in files {
        let path = p.dir.join(rel);
        write_file(&path, &text, executable)?;
        written.push(path);
    }
    written.extend(crate::contract::write_wit(&p.dir.join("wit"))?);
    Ok(written)
}

fn write_file(path: &Path, text: &str, executable: bool) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn readme(p: &Project) -> String {
    let (source, lang) = match p.lang {
        Lang::Python => ("app.py", "Python (componentize-py)"),
        Lang::Rust => ("src/lib.rs", "Rust (the host's SDK vendored in sdk/)"),
    };
    format!(
        "# {name}\n\nA {kind} component for the CVAT model host, in {lang}. Made by `host new {kind} {name}`.\n\n\
         - `{source}`: the component. `wit/`: the contract it implements (`host wit` writes the current one).\n\
         - `./build.sh`: builds `component.wasm`.{native_tests}\n\
         - `./smoke_test.py`: installs it into a throwaway host root (`.smoke/`) with `host add`, serves it,\n  \
         checks that the gateway lists it and that a CVAT request gets an answer.\n\n\
         Install it into the host:\n\n```sh\n{bin} --root {root} add component.wasm --name {name}{weights}\n```\n\n\
         The guide: {root}/docs/writing-a-component.md\n",
        name = p.name,
        kind = p.kind,
        native_tests = match p.lang {
            Lang::Rust => "\n- `./test.sh`: the unit tests, natively (the crate itself builds for wasm32).",
            Lang::Python => "",
        },
        // The detector runs a model; the other kinds' examples need none.
        weights = if p.kind == "detector" { " --weights MODEL.onnx" } else { "" },
        bin = p.host_bin.display(),
        root = p.host_root.display(),
    )
}

/// Create `components_dir/<name>/` for a component of `kind` and add it to the guest
/// workspace. Returns the files written.
pub fn new_component(components_dir: &Path, kind: &str, name: &str) -> Result<Vec<String>, String> {
    check_component_name(name)?;
    let template = template(RUST_TEMPLATES, kind)?;
    let dir = components_dir.join(name);
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    let workspace = components_dir.join("Cargo.toml");
    let ws_text =
        std::fs::read_to_string(&workspace).map_err(|e| format!("{}: {e}", workspace.display()))?;
    let Some(members_at) = ws_text.find("members = [") else {
        return Err(format!(
            "{}: no `members = [` list to add the crate to",
            workspace.display()
        ));
    };
    let close = members_at
        + ws_text[members_at..]
            .find(']')
            .ok_or("unterminated members list")?;
    let ws_new = format!(
        "{}, \"{name}\"{}",
        ws_text[..close].trim_end_matches([' ', ',']),
        &ws_text[close..]
    );

    std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
    let cargo = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition.workspace = true\nlicense.workspace = true\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nwit-bindgen.workspace = true\nmodel-sdk.workspace = true\n"
    );
    let files = [
        ("Cargo.toml", cargo),
        ("src/lib.rs", template.replace("{{name}}", name)),
    ];
    let mut written = Vec::new();
    for (rel, content) in files {
        let p = dir.join(rel);
        std::fs::write(&p, content).map_err(|e| format!("{}: {e}", p.display()))?;
        written.push(p.display().to_string());
    }
    crate::config::yaml_edit::write_atomic(&workspace, &ws_new).map_err(|e| e.to_string())?;
    written.push(format!("{} (added to members)", workspace.display()));
    Ok(written)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_sdk_source_is_vendored() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../components/model-sdk/src");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".rs"))
            .collect();
        files.sort();
        let mut vendored: Vec<String> = super::SDK.iter().map(|(f, _)| f.to_string()).collect();
        vendored.sort();
        assert_eq!(
            vendored, files,
            "scaffold's SDK list must name every model-sdk source"
        );
    }
}
