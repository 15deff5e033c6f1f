//! Test harness: runs the real `host` binary on loopback with a config written to a temp
//! directory, using the components built by scripts/build-components.sh and the fixtures
//! made by scripts/setup.sh.

#![allow(dead_code)]

use std::io::Cursor;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A file the setup made; fails with the fix when it is missing.
pub fn need(rel: &str) -> PathBuf {
    let p = repo().join(rel);
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh (the test command does)",
        p.display()
    );
    p
}

/// Whether the model files `files` (paths under the repository) are there. When they are
/// not, the test says so on stderr and checks nothing, unless the environment variable
/// `require` is set (CI sets it), which makes their absence a failure. `how` says how to
/// get them.
pub fn models_present(files: &[&str], how: &str, require: &str) -> bool {
    let missing: Vec<&str> = files
        .iter()
        .copied()
        .filter(|f| !repo().join(f).is_file())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os(require).is_none(),
        "{require} is set but {missing:?} are missing ({how})"
    );
    eprintln!("SKIPPED: {missing:?} missing ({how})");
    false
}

/// A free loopback port for a host to bind. Ports come from 20000-29999, below the
/// kernel's ephemeral range (32768+), so a client connection of a parallel test cannot take
/// one between this check and the host's bind; each test process starts at its own offset.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = (std::process::id() % 400) * 25;
    loop {
        let p = 20000 + (base + NEXT.fetch_add(1, Ordering::Relaxed)) % 10000;
        let p = p as u16;
        if TcpListener::bind(("0.0.0.0", p)).is_ok() && TcpListener::bind(("127.0.0.1", p)).is_ok()
        {
            return p;
        }
    }
}

/// A project root under target/test-roots with a models.yaml of `settings` lines and
/// `instances`, and the components they use. Returns the root and its gateway port.
pub fn make_root(settings: &[&str], instances: &[Inst]) -> (PathBuf, u16) {
    // Under the repository's target/ so that the models root (the repository) holds
    // the test's own components folder too.
    let dir = repo().join("target/test-roots").join(format!(
        "host-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(dir.join("components")).unwrap();
    std::fs::create_dir_all(dir.join("config")).unwrap();
    // One compile cache for every test root: entries are named by content and engine and
    // written atomically, and compiling a CPython component takes 10+ seconds.
    let cache = repo().join("target/test-cache/components");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::create_dir_all(dir.join(".state/cache")).unwrap();
    std::os::unix::fs::symlink(&cache, dir.join(".state/cache/components")).unwrap();
    for (name, src) in [
        ("yolo", "components/yolo"),
        ("detr", "components/detr"),
        ("blazeface", "components/blazeface"),
        ("hostile", "tests/components/hostile"),
        ("ncc-tracker", "components/ncc-tracker"),
        ("sam", "components/sam"),
        ("reid", "components/reid"),
        ("selfie", "components/selfie"),
        ("blazepose", "components/blazepose"),
        ("ssd", "components/ssd"),
        ("nanotrack", "components/nanotrack"),
    ] {
        // Only the components the instances use: discovery would register any other.
        if instances.iter().any(|i| i.implementation == name) {
            need(&format!("{src}/component.wasm"));
            std::os::unix::fs::symlink(repo().join(src), dir.join("components").join(name))
                .unwrap();
        }
    }
    // Python components: built from their app.py (see `python_component`).
    for (name, src) in [("hostile-py", "tests/components/hostile-py")] {
        if instances.iter().any(|i| i.implementation == name) {
            let wasm = python_component(src, "detector-model");
            let dir = dir.join("components").join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::os::unix::fs::symlink(wasm, dir.join("component.wasm")).unwrap();
        }
    }
    let gateway = free_port();
    let mut yaml = format!(
        "settings:\n  bind: 127.0.0.1\n  gateway_port: {gateway}\n  models_root: {}\n",
        repo().display()
    );
    for s in settings {
        yaml.push_str(&format!("  {s}\n"));
    }
    // Tests pin ONNX Runtime (a fresh root would measure every backend at each first load,
    // as `auto`, the default, does once per machine); the tests of `auto` ask for it.
    if !settings.iter().any(|s| s.starts_with("backend:")) {
        yaml.push_str("  backend: onnxruntime\n");
    }
    yaml.push_str("models:\n");
    for i in instances {
        yaml.push_str(&format!(
            "  {}:\n    implementation: {}\n    port: {}\n",
            i.name, i.implementation, i.port
        ));
        if !i.config.is_empty() {
            yaml.push_str("    config:\n");
            for c in i.config {
                yaml.push_str(&format!("      {c}\n"));
            }
        }
        if let Some(classes) = i.classes {
            yaml.push_str(&format!("    classes: [{}]\n", classes.join(", ")));
        }
        for line in i.extra {
            yaml.push_str(&format!("    {line}\n"));
        }
    }
    std::fs::write(dir.join("config/models.yaml"), yaml).unwrap();
    (dir, gateway)
}

/// A running host, killed on drop (its root removed, unless kept).
pub struct Host {
    child: Child,
    pub dir: PathBuf,
    pub gateway: u16,
    log: PathBuf,
    keep_root: bool,
}

/// One instance line for a test config.
pub struct Inst<'a> {
    pub name: &'a str,
    pub implementation: &'a str,
    pub port: u16,
    /// YAML lines under `config:` (already indented by the caller as `key: value`).
    pub config: &'a [&'a str],
    pub classes: Option<&'a [&'a str]>,
    /// More instance-level YAML lines (`key: value`).
    pub extra: &'a [&'a str],
}

