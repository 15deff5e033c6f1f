//! The state every HTTP handler shares: the runtime, the settings and the current
//! instances (replaced when models.yaml changes).

use std::sync::{Arc, RwLock};

use crate::config::{BrokenInstance, Settings};
use crate::instance::{Instance, State as InstanceState, Status};
use crate::runtime::Runtime;

/// Everything the handlers share. The instance list changes when models.yaml does.
pub struct App {
    pub runtime: Arc<Runtime>,
    pub settings: Arc<Settings>,
    /// Other hosts whose functions the gateway lists and forwards to.
    pub pools: crate::cvat::pools::Pools,
    instances: RwLock<Vec<Arc<Instance>>>,
    broken: RwLock<Vec<BrokenInstance>>,
    ready: std::sync::atomic::AtomicBool,
    draining: std::sync::atomic::AtomicBool,
}

impl App {
    /// An app with no instances yet.
    pub fn new(runtime: Arc<Runtime>, settings: Arc<Settings>) -> Self {
        let pools = crate::cvat::pools::Pools::new(settings.pools.clone(), settings.pool_timeout);
        Self {
            runtime,
            settings,
            pools,
            instances: RwLock::new(vec![]),
            broken: RwLock::new(vec![]),
            ready: Default::default(),
            draining: Default::default(),
        }
    }

    /// Whether the first reconciliation has run.
    pub fn is_ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Mark the first reconciliation done.
    pub fn set_ready(&self) {
        self.ready.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a shutdown has begun (`/readyz` then answers 503).
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Begin the shutdown: `/readyz` answers 503 from now on.
    pub fn set_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The current instances.
    pub fn instances(&self) -> Vec<Arc<Instance>> {
        self.instances
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replace the instance list (the reconciler's job).
    pub fn set_instances(&self, instances: Vec<Arc<Instance>>, broken: Vec<BrokenInstance>) {
        *self.instances.write().unwrap_or_else(|p| p.into_inner()) = instances;
        *self.broken.write().unwrap_or_else(|p| p.into_inner()) = broken;
    }

    /// Status of every instance, configured-but-broken ones included.
    pub fn statuses(&self) -> Vec<Status> {
        let mut all: Vec<Status> = self.instances().iter().map(|i| i.status()).collect();
        let broken = self
            .broken
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        all.extend(broken.iter().map(|b| Status {
            name: b.name.clone(),
            kind: None,
            port: b.port,
            state: InstanceState::Error,
            error: Some(b.error.clone()),
            requests: 0,
            failures: 0,
            last_used: None,
            last_load_ms: None,
            compile_cached: None,
            wasm_memory_bytes: 0,
            inference_memory_bytes: 0,
            inference_memory_peak_bytes: 0,
            inference_memory_limit_bytes: 0,
            labels: None,
            backend: String::new(),
            device: String::new(),
            precision: String::new(),
            graphs: vec![],
        }));
        all
    }
}
