//! Inference memory budgets. Inference memory lives outside the wasm sandbox, so the wasm
//! memory cap does not bound it: a request whose shape drives the model's work could make
//! ONNX Runtime allocate gigabytes. Every instance therefore has a [`Budget`] (settings
//! `inference_memory_mb`, per instance too), and ONNX Runtime allocates every CPU tensor of
//! every session through one accounting allocator registered with its environment
//! ([`register_with_onnxruntime`]). An allocation is charged to the budget the allocating
//! thread is working for ([`Budget::charge_here`], entered by the wasi-nn host around loads
//! and runs): weights at load, activations and outputs during a run. One that would take
//! the instance past its budget is refused and the run is stopped before its next operator
//! (ONNX Runtime's terminate flag, [`Budget::stop_run_on_refusal`]); the host answers that
//! request with the budget named; nothing else notices.
//!
//! ONNX Runtime has no way for a custom allocator to fail: it uses what `Alloc` returns
//! without checking it (a null pointer crashed the process here). A refused allocation
//! therefore gets a placeholder: address space whose pages all map one small shared buffer
//! (`size / 512`, at least 2 MiB), so the operator that asked can write its whole output
//! without the machine's memory being taken, and the run ends after it with an error.
//!
//! The allocator hands memory straight to the system (no arena): blocks of 1 MiB or more
//! are mapped and unmapped with the system calls themselves (glibc's malloc would keep
//! them in its heaps once its adaptive mmap threshold rose), smaller ones come from malloc.
//! What a run needed is returned when the run ends, so a model's memory between requests
//! is its weights, not the peak activations ONNX Runtime's default arena keeps for ever.
//!
//! Not covered: allocations ONNX Runtime's intra-op worker threads make themselves (kernel
//! scratch space, small), CUDA device memory (bounded by the CUDA provider's own
//! `gpu_mem_limit`, set from the same budget), and OpenVINO, which takes no allocator:
//! its inputs are bounded instead (README, "Memory").

use std::alloc::Layout;
use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One instance's inference memory: a limit and what its sessions hold now.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
    /// The size of the last allocation refused, until [`Budget::take_refusal`] reads it.
    refused: AtomicUsize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
        })
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes the instance's sessions hold now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The most they have held at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Take `n` bytes if they fit; otherwise remember the refusal and take nothing.
    fn charge(&self, n: usize) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = match used.checked_add(n) {
                Some(v) if v <= self.limit => v,
                _ => {
                    self.refused.store(n.max(1), Ordering::Relaxed);
                    return false;
                }
            };
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.peak.fetch_max(next, Ordering::Relaxed);
                    return true;
                }
                Err(now) => used = now,
            }
        }
    }

    fn release(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }

    /// The size of an allocation refused since the last call, if any.
    pub fn take_refusal(&self) -> Option<usize> {
        match self.refused.swap(0, Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
    }

    /// Charge what this thread allocates through ONNX Runtime to this budget until the
    /// guard drops.
    pub fn charge_here(self: &Arc<Self>) -> Charging {
        let previous = CURRENT.with(|c| c.replace(Arc::as_ptr(self)));
        Charging {
            _budget: self.clone(),
            previous,
        }
    }

    /// Why a run failed, when this budget refused one of its allocations: the text the
    /// request's error carries.
    pub fn refusal_message(&self, asked: usize) -> String {
        let mib = |b: usize| b as f64 / (1u64 << 20) as f64;
        format!(
            "inference needs more memory than the instance's budget of {:.0} MiB \
             (inference_memory_mb): {:.1} MiB in use, {:.1} MiB more asked for",
            mib(self.limit),
            mib(self.used()),
            mib(asked)
        )
    }
}

/// The limit of the budget this thread charges now, if any (a CUDA session takes it as its
/// device memory limit).
pub fn current_limit() -> Option<usize> {
    let p = CURRENT.with(|c| c.get());
    // SAFETY: a non-null CURRENT is kept alive by this thread's `Charging` guard.
    unsafe { p.as_ref() }.map(Budget::limit)
}

/// The budget this thread charges while it lives (see [`Budget::charge_here`]).
pub struct Charging {
    _budget: Arc<Budget>,
    previous: *const Budget,
}