/// An instance with no `classes` line: `config` lines under `config:`, `extra` lines beside.
pub fn inst<'a>(
    name: &'a str,
    implementation: &'a str,
    port: u16,
    config: &'a [&'a str],
    extra: &'a [&'a str],
) -> Inst<'a> {
    Inst {
        name,
        implementation,
        port,
        config,
        classes: None,
        extra,
    }
}

impl Host {
    /// Write a config with `settings` lines and `instances`, start the host, wait until
    /// its management API answers.
    pub fn start(settings: &[&str], instances: &[Inst]) -> Host {
        Self::start_with_env(settings, instances, &[])
    }

    /// [`Host::start`] with more environment variables for the host process.
    pub fn start_with_env(settings: &[&str], instances: &[Inst], env: &[(&str, &str)]) -> Host {
        let (dir, gateway) = make_root(settings, instances);
        Self::start_in_with_env(dir, gateway, env)
    }

    /// Start a host on a root [`make_root`] made (again, after an earlier host stopped).
    pub fn start_in(dir: PathBuf, gateway: u16) -> Host {
        Self::start_in_with_env(dir, gateway, &[])
    }

    fn start_in_with_env(dir: PathBuf, gateway: u16, env: &[(&str, &str)]) -> Host {
        let log = dir.join("host.log");
        let child = Command::new(env!("CARGO_BIN_EXE_host"))
            .args(["--root"])
            .arg(&dir)
            .arg("up")
            .env(
                "ORT_DYLIB_PATH",
                need(".deps/onnxruntime/libonnxruntime.so"),
            )
            .env("RUST_LOG", "info,ort=warn")
            .envs(env.iter().copied())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .unwrap();
        let host = Host {
            child,
            dir,
            gateway,
            log,
            keep_root: false,
        };
        host.wait_ready();
        host
    }

