//! `host up`: load the config, bind every port, keep the running state in line with
//! models.yaml and the components folder, serve until asked to stop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;
use crate::config::watch::Watcher;
use crate::config::ModelsFile;
use crate::instance::idle_unloader;
use crate::reconcile::{serve, Reconciler};
use crate::runtime::Runtime;
use crate::serve::management_router;

/// Where ONNX Runtime's shared library is: `ORT_DYLIB_PATH`, else `.deps/onnxruntime`
/// under `root`, else beside the executable or in a `.deps/onnxruntime` above it.
pub fn find_onnxruntime(root: &Path) -> Option<PathBuf> {
    find_library(root, "ORT_DYLIB_PATH", "onnxruntime", "libonnxruntime.so")
}

/// Find ONNX Runtime's library and initialise `ort` with it (once per process; `name`
/// names its environment in ONNX Runtime's logs). Returns the library's path.
pub fn init_onnxruntime(root: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let ort = find_onnxruntime(root).context(
        "ONNX Runtime library not found: run scripts/setup.sh or set ORT_DYLIB_PATH to libonnxruntime.so",
    )?;
    ort::init_from(ort.display().to_string())
        .with_name(name)
        .commit()
        .context("initialising ONNX Runtime")?;
    crate::nn::budget::register_with_onnxruntime()?;
    Ok(ort)
}

/// Where OpenVINO's C library is: `OPENVINO_LIB`, else `.deps/openvino` under `root`, else
/// beside the executable or in a `.deps/openvino` above it. `None` when not installed.
pub fn find_openvino(root: &Path) -> Option<PathBuf> {
    find_library(root, "OPENVINO_LIB", "openvino", "libopenvino_c.so")
}

fn find_library(root: &Path, env: &str, deps: &str, lib: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let mut candidates = vec![root.join(".deps").join(deps).join(lib)];
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            candidates.push(dir.join(lib));
            candidates.push(dir.join(".deps").join(deps).join(lib));
        }
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// The libraries `host up` hands to the runtime.
pub fn libraries(root: &Path) -> crate::nn::Libraries {
    crate::nn::Libraries {
        onnxruntime: find_onnxruntime(root),
        chooser: Some(crate::nn::choose::Chooser::new(Some(
            root.join(".state/backends"),
        ))),
        openvino: find_openvino(root),
        openvino_cache: Some(root.join(".state/cache/openvino")),
    }
}

/// How often models.yaml and the components folder are checked for changes.
pub const WATCH_PERIOD: Duration = Duration::from_millis(500);

/// Start every listener and serve until `shutdown` turns true. In-flight requests finish
/// before this returns.
pub async fn run(
    root: &Path,
    config_path: &Path,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    if crate::serve::BUILD == "debug" {
        tracing::warn!("this is a debug build: requests run several times slower than with the release build that `scripts/host up` serves");
    }
    let ort = init_onnxruntime(root, "host")?;
    tracing::info!(library = %ort.display(), "ONNX Runtime");
    let libraries = libraries(root);
    match &libraries.openvino {
        Some(lib) => tracing::info!(library = %lib.display(), "OpenVINO (opened on first use)"),
        None => tracing::info!(
            "OpenVINO not installed: instances with `backend: openvino` will not load"
        ),
    }

    let file = ModelsFile::load(config_path, root)?;
    let settings = Arc::new(file.settings.clone());
    let runtime = Arc::new(Runtime::new(
        root.join(".state/cache/components"),
        libraries,
    )?);
    let app = Arc::new(App::new(runtime, settings.clone()));
    // The listeners stop accepting on this one, `drain_delay` after the shutdown signal
    // (while /readyz already answers 503, so a load balancer stops sending first).
    let (stop_serving, serving) = watch::channel(false);

    let gateway = SocketAddr::new(settings.bind, settings.gateway_port);
    let listener = TcpListener::bind(gateway)
        .await
        .with_context(|| format!("binding the gateway port {gateway}"))?;
    tracing::info!(%gateway, "management API listening");
    let gateway_task = tokio::spawn(serve(
        listener,
        management_router(app.clone()),
        serving.clone(),
        serving.clone(),
    ));

    let mut reconciler = Reconciler::new(app.clone(), serving.clone());
    reconciler.apply(&file).await;
    app.set_ready();
    regenerate_nuclio(&app);
    let unloader = tokio::spawn(idle_unloader(app.clone(), Duration::from_secs(1)));
    tracing::info!("ready");

    let mut watcher = Watcher::new(root, config_path, &settings);
    let mut shutdown_wait = shutdown.clone();
    let mut tick = tokio::time::interval(WATCH_PERIOD);
    loop {
        tokio::select! {
            _ = shutdown_wait.wait_for(|s| *s) => break,
            _ = tick.tick() => {}
        }
        let (w, rt) = (watcher, app.runtime.clone());
        let (w, polled) = tokio::task::spawn_blocking(move || {
            let mut w = w;
            let file = w.poll(&rt);
            (w, file)
        })
        .await
        .context("watcher task")?;
        watcher = w;
        let Some(file) = polled else { continue };
        let changes = reconciler.apply(&file).await;
        if !changes.is_empty() {
            tracing::info!(added = ?changes.added, changed = ?changes.changed, removed = ?changes.removed, "models.yaml applied");
            regenerate_nuclio(&app);
        }
    }
    app.set_draining();
    if !settings.drain_delay.is_zero() {
        tracing::info!(delay = ?settings.drain_delay, "draining: /readyz answers 503; still accepting until the delay ends");
        tokio::time::sleep(settings.drain_delay).await;
    }
    tracing::info!(grace = ?settings.drain_timeout, "shutting down: no new connections; finishing in-flight requests");
    let _ = stop_serving.send(true);
    unloader.abort();
    let finished = tokio::time::timeout(settings.drain_timeout, async {
        reconciler.join().await;
        let _ = gateway_task.await;
    })
    .await;
    if finished.is_err() {
        let busy: Vec<String> = app
            .instances()
            .iter()
            .filter(|i| i.in_flight() > 0)
            .map(|i| format!("{} ({} in flight)", i.spec.name, i.in_flight()))
            .collect();
        tracing::warn!(grace = ?settings.drain_timeout, busy = ?busy, "the drain timeout ran out: exiting with requests unfinished");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Regenerate nuclio_functions/ in the background (it may compile components). This also
/// describes every instance, so the gateway and the status know their labels before any
/// request, and an instance CVAT cannot use is reported at once.
fn regenerate_nuclio(app: &Arc<App>) {
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let s = &app.settings;
        match crate::cvat::nuclio::generate_for(&app.instances(), &app.runtime, s, &s.nuclio_dir) {
            Ok(r) if r.written.is_empty() && r.removed.is_empty() && r.unusable.is_empty() => {}
            Ok(r) => {
                for (name, problem) in &r.unusable {
                    tracing::error!(instance = %name, "unusable in CVAT: {problem}");
                }
                tracing::info!(written = ?r.written, removed = ?r.removed, kept = ?r.kept, dir = %s.nuclio_dir.display(), "nuclio functions generated")
            }
            Err(e) => tracing::warn!("could not generate nuclio functions: {e}"),
        }
    });
}