impl Drop for Charging {
    fn drop(&mut self) {
        let previous = self.previous;
        CURRENT.with(|c| c.set(previous));
    }
}

/// While the guard lives, a refused allocation on this thread also stops the ONNX Runtime
/// run whose options these are (`run` must outlive the guard).
pub fn stop_run_on_refusal(run: *mut ort::sys::OrtRunOptions) -> StopOnRefusal {
    StopOnRefusal(RUN.with(|r| r.replace(run)))
}

/// See [`stop_run_on_refusal`].
pub struct StopOnRefusal(*mut ort::sys::OrtRunOptions);

impl Drop for StopOnRefusal {
    fn drop(&mut self) {
        let previous = self.0;
        RUN.with(|r| r.set(previous));
    }
}

thread_local! {
    /// The budget this thread's ONNX Runtime allocations are charged to (null: none). The
    /// allocator is a C callback ONNX Runtime calls on whatever thread allocates, so the
    /// budget travels with the thread.
    static CURRENT: Cell<*const Budget> = const { Cell::new(std::ptr::null()) };
    /// The options of the run this thread is in, whose terminate flag a refusal sets.
    static RUN: Cell<*mut ort::sys::OrtRunOptions> = const { Cell::new(std::ptr::null_mut()) };
}

/// What precedes every block: its size, the budget it was charged to (an `Arc` kept alive
/// by the block, so a block freed after its instance is gone still finds it), and for a
/// placeholder the length of its mapping (0 for a heap block).
#[repr(C)]
struct Header {
    size: usize,
    budget: *const Budget,
    mapped: usize,
}

/// ONNX Runtime wants 64-byte aligned CPU buffers; the header takes one alignment unit.
const ALIGN: usize = 64;

/// Blocks this large or larger are mapped directly (and unmapped when freed).
const MAP_AT: usize = 1 << 20;

const PAGE: usize = 4096;

/// `size` bytes of fresh anonymous memory after one page whose last `ALIGN` bytes hold the
/// header: the block starts on a page boundary. Null on failure.
fn mapped(size: usize, budget: *const Budget) -> *mut c_void {
    let Some(len) = size.checked_add(PAGE) else {
        return std::ptr::null_mut();
    };
    // SAFETY: a fresh private anonymous mapping, written only within its length.
    unsafe {
        let base = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if base == libc::MAP_FAILED {
            return std::ptr::null_mut();
        }
        // Transparent huge pages where the kernel offers them on request: a fresh block
        // costs a fault per 2 MiB instead of per 4 KiB.
        libc::madvise(base, len, libc::MADV_HUGEPAGE);
        let block = base.cast::<u8>().add(PAGE);
        block.sub(ALIGN).cast::<Header>().write(Header {
            size,
            budget,
            mapped: len,
        });
        block.cast()
    }
}

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(ALIGN)?, ALIGN).ok()
}

/// Allocate `size` bytes charged to this thread's budget; past the budget, stop the run and
/// hand out a placeholder (null only when even that fails).
fn allocate(size: usize) -> *mut c_void {
    let Some(layout) = layout(size) else {
        return std::ptr::null_mut();
    };
    let budget = CURRENT.try_with(|c| c.get()).unwrap_or(std::ptr::null());
    // SAFETY: a non-null CURRENT points to a Budget kept alive by the thread's `Charging`
    // guard; taking a strong count keeps it alive for the block's lifetime.
    let budget = match unsafe { budget.as_ref() } {
        Some(b) if !b.charge(size) => {
            let run = RUN.try_with(|r| r.get()).unwrap_or(std::ptr::null_mut());
            if !run.is_null() {
                // SAFETY: the run's options outlive the `StopOnRefusal` guard that set RUN;
                // setting the flag is what other threads do to cancel a run.
                let _ = unsafe {
                    ort::error::status_to_result((ort::api().RunOptionsSetTerminate)(run))
                };
            }
            return placeholder(size);
        }
        Some(_) => {
            unsafe { Arc::increment_strong_count(budget) };
            budget
        }
        None => budget,
    };
    let block = if size >= MAP_AT {
        mapped(size, budget)
    } else {
        // SAFETY: the layout has a non-zero size (at least ALIGN bytes); `base` is
        // ALIGN-aligned and has room for the header before the block.
        unsafe {
            let base = std::alloc::alloc(layout);
            if !base.is_null() {
                base.cast::<Header>().write(Header {
                    size,
                    budget,
                    mapped: 0,
                });
            }
            base.add(ALIGN * usize::from(!base.is_null())).cast()
        }
    };
    if block.is_null() {
        if let Some(b) = unsafe { budget.as_ref() } {
            b.release(size);
            unsafe { Arc::decrement_strong_count(budget) };
        }
    }
    block
}

