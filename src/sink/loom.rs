//! The synchronisation the ring and the wake-up protocol are made of: std's
//! in a normal build, loom's under `RUSTFLAGS="--cfg otlp_sink_loom"`, where the tests
//! in `loom_tests.rs` run them under the model checker.
//!
//! Everything here is a re-export or an `#[inline(always)]` wrapper, so the
//! normal build compiles to what it did before the shim.
//!
//! The cfg is the crate's own, `otlp_sink_loom`, not the usual `loom`
//! (the way crossbeam has `crossbeam_loom`): `RUSTFLAGS` reaches every
//! crate in the build, and under `--cfg loom` tokio leaves out its `net`
//! module, without which hyper-util, tonic and this crate do not compile.

#[cfg(otlp_sink_loom)]
pub(crate) use ::loom::{hint::spin_loop, sync::atomic::AtomicU64, thread::yield_now};
#[cfg(not(otlp_sink_loom))]
pub(crate) use std::{hint::spin_loop, sync::atomic::AtomicU64, thread::yield_now};

/// loom's own cell records every access, and reports one that is not
/// ordered after the conflicting accesses of other threads.
#[cfg(otlp_sink_loom)]
pub(crate) use ::loom::cell::UnsafeCell;

/// std's `UnsafeCell`, with loom's closure-based access: the pointer is only
/// handed to the closure, so under loom each access is one checked event.
#[cfg(not(otlp_sink_loom))]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(otlp_sink_loom))]
impl<T> UnsafeCell<T> {
    /// Reads through the pointer `f` is given.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Writes through the pointer `f` is given.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Where two `SeqCst` accesses to different atomics must keep their order
/// (a store, then a load of another atomic: the "store buffering" pattern
/// of the wake-up protocol), a `SeqCst` fence under loom; nothing otherwise.
///
/// loom models a `SeqCst` load, store or read-modify-write as `AcqRel`
/// (tokio-rs/loom#180): without the single total order of `SeqCst`, it
/// would report a lost wake-up that the real code cannot have. loom does
/// model `SeqCst` fences, and a fence between each side's store and its
/// load gives the same guarantee the `SeqCst` accesses give. The cost of
/// that: loom cannot tell whether those accesses are `SeqCst` at all (see
/// the README's "Model checking").
#[inline(always)]
pub(crate) fn seq_cst_order() {
    #[cfg(otlp_sink_loom)]
    ::loom::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}
