//! Per-instance store data: an empty WASI, the wasi-nn context, resource limits and a
//! bounded capture of the component's stdout/stderr.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::nn::{NnCtx, NnHost, NnView};

/// What a component's store holds.
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    nn: NnCtx,
    pub limits: TrackedLimits,
    pub log: GuestLog,
}

/// [`StoreLimits`] that also count the linear memory the component holds, so status and
/// metrics can read it without entering the store.
pub struct TrackedLimits {
    inner: StoreLimits,
    /// Bytes of linear memory currently allocated.
    pub memory_bytes: Arc<AtomicU64>,
}

impl ResourceLimiter for TrackedLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = self.inner.memory_growing(current, desired, maximum)?;
        if ok {
            self.memory_bytes
                .fetch_add(desired.saturating_sub(current) as u64, Ordering::Relaxed);
        }
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

impl StoreState {
    /// A store with no files, sockets, environment or arguments; stdout and stderr go to a
    /// bounded in-memory log; linear memory capped at `memory_limit` bytes.
    pub fn new(nn: NnCtx, memory_limit: u64) -> Self {
        let log = GuestLog::new(16 << 10);
        // Sockets are linked inert (runtime/sandbox.rs): no TCP, UDP, name lookup or address.
        let wasi = WasiCtxBuilder::new()
            .stdout(log.clone())
            .stderr(log.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_limit as usize)
            .instances(64)
            .tables(64)
            .memories(16)
            .table_elements(1 << 20)
            .trap_on_grow_failure(true)
            .build();
        let limits = TrackedLimits {
            inner: limits,
            memory_bytes: Arc::new(AtomicU64::new(0)),
        };
        Self {
            wasi,
            table: ResourceTable::new(),
            nn,
            limits,
            log,
        }
    }

    /// Hand a request's frame to the component's table for a call; [`StoreState::take_frame`]
    /// removes it afterwards.
    pub fn lend_frame(
        &mut self,
        frame: crate::nn::pixels::Frame,
    ) -> wasmtime::Result<wasmtime::component::Resource<crate::nn::pixels::Frame>> {
        Ok(self.table.push(frame)?)
    }

    /// Remove a lent frame (the component only ever borrowed it).
    pub fn take_frame(&mut self, frame: wasmtime::component::Resource<crate::nn::pixels::Frame>) {
        let _ = self.table.delete(frame);
    }

    /// The instance's loaded graphs and what runs them.
    pub fn graph_states(&self) -> Vec<crate::nn::GraphState> {
        self.nn.graph_states()
    }

    /// Time spent in inference since the last call, and reset.
    pub fn take_inference_time(&mut self) -> std::time::Duration {
        std::mem::take(&mut self.nn.inference_time)
    }

    /// An allocation the inference budget refused during the last call (see
    /// [`crate::nn::NnCtx::take_budget_refusal`]).
    pub fn take_budget_refusal(
        &mut self,
    ) -> Option<(usize, std::sync::Arc<crate::nn::budget::Budget>)> {
        self.nn.take_budget_refusal()
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl NnView for StoreState {
    fn nn(&mut self) -> NnHost<'_> {
        NnHost {
            ctx: &mut self.nn,
            table: &mut self.table,
        }
    }
}

/// The tail of what a component printed: keeps the last `capacity` bytes, never fails a
/// write (a chatty component must not trap because of its logging).
#[derive(Clone)]
pub struct GuestLog {
    buf: Arc<Mutex<Vec<u8>>>,
    capacity: usize,
}

impl GuestLog {
    fn new(capacity: usize) -> Self {
        Self {
            buf: Arc::new(Mutex::new(Vec::new())),
            capacity,
        }
    }

    /// Take what was printed since the last call, as text.
    pub fn take(&self) -> String {
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        let text = String::from_utf8_lossy(&buf).trim_end().to_string();
        buf.clear();
        text
    }

    fn push(&self, bytes: &[u8]) {
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        buf.extend_from_slice(bytes);
        if buf.len() > self.capacity {
            let cut = buf.len() - self.capacity;
            buf.drain(..cut);
        }
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(tokio::io::sink())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestLog {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}