/// `size` bytes of address space (after one private page holding the header) whose pages
/// all map the same small shared buffer: writable and readable throughout, committing at
/// most one window of memory.
fn placeholder(size: usize) -> *mut c_void {
    let window = (size / 512).max(2 << 20).next_multiple_of(PAGE);
    let windows = size.div_ceil(window).max(1);
    let Some(len) = windows
        .checked_mul(window)
        .and_then(|n| n.checked_add(PAGE))
    else {
        return std::ptr::null_mut();
    };
    // SAFETY: plain system calls on memory this function maps and owns; every failure
    // unmaps what was mapped and returns null.
    unsafe {
        let fd = libc::memfd_create(c"inference-placeholder".as_ptr(), libc::MFD_CLOEXEC);
        if fd < 0 {
            return std::ptr::null_mut();
        }
        let base = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        let mut ok = base != libc::MAP_FAILED && libc::ftruncate(fd, window as libc::off_t) == 0;
        for k in 0..windows {
            if !ok {
                break;
            }
            let at = base.cast::<u8>().add(PAGE + k * window).cast();
            let shared = libc::PROT_READ | libc::PROT_WRITE;
            let flags = libc::MAP_SHARED | libc::MAP_FIXED;
            ok = libc::mmap(at, window, shared, flags, fd, 0) != libc::MAP_FAILED;
        }
        libc::close(fd);
        if !ok {
            if base != libc::MAP_FAILED {
                libc::munmap(base, len);
            }
            return std::ptr::null_mut();
        }
        let block = base.cast::<u8>().add(PAGE);
        block.sub(ALIGN).cast::<Header>().write(Header {
            size,
            budget: std::ptr::null(),
            mapped: len,
        });
        block.cast()
    }
}

/// Free a block [`allocate`] made, crediting its budget.
///
/// # Safety
/// `p` is null or came from [`allocate`] and was not freed before.
unsafe fn free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    let base = p.cast::<u8>().sub(ALIGN);
    let Header {
        size,
        budget,
        mapped,
    } = base.cast::<Header>().read();
    if let Some(b) = budget.as_ref() {
        b.release(size);
        Arc::decrement_strong_count(budget);
    }
    if mapped != 0 {
        libc::munmap(p.cast::<u8>().sub(PAGE).cast(), mapped);
    } else {
        let layout = layout(size).expect("the layout it was allocated with");
        std::alloc::dealloc(base, layout);
    }
}

mod ffi {
    use std::ffi::c_void;

    use ort::sys::{OrtAllocator, OrtMemoryInfo};

    /// The allocator ONNX Runtime calls: the struct and the memory info it describes itself
    /// with, leaked once (the environment keeps it for the process's life).
    #[repr(C)]
    pub struct Registered {
        pub allocator: OrtAllocator,
        pub info: *const OrtMemoryInfo,
    }

    pub unsafe extern "system" fn alloc(_: *mut OrtAllocator, size: usize) -> *mut c_void {
        super::allocate(size)
    }

    pub unsafe extern "system" fn reserve(_: *const OrtAllocator, size: usize) -> *mut c_void {
        super::allocate(size)
    }

    pub unsafe extern "system" fn free(_: *mut OrtAllocator, p: *mut c_void) {
        super::free(p)
    }

    pub unsafe extern "system" fn info(this: *const OrtAllocator) -> *const OrtMemoryInfo {
        // `allocator` is the first field of the #[repr(C)] `Registered`.
        (*this.cast::<Registered>()).info
    }
}

