//! CPU pinning for workload 1's pinned rounds: this whole process on one
//! CPU, the collector (every thread of it) on another, and the affinity
//! each had restored afterwards.
//!
//! `sched_setaffinity` acts on one thread, so a process is pinned by setting
//! each of its threads (`/proc/PID/task/*`); threads created later inherit
//! their creator's mask, so they follow.

use std::io;

/// A CPU set, as `sched_{get,set}affinity` take it.
#[derive(Clone, Copy)]
pub struct CpuSet(libc::cpu_set_t);

impl CpuSet {
    /// The set of one CPU.
    pub fn one(cpu: usize) -> CpuSet {
        // SAFETY: cpu_set_t is plain data; all zeroes is the empty set, and
        // CPU_SET bounds-checks `cpu` against the set's size.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            CpuSet(set)
        }
    }

    /// The CPUs in the set, in increasing order.
    pub fn cpus(&self) -> Vec<usize> {
        let bits = 8 * std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: CPU_ISSET bounds-checks and only reads the set.
        (0..bits).filter(|&c| unsafe { libc::CPU_ISSET(c, &self.0) }).collect()
    }

    /// The affinity of thread (or process) `tid`; 0 is the calling thread.
    pub fn of(tid: libc::pid_t) -> io::Result<CpuSet> {
        // SAFETY: the kernel writes at most size_of::<cpu_set_t>() bytes into `set`.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(CpuSet(set))
        }
    }

    /// Sets thread `tid`'s affinity to this set.
    fn apply(&self, tid: libc::pid_t) -> io::Result<()> {
        // SAFETY: the kernel only reads the set.
        if unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &self.0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The thread ids of process `pid` ("self" for this one).
fn tasks(pid: &str) -> io::Result<Vec<libc::pid_t>> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task"))?;
    Ok(dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
}

/// Sets every thread of process `pid` ("self" or a number) to `set`. A
/// thread created while the list is walked inherits either the old mask or
/// the new one, so the walk repeats until a pass finds every thread already
/// on `set`. Returns the number of threads set. A thread that exited
/// between the listing and the call (ESRCH) is skipped.
pub fn pin_process(pid: &str, set: &CpuSet) -> io::Result<usize> {
    let want = set.cpus();
    let mut pinned = 0;
    for _ in 0..10 {
        let mut changed = 0;
        let all = tasks(pid)?;
        for &tid in &all {
            match CpuSet::of(tid) {
                Ok(current) if current.cpus() == want => continue,
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => continue,
                _ => {}
            }
            match set.apply(tid) {
                Ok(()) => changed += 1,
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => return Err(io::Error::new(e.kind(), format!("sched_setaffinity({tid} of {pid}): {e}"))),
            }
        }
        pinned = all.len();
        if changed == 0 {
            return Ok(pinned);
        }
    }
    Ok(pinned)
}

/// This process and the collector's, pinned one CPU each, until dropped:
/// then both get back the affinity they had.
pub struct Pinned {
    app_was: CpuSet,
    collector: String,
    collector_was: CpuSet,
}

impl Pinned {
    /// Pins every thread of this process on `app` and every thread of
    /// process `collector` on `collector_cpu`. Returns the guard and the
    /// numbers of threads pinned (this process's, the collector's).
    pub fn new(app: usize, collector: u32, collector_cpu: usize) -> io::Result<(Pinned, usize, usize)> {
        let app_was = CpuSet::of(0)?;
        let collector_was = CpuSet::of(collector as libc::pid_t)?;
        let collector = collector.to_string();
        let guard = Pinned { app_was, collector: collector.clone(), collector_was };
        let n_collector = pin_process(&collector, &CpuSet::one(collector_cpu))?;
        let n_app = pin_process("self", &CpuSet::one(app))?;
        Ok((guard, n_app, n_collector))
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Err(e) = pin_process("self", &self.app_was) {
            eprintln!("[vs_official] restoring this process's CPU affinity failed: {e}");
        }
        if let Err(e) = pin_process(&self.collector, &self.collector_was) {
            eprintln!("[vs_official] restoring the collector's CPU affinity failed: {e}");
        }
    }
}

/// The first two CPUs this process may run on, if it may run on two.
pub fn two_cpus() -> Option<(usize, usize)> {
    let cpus = CpuSet::of(0).ok()?.cpus();
    match cpus[..] {
        [a, b, ..] => Some((a, b)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threads_on(pid: &str) -> Vec<Vec<usize>> {
        tasks(pid).unwrap().into_iter().map(|tid| CpuSet::of(tid).unwrap().cpus()).collect()
    }

    #[test]
    fn pinned_moves_every_thread_of_both_processes_and_restores_them() {
        let all = CpuSet::of(0).unwrap().cpus();
        let (app, other) = two_cpus().unwrap_or((all[0], all[0]));
        let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("sleep");
        let pid = child.id();
        // A thread that exists before the pinning, and one created during it.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let waiter = std::thread::spawn(move || rx.recv().ok());
        let (guard, n_app, n_child) = Pinned::new(app, pid, other).expect("pinned");
        assert!(n_app >= 2 && n_child >= 1, "{n_app} {n_child}");
        assert!(threads_on("self").iter().all(|c| c == &[app]), "{:?}", threads_on("self"));
        assert!(threads_on(&pid.to_string()).iter().all(|c| c == &[other]));
        let born = std::thread::spawn(|| CpuSet::of(0).unwrap().cpus()).join().unwrap();
        assert_eq!(born, [app], "a thread created while pinned inherits the pin");
        drop(guard);
        assert!(threads_on("self").iter().all(|c| c == &all), "{:?}", threads_on("self"));
        assert!(threads_on(&pid.to_string()).iter().all(|c| c == &all));
        tx.send(()).unwrap();
        waiter.join().unwrap();
        child.kill().ok();
        child.wait().ok();
    }
}
