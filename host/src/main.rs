//! The `host` command line.

use std::io::{IsTerminal, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use host::daemon::{Running, StateDir};

#[derive(Parser)]
#[command(
    name = "host",
    version,
    about = "Serve WebAssembly model components to CVAT"
)]
struct Cli {
    /// Project root: components/, models and the state directory are found from here.
    #[arg(long, global = true, default_value = ".")]
    root: PathBuf,
    /// The models file (default: <root>/config/models.yaml). Before the command: after it,
    /// `add --config` is a component config entry.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every instance; Ctrl-C stops gracefully. `-d` detaches (like docker compose).
    Up {
        /// Run in the background: pid and log files under <root>/.state/; returns once every
        /// instance port is listening, or says which failed.
        #[arg(short = 'd', long)]
        detach: bool,
        /// Log format: text, or json (one object per line, for log shippers).
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
        /// Run as the child of `host up -d`'s supervisor (which owns the pid file).
        #[arg(long, hide = true)]
        supervised: bool,
    },
    /// What `host up -d` runs in the background: `host up` as a child, restarted when it
    /// dies (see src/supervise.rs).
    #[command(hide = true)]
    Supervise {
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
    },
    /// Stop the detached host: stop accepting, finish in-flight requests, unload, exit.
    Down {
        /// Seconds to wait for a graceful stop before killing it.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// The detached host's logs.
    Logs {
        /// Keep printing new lines.
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only lines about this instance.
        instance: Option<String>,
    },
    /// Write nuclio_functions/<instance>/ for every instance (also done by `up`).
    Nuclio,
    /// Scaffold a component that builds and passes a smoke test: a crate under components/,
    /// or, with --dir or --lang python, a standalone project outside the repository.
    New {
        /// detector, or with --lang python also tracker, interactor or reid
        kind: String,
        /// Component name: lowercase letters, digits and '-'.
        name: String,
        /// rust | python (componentize-py)
        #[arg(long, default_value = "rust")]
        lang: String,
        /// Create a standalone project in this folder (default for python: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Install a built component into components/NAME/ and register an instance of it in
    /// models.yaml, after checking its kind, contract version, imports, size and describe.
    Add(AddArgs),
    /// Write the WIT contract this host speaks (cvat:model and its wasi:nn dependency).
    Wit {
        /// Folder to write into.
        #[arg(default_value = "wit")]
        dir: PathBuf,
    },
    /// Load one model file and time the backend alone: signature, load, first run, p50/p99.
    Probe {
        /// The .onnx file.
        model: PathBuf,
        /// onnxruntime | openvino
        #[arg(long, default_value = "onnxruntime")]
        backend: String,
        /// cpu | cuda:N
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Intra-op threads (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        /// model (the model's own, default) | bf16 | f16 (OpenVINO only)
        #[arg(long, default_value = "model")]
        precision: String,
        /// Compare every backend on this machine (load, p50, agreement with ONNX Runtime)
        /// and say which `backend: auto` picks.
        #[arg(long)]
        all_backends: bool,
        /// Requests per load that `auto` weighs load time against (with --all-backends).
        #[arg(long, default_value_t = host::nn::choose::DEFAULT_REQUESTS_PER_LOAD)]
        requests_per_load: u32,
        /// Timed runs after the first.
        #[arg(long, default_value_t = 100)]
        runs: usize,
    },
    /// Show every instance of the running host.
    Status {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

/// Errors end the process with one line naming the cause chain (`error: a: b: c`), never a
/// backtrace: `host up -d` shows exactly that line from the detached host's log.
fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{ERROR_PREFIX}{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// How a fatal error's line starts (see `main`).
const ERROR_PREFIX: &str = "error: ";

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli
        .config
        .clone()
        .unwrap_or_else(|| cli.root.join("config/models.yaml"));
    match cli.command {
        Command::Up {
            detach: false,
            log_format,
            supervised,
        } => up(cli.root, config, &log_format, supervised),
        Command::Up {
            detach: true,
            log_format,
            ..
        } => up_detached(&cli.root, &config, &log_format),
        Command::Supervise { log_format } => supervise(&cli.root, &config, &log_format),
        Command::Down { timeout } => down(&cli.root, Duration::from_secs(timeout)),
        Command::Logs { follow, instance } => logs(&cli.root, follow, instance.as_deref()),
        Command::Status { json } => status(&cli.root, &config, json),
        Command::Nuclio => nuclio(&cli.root, &config),
        Command::Probe {
            model,
            backend,
            device,
            threads,
            precision,
            all_backends,
            requests_per_load,
            runs,
        } => {
            let options = host::nn::SessionOptions {
                intra_threads: threads.unwrap_or_else(|| {
                    std::thread::available_parallelism()
                        .map(|n| n.get())
                        .unwrap_or(1)
                }),
                backend: host::nn::Backend::parse(&backend).map_err(anyhow::Error::msg)?,
                device: host::nn::Device::parse(&device).map_err(anyhow::Error::msg)?,
                precision: host::nn::Precision::parse(&precision).map_err(anyhow::Error::msg)?,
                requests_per_load,
            };
            if all_backends {
                compare_backends(&cli.root, &model, options)
            } else {
                probe(&cli.root, &model, options, runs)
            }
        }
        Command::New {
            kind,
            name,
            lang,
            dir,
        } => new(&cli.root, &kind, &name, &lang, dir),
        Command::Add(args) => add(&cli.root, &config, args),
        Command::Wit { dir } => {
            for path in host::contract::write_wit(&dir).map_err(anyhow::Error::msg)? {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
    }
}

fn new(
    root: &Path,
    kind: &str,
    name: &str,
    lang: &str,
    dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let standalone = match (lang, dir) {
        ("rust", None) => None,
        ("rust" | "python", Some(dir)) => Some(dir),
        ("python", None) => Some(PathBuf::from(name)),
        (other, _) => anyhow::bail!("--lang {other}: rust or python"),
    };
    let Some(dir) = standalone else {
        let files = host::scaffold::new_component(&root.join("components"), kind, name)
            .map_err(anyhow::Error::msg)?;
        for f in files {
            println!("wrote {f}");
        }
        println!("next: scripts/build-components.sh, then put the model at components/{name}/model.onnx (discovery registers it) or reference `implementation: {name}` in models.yaml");
        return Ok(());
    };
    let project = host::scaffold::Project {
        kind: kind.to_string(),
        name: name.to_string(),
        lang: host::scaffold::Lang::parse(lang).map_err(anyhow::Error::msg)?,
        dir: dir.clone(),
        host_root: root.canonicalize()?,
        host_bin: std::env::current_exe()?,
    };
    for f in host::scaffold::new_project(&project).map_err(anyhow::Error::msg)? {
        println!("wrote {}", f.display());
    }
    println!(
        "next: cd {} && ./build.sh && ./smoke_test.py   (then `host add component.wasm --name {name} [--weights MODEL.onnx]`)",
        dir.display()
    );
    Ok(())
}

/// `host add`'s arguments, as typed.
#[derive(clap::Args)]
struct AddArgs {
    /// The component (.wasm).
    component: PathBuf,
    /// Instance name (also the folder under components/).
    #[arg(long)]
    name: String,
    /// A model file to install with it: FILE (config key `weights`) or KEY=FILE.
    #[arg(long, value_name = "[KEY=]FILE")]
    weights: Vec<String>,
    /// A config entry handed to the component: KEY=VALUE.
    #[arg(long = "config", id = "entry", value_name = "KEY=VALUE")]
    entries: Vec<String>,
    /// The instance's port (default: the next free one of settings.port_range).
    #[arg(long)]
    port: Option<u16>,
    /// Class names in the model's class order, comma-separated (for components that
    /// take their labels from the instance).
    #[arg(long, value_delimiter = ',')]
    classes: Vec<String>,
}

fn add(root: &Path, config: &Path, args: AddArgs) -> anyhow::Result<()> {
    use host::config::add::AddRequest;
    let file = host::config::ModelsFile::load(config, root)?;
    let req = AddRequest {
        wasm: args.component,
        name: args.name,
        weights: args
            .weights
            .iter()
            .map(|w| AddRequest::parse_weights(w))
            .collect(),
        config: args
            .entries
            .iter()
            .map(|c| AddRequest::parse_config(c))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?,
        port: args.port,
        classes: args.classes,
    };
    let rt = host::runtime::Runtime::new(
        root.join(".state/cache/components"),
        host::up::libraries(root),
    )?;
    let added = host::config::add::add(&rt, &file.settings, config, &req)
        .map_err(|e| anyhow::anyhow!("{} not added: {e}", req.name))?;
    let labels: Vec<&str> = added.info.labels.iter().map(|l| l.name.as_str()).collect();
    println!(
        "added {}: a {} on port {}, labels [{}]",
        added.name,
        added.kind,
        added.port,
        labels.join(", ")
    );
    println!(
        "  component  {} ({:.1} MB)",
        added.dir.join("component.wasm").display(),
        added.bytes as f64 / 1e6
    );
    for (key, path) in &added.graphs {
        println!("  {key:<10} {path}");
    }
    println!(
        "  imports    {} granted{}",
        added.imports.served.len(),
        if added.imports.inert.is_empty() {
            String::new()
        } else {
            format!(
                ", {} inert (linked, every call refused: {})",
                added.imports.inert.len(),
                added.imports.inert.join(", ")
            )
        }
    );
    // Only a detector is unusable without labels (CVAT maps its answers by label name).
    if labels.is_empty() && added.kind == host::runtime::kind::Kind::Detector {
        println!("  warning: it names no labels, so CVAT cannot use it: add --classes, or a classes.txt beside the weights");
    }
    println!(
        "a running host serves it within a second; CVAT lists it as `{}`",
        added.name
    );
    Ok(())
}

/// Log to stdout as text or JSON lines, at `info` unless RUST_LOG says otherwise.
fn init_logging(log_format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,ort=warn".into());
    let ansi = std::io::stdout().is_terminal();
    if log_format == "json" {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_ansi(false)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .init();
    }
}

fn up(root: PathBuf, config: PathBuf, log_format: &str, supervised: bool) -> anyhow::Result<()> {
    let state = StateDir::new(&root);
    if let Running::Yes(pid) = state.running() {
        if pid != std::process::id() as i32 && !supervised {
            anyhow::bail!("a detached host is already running here (pid {pid}); `host down` first");
        }
    }
    init_logging(log_format);
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            let _ = tx.send(true);
        });
        host::up::run(&root, &config, rx).await
    });
    // A component call still running past the drain timeout holds a blocking thread; the
    // process does not wait for it (dropping the runtime would).
    rt.shutdown_timeout(Duration::from_millis(200));
    result
}

/// `host up -d`'s background process: serve under supervision, then remove the pid file.
fn supervise(root: &Path, config: &Path, log_format: &str) -> anyhow::Result<()> {
    let state = StateDir::new(root);
    init_logging(log_format);
    let mut serve = std::process::Command::new(std::env::current_exe()?);
    serve
        .arg("--root")
        .arg(root)
        .arg("--config")
        .arg(config)
        .args(["up", "--supervised", "--log-format", log_format])
        .stdin(std::process::Stdio::null());
    let result = host::supervise::run(serve, &state.dir);
    if state.running() == Running::Yes(std::process::id() as i32) {
        let _ = std::fs::remove_file(state.pid_file());
    }
    result
}

/// The gateway address to talk to (loopback when the host binds every address).
fn gateway_addr(root: &Path, config: &Path) -> anyhow::Result<SocketAddr> {
    let file = host::config::ModelsFile::load(config, root)?;
    let ip = match file.settings.bind {
        IpAddr::V4(v) if v.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        other => other,
    };
    Ok(SocketAddr::new(ip, file.settings.gateway_port))
}

fn up_detached(root: &Path, config: &Path, log_format: &str) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let state = StateDir::new(root);
    match state.running() {
        Running::Yes(pid) => anyhow::bail!("already running (pid {pid}); `host down` first"),
        Running::Stale(pid) => {
            eprintln!("removed a stale pid file (pid {pid} is not a running host)")
        }
        Running::No => {}
    }
    let gateway = gateway_addr(root, config)?;
    std::fs::create_dir_all(&state.dir)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.log_file())?;
    let root_abs = root.canonicalize()?;
    let config_abs = config.canonicalize()?;
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.arg("--root")
        .arg(&root_abs)
        .arg("--config")
        .arg(&config_abs)
        .args(["supervise", "--log-format", log_format]);
    cmd.stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; it detaches the child from our terminal session.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    // The log is appended to: only what this start writes explains its failure.
    let log_start = std::fs::metadata(state.log_file())?.len();
    let _ = std::fs::remove_file(host::supervise::record_path(&state.dir));
    let mut child = cmd.spawn().context("starting the host")?;
    let pid = child.id() as i32;
    state.write_pid(pid)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let failed = |what: String| {
        let _ = std::fs::remove_file(state.pid_file());
        let log = std::fs::read(state.log_file()).unwrap_or_default();
        let text = String::from_utf8_lossy(log.get(log_start as usize..).unwrap_or_default());
        anyhow::anyhow!(
            "the host {what}:\n{}\n(full log: {})",
            why_it_failed(&text),
            state.log_file().display()
        )
    };
    loop {
        if let Some(code) = child.try_wait()? {
            return Err(failed(format!("exited ({code})")));
        }
        // A serving process that dies before it is ready would only die again: stop the
        // supervisor and say why.
        if let Some(exit) = host::supervise::read_record(&state.dir).and_then(|r| r.last_exit) {
            host::daemon::stop(pid, Duration::from_secs(10))?;
            let _ = child.wait();
            return Err(failed(exit.reason));
        }
        match http_get(gateway, "/readyz") {
            Ok((200, _)) => break,
            Ok((503, body)) if body.contains("ports not bound") => {
                eprintln!(
                    "warning: {}",
                    serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["error"].as_str().map(String::from))
                        .unwrap_or(body)
                );
                break;
            }
            _ => {}
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the host did not become ready in time; see {}",
            state.log_file().display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "host running in the background (supervisor pid {pid}: restarts it if it dies), gateway {gateway}, log {}",
        state.log_file().display()
    );
    status(root, config, false)
}

/// The lines of a failed start's log that say why: the fatal error line and any error-level
/// log lines (text or JSON format), else its last lines.
fn why_it_failed(log: &str) -> String {
    let errors: Vec<&str> = log
        .lines()
        .filter_map(|l| {
            let error_level =
                l.split_whitespace().nth(1) == Some("ERROR") || l.contains("\"level\":\"ERROR\"");
            l.strip_prefix(ERROR_PREFIX).or(error_level.then_some(l))
        })
        .collect();
    let lines = if errors.is_empty() {
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(8)..].to_vec()
    } else {
        errors
    };
    lines.join("\n")
}