/// Register the accounting allocator with ONNX Runtime's environment (once per process,
/// after the environment is created). Sessions use it when built with
/// `session.use_env_allocators` ([`crate::nn::onnx`] sets it).
pub fn register_with_onnxruntime() -> anyhow::Result<()> {
    use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
    use ort::AsPointer as _;
    let info = MemoryInfo::new(
        AllocationDevice::CPU,
        0,
        AllocatorType::Device,
        MemoryType::Default,
    )?;
    let registered = Box::leak(Box::new(ffi::Registered {
        allocator: ort::sys::OrtAllocator {
            version: ort::sys::ORT_API_VERSION,
            Alloc: Some(ffi::alloc),
            Free: Some(ffi::free),
            Info: Some(ffi::info),
            Reserve: Some(ffi::reserve),
        },
        info: info.ptr(),
    }));
    // The memory info must outlive the allocator that points at it: both live for ever.
    std::mem::forget(info);
    let env = ort::environment::get_environment()?;
    // SAFETY: a valid environment and an allocator struct that lives for the process.
    let status =
        unsafe { (ort::api().RegisterAllocator)(env.ptr().cast_mut(), &mut registered.allocator) };
    // SAFETY: `status` comes straight from the call above.
    unsafe { ort::error::status_to_result(status) }
        .map_err(|e| anyhow::anyhow!("registering the inference memory allocator: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_the_threads_budget_refuses_past_it_and_credits_frees_anywhere() {
        let b = Budget::new(1000);
        let p = {
            let _c = b.charge_here();
            let p = allocate(600);
            assert!(!p.is_null());
            assert!((p as usize).is_multiple_of(ALIGN));
            // Over the budget: a placeholder, charged nothing.
            let big = 1usize << 30;
            let ph = allocate(big);
            assert!(!ph.is_null());
            assert_eq!(b.take_refusal(), Some(big));
            assert_eq!(b.take_refusal(), None);
            assert_eq!(b.used(), 600);
            // It is writable throughout without taking the memory: its windows alias one
            // shared buffer (RSS counts each mapping of it; the machine's shared memory
            // grows by one window).
            let shmem_kb = || {
                let m = std::fs::read_to_string("/proc/meminfo").unwrap();
                let line = m
                    .lines()
                    .find(|l| l.starts_with("Shmem:"))
                    .unwrap()
                    .to_string();
                line.split_whitespace()
                    .nth(1)
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
            };
            let before = shmem_kb();
            unsafe { std::ptr::write_bytes(ph.cast::<u8>(), 7, big) };
            let after = shmem_kb();
            assert!(after < before + 256 * 1024, "{before} -> {after} kB");
            unsafe { free(ph) };
            p
        };
        assert_eq!((b.used(), b.peak()), (600, 600));
        // Outside the guard nothing is charged; a block freed on another thread still
        // credits the budget it was charged to.
        let q = allocate(5000);
        assert!(!q.is_null());
        let p = p as usize;
        std::thread::spawn(move || unsafe { free(p as *mut c_void) })
            .join()
            .unwrap();
        unsafe { free(q) };
        // Large blocks are mappings of their own, charged the same.
        {
            let _c = b.charge_here();
            let m = allocate(900);
            let big = Budget::new(8 << 20);
            let _d = big.charge_here();
            let l = allocate(4 << 20);
            assert!(!l.is_null() && (l as usize).is_multiple_of(4096));
            unsafe { std::ptr::write_bytes(l.cast::<u8>(), 1, 4 << 20) };
            assert_eq!(big.used(), 4 << 20);
            unsafe { free(l) };
            assert_eq!(big.used(), 0);
            assert_eq!(b.used(), 900);
            unsafe { free(m) };
        }
        assert_eq!(b.used(), 0);
        assert_eq!(
            Arc::strong_count(&b),
            1,
            "blocks release their hold on the budget"
        );
    }

    #[test]
    fn guards_nest() {
        let (a, b) = (Budget::new(100), Budget::new(100));
        let _ga = a.charge_here();
        {
            let _gb = b.charge_here();
            unsafe { free(allocate(10)) };
            assert_eq!(b.peak(), 10);
        }
        let p = allocate(20);
        assert_eq!((a.used(), b.used()), (20, 0));
        unsafe { free(p) };
    }
}