    /// Wait for `/readyz`: the config applied and every instance port bound (or reported
    /// as unbindable, which some tests want). `/healthz` answers before the instance ports
    /// exist, so waiting on it raced the first request.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = match ureq::get(&format!("http://127.0.0.1:{}/readyz", self.gateway)).call()
            {
                Ok(_) => true,
                Err(ureq::Error::Status(503, r)) => r
                    .into_string()
                    .unwrap_or_default()
                    .contains("ports not bound"),
                _ => false,
            };
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("host did not become ready:\n{}", self.log());
    }

    /// Send SIGTERM (what Ctrl-C and `host down` do).
    pub fn terminate(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
    }

    /// Wait up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The label spec the gateway lists for function `name` (its `spec` annotation, parsed).
    pub fn spec(&self, name: &str) -> Value {
        let f: Value = ureq::get(&format!(
            "http://127.0.0.1:{}/api/functions/{name}",
            self.gateway
        ))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
        serde_json::from_str(f["metadata"]["annotations"]["spec"].as_str().unwrap()).unwrap()
    }

    /// The models.yaml the host runs from.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config/models.yaml")
    }

    /// Wait until the log contains `needle` (at least `count` times).
    pub fn wait_log(&self, needle: &str, count: usize, timeout: Duration) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.log().matches(needle).count() >= count {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("log never had {count}x {needle:?}:\n{}", self.log());
    }

    /// Everything the host logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /api/status` on the management port.
    pub fn status(&self) -> Value {
        ureq::get(&format!("http://127.0.0.1:{}/api/status", self.gateway))
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    }

    /// GET `/metrics`: the Prometheus text.
    pub fn metrics(&self) -> String {
        ureq::get(&format!("http://127.0.0.1:{}/metrics", self.gateway))
            .call()
            .unwrap()
            .into_string()
            .unwrap()
    }

    /// One instance's entry in the status.
    pub fn instance_status(&self, name: &str) -> Value {
        self.status()["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no instance {name} in status"))
    }
}

impl Host {
    /// Stop the host and keep its root, to start another host on it ([`Host::start_in`]).
    pub fn stop_keeping_root(mut self) -> (PathBuf, u16) {
        self.keep_root = true;
        (self.dir.clone(), self.gateway)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // A host that died on its own is the bug a failing test is about: say how it ended.
        if std::thread::panicking() {
            match self.child.try_wait() {
                Ok(Some(status)) => eprintln!(
                    "the host had already exited: {status}\n--- host log ---\n{}",
                    self.log()
                ),
                _ => eprintln!(
                    "the host (pid {}) was still running\n--- host log ---\n{}",
                    self.child.id(),
                    self.log()
                ),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() && !self.keep_root {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// POST raw bytes to `http://127.0.0.1:<port><path>`; returns status and JSON body.
pub fn post_raw(port: u16, path: &str, body: &[u8]) -> (u16, Value) {
    let resp = ureq::post(&format!("http://127.0.0.1:{port}{path}"))
        .set("content-type", "application/json")
        .timeout(Duration::from_secs(120))
        .send_bytes(body);
    let resp = match resp {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap();
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("non-JSON answer ({status}): {text}"));
    (status, json)
}

/// POST over a raw socket, ignoring write errors (the server may answer and close before
/// the body is all sent), then read the answer.
pub fn post_tolerating_early_answer(port: u16, body: &[u8]) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body));
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).to_string();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let json_start = text.find("\r\n\r\n").map(|i| i + 4).unwrap_or(text.len());
    let body = &text[json_start..];
    // Chunked or not, the JSON object is the part between the first '{' and the last '}'.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) => serde_json::from_str(&body[a..=b]).unwrap(),
        _ => panic!("no JSON in {body:?}"),
    };
    (status, json)
}

/// POST a JSON value.
pub fn post(port: u16, body: &Value) -> (u16, Value) {
    post_raw(port, "/", body.to_string().as_bytes())
}

/// Base64 of a file.
pub fn b64_file(path: &Path) -> String {
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
}

/// A black frame with filled rectangles `(x1, y1, x2, y2 inclusive, rgb)`, as base64 PNG.
pub fn frame_png(width: u32, height: u32, rects: &[(u32, u32, u32, u32, [u8; 3])]) -> String {
    let mut img = image::RgbImage::new(width, height);
    for &(x1, y1, x2, y2, rgb) in rects {
        for y in y1..=y2 {
            for x in x1..=x2 {
                img.put_pixel(x, y, image::Rgb(rgb));
            }
        }
    }
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(png)
}

/// An RGB image as base64 PNG.
pub fn png_b64(img: &image::RgbImage) -> String {
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(png)
}

