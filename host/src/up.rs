//! `host up`: load the config, bind every port, serve until asked to stop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::ModelsFile;
use crate::instance::{idle_unloader, Instance};
use crate::runtime::Runtime;
use crate::server::{instance_router, management_router, App};

/// Where ONNX Runtime's shared library is: `ORT_DYLIB_PATH`, else `.deps/onnxruntime`
/// under `root`, else beside the executable or in a `.deps/onnxruntime` above it.
pub fn find_onnxruntime(root: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return Some(PathBuf::from(p));
    }
    let lib = "libonnxruntime.so";
    let mut candidates = vec![root.join(".deps/onnxruntime").join(lib)];
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            candidates.push(dir.join(lib));
            candidates.push(dir.join(".deps/onnxruntime").join(lib));
        }
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// Start every listener and serve until `shutdown` turns true. In-flight requests finish
/// before this returns.
pub async fn run(
    root: &Path,
    config_path: &Path,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let ort = find_onnxruntime(root).context(
        "ONNX Runtime library not found: run scripts/setup.sh or set ORT_DYLIB_PATH to libonnxruntime.so",
    )?;
    ort::init_from(ort.display().to_string())
        .with_name("host")
        .commit()
        .context("initialising ONNX Runtime")?;
    tracing::info!(library = %ort.display(), "ONNX Runtime");

    let file = ModelsFile::load(config_path, root)?;
    for b in &file.broken {
        tracing::error!(instance = %b.name, "not served: {}", b.error);
    }
    let settings = Arc::new(file.settings.clone());
    let runtime = Arc::new(Runtime::new(root.join(".state/cache/components"))?);
    let instances: Vec<Arc<Instance>> = file
        .instances
        .iter()
        .cloned()
        .map(|s| Arc::new(Instance::new(s)))
        .collect();
    let app = Arc::new(App {
        runtime,
        settings: settings.clone(),
        instances: instances.clone(),
        broken: file.broken.clone(),
    });

    let mut servers = tokio::task::JoinSet::new();
    let gateway = SocketAddr::new(settings.bind, settings.gateway_port);
    let listener = TcpListener::bind(gateway)
        .await
        .with_context(|| format!("binding the gateway port {gateway}"))?;
    tracing::info!(%gateway, "management API listening");
    servers.spawn(serve(
        listener,
        management_router(app.clone()),
        shutdown.clone(),
    ));

    for inst in &instances {
        let addr = SocketAddr::new(settings.bind, inst.spec.port);
        match TcpListener::bind(addr).await {
            Ok(listener) => {
                tracing::info!(instance = %inst.spec.name, kind = ?inst.kind.as_ref().ok(), %addr, "listening");
                servers.spawn(serve(
                    listener,
                    instance_router(app.clone(), inst.clone()),
                    shutdown.clone(),
                ));
            }
            Err(e) => {
                tracing::error!(instance = %inst.spec.name, %addr, "cannot listen: {e}");
                inst.set_error(format!("cannot listen on {addr}: {e}"));
            }
        }
    }
    let unloader = tokio::spawn(idle_unloader(instances.clone(), Duration::from_secs(1)));
    // Nuclio functions for users of a stock CVAT + Nuclio; off the start-up path.
    let gen_app = app.clone();
    tokio::task::spawn_blocking(move || {
        let s = &gen_app.settings;
        match crate::nuclio::generate_for(&gen_app.instances, &gen_app.runtime, s, &s.nuclio_dir) {
            Ok(r) if r.written.is_empty() && r.removed.is_empty() => {}
            Ok(r) => {
                tracing::info!(written = ?r.written, removed = ?r.removed, kept = ?r.kept, dir = %s.nuclio_dir.display(), "nuclio functions generated")
            }
            Err(e) => tracing::warn!("could not generate nuclio functions: {e}"),
        }
    });
    tracing::info!("ready");
    let _ = shutdown.wait_for(|stop| *stop).await;
    tracing::info!("shutting down: finishing in-flight requests");
    unloader.abort();
    while servers.join_next().await.is_some() {}
    tracing::info!("stopped");
    Ok(())
}

async fn serve(listener: TcpListener, router: axum::Router, mut shutdown: watch::Receiver<bool>) {
    let stop = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!("server error: {e}");
    }
}