fn down(root: &Path, timeout: Duration) -> anyhow::Result<()> {
    let state = StateDir::new(root);
    match state.running() {
        Running::No => println!("host is not running"),
        Running::Stale(pid) => {
            println!("host is not running (removed a stale pid file naming pid {pid})")
        }
        Running::Yes(pid) => {
            let serving = host::supervise::read_record(&state.dir).and_then(|r| r.serving_pid);
            let killed = host::daemon::stop(pid, timeout)?;
            if killed {
                // The supervisor did not finish in time: its serving process goes too.
                if let Some(child) = serving.filter(|&c| host::supervise::is_serving(c)) {
                    // SAFETY: kill(2) on the supervisor's child, checked by its command line.
                    unsafe { libc::kill(child as i32, libc::SIGKILL) };
                }
            }
            let _ = std::fs::remove_file(state.pid_file());
            if killed {
                println!(
                    "host (pid {pid}) did not stop within {}s and was killed",
                    timeout.as_secs()
                );
            } else {
                println!("host stopped (pid {pid})");
            }
        }
    }
    Ok(())
}

fn logs(root: &Path, follow: bool, instance: Option<&str>) -> anyhow::Result<()> {
    let path = StateDir::new(root).log_file();
    let mut file = std::fs::File::open(&path).with_context(|| {
        format!(
            "no log at {} (the detached host writes it: `host up -d`)",
            path.display()
        )
    })?;
    let keep = |line: &str| match instance {
        None => true,
        Some(i) => {
            line.contains(&format!("instance={i}"))
                || line.contains(&format!("\"instance\":\"{i}\""))
        }
    };
    let mut pending = String::new();
    let mut out = std::io::stdout().lock();
    loop {
        let mut chunk = String::new();
        file.read_to_string(&mut chunk)?;
        pending.push_str(&chunk);
        while let Some(nl) = pending.find('\n') {
            let line: String = pending.drain(..=nl).collect();
            if keep(&line) {
                out.write_all(line.as_bytes())?;
            }
        }
        out.flush()?;
        if !follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn probe(
    root: &Path,
    model: &Path,
    options: host::nn::SessionOptions,
    runs: usize,
) -> anyhow::Result<()> {
    let ort = host::up::init_onnxruntime(root, "host-probe")?;
    println!(
        "{} on {} {} ({} threads), ONNX Runtime {}",
        model.display(),
        options.backend,
        options.device,
        options.intra_threads,
        ort.display()
    );
    let r = host::probe::probe(model, options, &host::up::libraries(root), runs, |line| {
        println!("{line}")
    })?;
    println!(
        "load {:.1} ms, first run {:.2} ms, {} runs: p50 {:.3} ms, p99 {:.3} ms, min {:.3} ms, output sum {:.6e}, computed at {}",
        r.load_ms,
        r.first_run_ms,
        r.runs_ms.len(),
        r.quantile(0.5),
        r.quantile(0.99),
        r.runs_ms[0],
        r.output_sum,
        r.precision
    );
    Ok(())
}

/// `host probe --all-backends`: every backend on this model, and what `auto` picks.
fn compare_backends(
    root: &Path,
    model: &Path,
    options: host::nn::SessionOptions,
) -> anyhow::Result<()> {
    host::up::init_onnxruntime(root, "host-probe")?;
    let m = host::nn::choose::compare(model, options, &host::up::libraries(root))?;
    println!(
        "{} ({} threads, {} timed runs each, outputs compared with onnxruntime's)",
        model.display(),
        m.threads,
        host::nn::choose::TIMED_RUNS
    );
    println!(
        "{:<12} {:>10} {:>10} {:>10} {:>14}",
        "BACKEND", "LOAD", "COLD LOAD", "P50", "MAX REL DIFF"
    );
    for t in &m.trials {
        match &t.error {
            Some(e) => println!("{:<12} failed: {e}", t.backend),
            None => println!(
                "{:<12} {:>7.1} ms {:>10} {:>7.2} ms {:>14}",
                t.backend,
                t.load_ms,
                t.cold_load_ms
                    .map(|c| format!("{c:.1} ms"))
                    .unwrap_or_else(|| "-".into()),
                t.p50_ms,
                t.max_rel_diff
                    .map(|d| format!("{d:.1e}"))
                    .unwrap_or_else(|| "-".into())
            ),
        }
    }
    println!(
        "auto at {} requests per load: {}",
        options.requests_per_load,
        m.choose(options.requests_per_load).1
    );
    Ok(())
}

/// Generate the Nuclio functions and say what changed.
fn nuclio(root: &std::path::Path, config: &std::path::Path) -> anyhow::Result<()> {
    let file = host::config::ModelsFile::load(config, root)?;
    for b in &file.broken {
        eprintln!("skipping {}: {}", b.name, b.error);
    }
    let rt = host::runtime::Runtime::new(
        root.join(".state/cache/components"),
        host::up::libraries(root),
    )?;
    let instances: Vec<_> = file
        .instances
        .iter()
        .cloned()
        .map(|s| std::sync::Arc::new(host::instance::Instance::new(s)))
        .collect();
    let dir = &file.settings.nuclio_dir;
    let report = host::cvat::nuclio::generate_for(&instances, &rt, &file.settings, dir)
        .map_err(anyhow::Error::msg)?;
    for name in &report.written {
        println!("wrote {}", dir.join(name).display());
    }
    for name in &report.removed {
        println!("removed {}", dir.join(name).display());
    }
    for (name, problem) in &report.unusable {
        println!("not generated {}: {problem}", dir.join(name).display());
    }
    for name in &report.kept {
        println!(
            "kept {} (not generated by the host; left as it is)",
            dir.join(name).display()
        );
    }
    if report.written.is_empty() && report.removed.is_empty() && report.unusable.is_empty() {
        println!("{} is up to date", dir.display());
    }
    Ok(())
}

/// Ask the running host's management API for its status.
fn status(root: &Path, config: &Path, json: bool) -> anyhow::Result<()> {
    let addr = gateway_addr(root, config)?;
    let body = match http_get(addr, "/api/status") {
        Ok((200, b)) => b,
        Ok((code, b)) => anyhow::bail!("the host answered {code}: {b}"),
        Err(e) => {
            eprintln!("host is not running (nothing answers on {addr}: {e})");
            std::process::exit(3);
        }
    };
    let mut value: serde_json::Value =
        serde_json::from_str(&body).context("the host answered with invalid JSON")?;
    let supervisor = host::supervise::read_record(&StateDir::new(root).dir);
    if let Some(r) = &supervisor {
        value["supervisor"] = serde_json::to_value(r)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1 << 20) as f64);
    println!(
        "gateway {}   host RSS {}   {} build",
        value["gateway"].as_str().unwrap_or("?"),
        value["rss_bytes"]
            .as_u64()
            .map(mib)
            .unwrap_or_else(|| "?".into()),
        value["build"].as_str().unwrap_or("?")
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if let Some(r) = &supervisor {
        let last = r.last_exit.as_ref().map_or(String::new(), |e| {
            format!(
                "; last exit {}s ago: {} after {:.0}s",
                now.saturating_sub(e.at),
                e.reason,
                e.uptime_s
            )
        });
        println!(
            "supervised (up -d): serving pid {}, restarts {}{last}",
            r.serving_pid.map_or("-".into(), |p| p.to_string()),
            r.restarts
        );
    }
    println!(
        "{:<22} {:<10} {:>5}  {:<8} {:>6} {:>10} {:>17} {:<12} {:>8} {:>9}  ERROR",
        "NAME",
        "KIND",
        "PORT",
        "STATE",
        "LABELS",
        "WASM MEM",
        "INFERENCE/BUDGET",
        "DEVICE",
        "REQUESTS",
        "LAST USED"
    );
    for i in value["instances"].as_array().into_iter().flatten() {
        let s = |k: &str| {
            i[k].as_str()
                .map(String::from)
                .unwrap_or_else(|| "-".into())
        };
        let last = i["last_used"]
            .as_u64()
            .map(|t| format!("{}s ago", now.saturating_sub(t)))
            .unwrap_or_else(|| "-".into());
        let number = |k: &str| {
            i[k].as_u64()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into())
        };
        let budget = match i["inference_memory_limit_bytes"].as_u64() {
            Some(l) if l < u64::MAX && l > 0 => format!(
                "{:.0}/{:.0} MiB",
                i["inference_memory_bytes"].as_u64().unwrap_or(0) as f64 / (1 << 20) as f64,
                l as f64 / (1 << 20) as f64
            ),
            _ => "-".into(),
        };
        println!(
            "{:<22} {:<10} {:>5}  {:<8} {:>6} {:>10} {:>17} {:<12} {:>8} {:>9}  {}",
            s("name"),
            s("kind"),
            number("port"),
            s("state"),
            number("labels"),
            mib(i["wasm_memory_bytes"].as_u64().unwrap_or(0)),
            budget,
            {
                let mut d = match i["backend"].as_str() {
                    Some("openvino") => format!("openvino:{}", s("device")),
                    // What auto chose for the loaded graphs.
                    Some("auto") => {
                        let mut chosen: Vec<&str> = i["graphs"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|g| g["backend"].as_str())
                            .collect();
                        chosen.dedup();
                        match chosen.as_slice() {
                            [] => format!("auto:{}", s("device")),
                            [one] => format!("auto={one}"),
                            _ => "auto=mixed".into(),
                        }
                    }
                    _ => s("device"),
                };
                if let Some(p) = i["precision"].as_str().filter(|p| *p != "model") {
                    d.push_str(&format!(":{p}"));
                }
                d
            },
            i["requests"].as_u64().unwrap_or(0),
            last,
            i["error"].as_str().unwrap_or("")
        );
    }
    let pools = value["pools"].as_array().cloned().unwrap_or_default();
    if !pools.is_empty() {
        println!(
            "\n{:<22} {:>9}  {:<44} ERROR",
            "POOL", "FUNCTIONS", "MEMBERS"
        );
    }
    for p in pools {
        let members: Vec<&str> = p["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str())
            .collect();
        println!(
            "{:<22} {:>9}  {:<44} {}",
            p["name"].as_str().unwrap_or("?"),
            p["functions"].as_u64().unwrap_or(0),
            members.join(" "),
            p["error"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// A minimal HTTP/1.0 GET (the host only ever talks to itself on loopback here): status
/// and body.
fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("malformed status line")?;
    Ok((code, body.to_string()))
}