/// Deterministic texture: smooth bands plus hashed speckle, different per `seed`.
pub fn texture(width: u32, height: u32, seed: u32) -> image::RgbImage {
    image::RgbImage::from_fn(width, height, |x, y| {
        let h = (x.wrapping_mul(73856093) ^ y.wrapping_mul(19349663) ^ seed.wrapping_mul(83492791))
            .wrapping_mul(2654435761);
        let band = ((x as f32 * 0.21 + seed as f32).sin() * (y as f32 * 0.17).cos() * 60.0) as i32;
        let c = |k: u32| (128 + band + ((h >> (8 * k)) & 0x3f) as i32 - 32).clamp(0, 255) as u8;
        image::Rgb([c(0), c(1), c(2)])
    })
}

/// The `points` of each detection, with its label.
pub fn boxes(v: &Value) -> Vec<(String, Vec<f64>)> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|d| {
            (
                d["label"].as_str().unwrap().to_string(),
                d["points"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_f64().unwrap())
                    .collect(),
            )
        })
        .collect()
}

/// Poll `f` every 50 ms until it holds; panic naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// The component built from the Python source folder `src` (its `app.py`, a repository path)
/// for `world`, with the componentize-py that setup installs. Built once per content under
/// target/py-components/ (a build takes about ten seconds).
pub fn python_component(src: &str, world: &str) -> PathBuf {
    use sha2::Digest as _;
    let cpy = need(".deps/venv/bin/componentize-py");
    let src = repo().join(src);
    let app = std::fs::read(src.join("app.py")).unwrap();
    let wit: Vec<u8> = ["wit/cvat-model.wit", "wit/deps/wasi-nn/wasi-nn.wit"]
        .iter()
        .flat_map(|f| std::fs::read(repo().join(f)).unwrap())
        .collect();
    let hash = sha2::Sha256::digest([app, wit, world.as_bytes().to_vec()].concat());
    let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let out_dir = repo().join("target/py-components");
    std::fs::create_dir_all(&out_dir).unwrap();
    let name = src.file_name().unwrap().to_string_lossy().to_string();
    let out = out_dir.join(format!("{name}-{hex}.wasm"));
    if out.is_file() {
        return out;
    }
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let run = Command::new(cpy)
        .arg("-q")
        .arg("-d")
        .arg(repo().join("wit"))
        .args(["-w", world, "componentize", "-p"])
        .arg(&src)
        .arg("app")
        .arg("-o")
        .arg(&tmp)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "componentize-py failed for {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// Decode CVAT's mask RLE with its bbox at the end into a full-frame bitmap.
pub fn mask_from_rle(points: &Value, width: usize, height: usize) -> Vec<bool> {
    let v: Vec<u64> = points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap() as u64)
        .collect();
    let (rle, bbox) = v.split_at(v.len() - 4);
    let (x1, y1, x2, _y2) = (
        bbox[0] as usize,
        bbox[1] as usize,
        bbox[2] as usize,
        bbox[3],
    );
    let bw = x2 - x1 + 1;
    let mut full = vec![false; width * height];
    let (mut i, mut on) = (0usize, false);
    for &run in rle {
        for k in i..i + run as usize {
            if on {
                full[(y1 + k / bw) * width + x1 + k % bw] = true;
            }
        }
        i += run as usize;
        on = !on;
    }
    full
}

/// An invocation through the gateway, as CVAT makes it in `dashboard` mode, with CVAT's
/// invoke timeout header: status, answer, and which pool member served it (if one did).
pub fn invoke_via_gateway(
    gateway: u16,
    name: &str,
    body: &Value,
    timeout: &str,
) -> (u16, Value, String) {
    let r = ureq::post(&format!(
        "http://127.0.0.1:{gateway}/api/function_invocations"
    ))
    .set("content-type", "application/json")
    .set("x-nuclio-function-name", name)
    .set("x-nuclio-path", "/")
    .set("x-nuclio-invoke-via", "domain-name")
    .set("X-Nuclio-Invoke-Timeout", timeout)
    .timeout(Duration::from_secs(300))
    .send_string(&body.to_string());
    let r = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let member = r.header("x-served-by").unwrap_or("").to_string();
    (r.status(), r.into_json().unwrap(), member)
}
