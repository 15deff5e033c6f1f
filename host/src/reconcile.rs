//! Desired state (models.yaml) → running state: instances created, changed or removed and
//! their ports bound or released, without touching the instances that did not change.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::config::ModelsFile;
use crate::instance::Instance;
use crate::serve::{instance_router, PortSlot};

struct PortServer {
    slot: PortSlot,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// What one reconciliation did, by instance name.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

impl Changes {
    /// Nothing happened.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// Owns the instance ports.
pub struct Reconciler {
    app: Arc<App>,
    servers: HashMap<u16, PortServer>,
    shutdown: watch::Receiver<bool>,
}

impl Reconciler {
    /// A reconciler for `app`; every port server also stops when `shutdown` turns true.
    pub fn new(app: Arc<App>, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            app,
            servers: HashMap::new(),
            shutdown,
        }
    }

    /// Make the running state match `file`. Applying the same file twice changes nothing.
    pub async fn apply(&mut self, file: &ModelsFile) -> Changes {
        let old = self.app.instances();
        let mut changes = Changes::default();
        let mut next = Vec::with_capacity(file.instances.len());
        let mut fresh = Vec::new();
        for spec in &file.instances {
            let existing = old.iter().find(|i| i.spec.name == spec.name);
            let inst = match existing {
                Some(i) if i.spec == *spec => i.clone(),
                Some(_) => {
                    changes.changed.push(spec.name.clone());
                    Arc::new(Instance::new(spec.clone()))
                }
                None => {
                    changes.added.push(spec.name.clone());
                    Arc::new(Instance::new(spec.clone()))
                }
            };
            if existing.is_none_or(|e| !Arc::ptr_eq(e, &inst)) {
                fresh.push(inst.clone());
            }
            next.push(inst);
        }
        for i in &old {
            if !next.iter().any(|n| n.spec.name == i.spec.name) {
                changes.removed.push(i.spec.name.clone());
            }
        }
        // Release ports no instance wants any more (in-flight requests finish).
        let wanted: Vec<u16> = next.iter().map(|i| i.spec.port).collect();
        let gone: Vec<u16> = self
            .servers
            .keys()
            .copied()
            .filter(|p| !wanted.contains(p))
            .collect();
        for port in gone {
            if let Some(server) = self.servers.remove(&port) {
                let _ = server.stop.send(true);
                let _ = server.task.await;
                tracing::info!(port, "port released");
            }
        }
        // Point existing ports at their (possibly new) instance; bind new ports.
        for inst in &next {
            let port = inst.spec.port;
            if let Some(server) = self.servers.get(&port) {
                *server.slot.write().unwrap_or_else(|p| p.into_inner()) = inst.clone();
                continue;
            }
            let addr = SocketAddr::new(self.app.settings.bind, port);
            match TcpListener::bind(addr).await {
                Ok(listener) => {
                    tracing::info!(instance = %inst.spec.name, kind = ?inst.kind.as_ref().ok(), %addr, "listening");
                    let slot: PortSlot = Arc::new(RwLock::new(inst.clone()));
                    let (stop, stop_rx) = watch::channel(false);
                    let router = instance_router(self.app.clone(), slot.clone());
                    let task =
                        tokio::spawn(serve(listener, router, stop_rx, self.shutdown.clone()));
                    self.servers.insert(port, PortServer { slot, stop, task });
                }
                Err(e) => {
                    tracing::error!(instance = %inst.spec.name, %addr, "cannot listen: {e}");
                    inst.set_error(format!("cannot listen on {addr}: {e}"));
                }
            }
        }
        for b in &file.broken {
            tracing::error!(instance = %b.name, "not served: {}", b.error);
        }
        self.app.set_instances(next, file.broken.clone());
        // `preload: true` instances load now, in the background (`/readyz` waits for them).
        for inst in fresh.into_iter().filter(|i| i.spec.preload) {
            let app = self.app.clone();
            tokio::spawn(async move { inst.preload(&app.runtime, &app.settings).await });
        }
        changes
    }

    /// Wait for every port server to finish (after the shutdown signal).
    pub async fn join(self) {
        for (_, server) in self.servers {
            let _ = server.task.await;
        }
    }
}

/// Serve `router` until `stop` or `shutdown` turns true; in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let signal = async move {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => {}
            _ = shutdown.wait_for(|s| *s) => {}
        }
    };
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(signal)
        .await
    {
        tracing::error!("server error: {e}");
    }
}
