//! The spool across processes: the lock held by another process, and a
//! real EFBIG from `RLIMIT_FSIZE`. The test binary runs itself as the child
//! (`child_main`, which does nothing unless the parent set its mode).

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::tests::{opts, payload};
use super::*;

const MODE: &str = "OTLP_SINK_SPOOL_CHILD";
const DIR: &str = "OTLP_SINK_SPOOL_CHILD_DIR";

fn child(mode: &str, dir: &Path, configure: impl FnOnce(&mut Command)) -> Child {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args(["--exact", "spool::child_tests::child_main", "--nocapture", "--test-threads=1"])
        .env(MODE, mode)
        .env(DIR, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    configure(&mut cmd);
    cmd.spawn().expect("spawn the child")
}

/// Waits for the child and checks that its test ran and passed.
fn passed(c: Child) -> String {
    let out = c.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "child failed: {stdout}");
    assert!(stdout.contains("1 passed"), "the child's test did not run: {stdout}");
    stdout
}

#[test]
fn child_main() {
    let Ok(mode) = std::env::var(MODE) else { return };
    let dir = std::path::PathBuf::from(std::env::var(DIR).expect("dir"));
    match mode.as_str() {
        "hold-lock" => {
            let (_s, _) = Spool::open(&dir, opts()).expect("open in the child");
            println!("locked");
            std::io::stdout().flush().expect("flush");
            // Hold it until the parent closes our stdin.
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
        "fsize" => fsize_child(&dir),
        other => panic!("unknown child mode {other}"),
    }
}

#[test]
fn a_second_process_cannot_open_a_locked_directory() {
    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path().join("traces");
    let mut c = child("hold-lock", &dir, |_| {});
    // libtest prints its own lines first, and "test <name> ... " before
    // the child's output on the same line.
    let mut out = BufReader::new(c.stdout.take().expect("stdout"));
    let mut line = String::new();
    while !line.contains("locked") {
        line.clear();
        assert!(out.read_line(&mut line).expect("read") > 0, "the child exited before locking");
    }
    let e = Spool::open(&dir, opts()).expect_err("held by the child");
    assert!(matches!(e, SpoolError::Locked { holder: Some(pid), .. } if pid == c.id()), "{e:?}");
    assert!(e.to_string().contains(&format!("process {}", c.id())), "{e}");
    drop(c.stdin.take());
    let status = c.wait().expect("wait");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read");
    assert!(status.success() && rest.contains("1 passed"), "child: {status} {rest}");
    let _ = Spool::open(&dir, opts()).expect("free once the child is gone");
}

/// In the child, under a 10 000-byte file size limit with SIGXFSZ ignored:
/// appends until the limit refuses one, checks that nothing of it stayed,
/// raises the limit (space returns) and appends again.
fn fsize_child(dir: &Path) {
    let (mut s, _) = Spool::open(dir, SpoolOptions { full_policy: FullPolicy::DropNewest, ..opts() }).expect("open");
    let mut ok = 0u64;
    let err = loop {
        match s.append(&payload(ok + 1, 1000), 1) {
            Ok(_) => ok += 1,
            Err(e) => break e,
        }
        assert!(ok < 100, "the file size limit never hit");
    };
    assert!(matches!(err, SpoolError::DiskFull { .. }), "{err:?}");
    assert!(err.to_string().contains("File too large"), "{err}");
    let seg = &s.segments.back().expect("a segment").path;
    let len = std::fs::metadata(seg).expect("md").len();
    assert_eq!(len, (format::HEADER_LEN + ok as usize * (format::FRAME_LEN + 1000)) as u64, "no half record");
    assert_eq!(s.stats().write_failed.records, 1);
    // Space returns: the soft limit goes back up to the hard one.
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid pointer to a local rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim) }, 0);
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: as above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &lim) }, 0);
    for _ in 0..3 {
        s.append(&payload(ok + 1, 1000), 1).expect("append once space returned");
        ok += 1;
    }
    s.close().expect("close");
    println!("appended {ok}");
}

#[test]
fn a_file_size_limit_fails_the_write_cleanly_and_the_spool_recovers() {
    use std::os::unix::process::CommandExt as _;
    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path().join("metrics");
    let c = child("fsize", &dir, |cmd| {
        // SAFETY: setrlimit and signal are async-signal-safe; nothing else
        // runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit { rlim_cur: 10_000, rlim_max: libc::RLIM_INFINITY };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Ignored, so that a write past the limit fails with EFBIG
                // instead of killing the process (an ignored disposition
                // survives exec).
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
    });
    let out = passed(c);
    let (_, after) = out.split_once("appended ").expect("the child's count");
    let ok: u64 = after.split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok()).expect("a number");
    let (mut s, rec) = Spool::open(&dir, opts()).expect("reopen");
    assert_eq!((rec.torn.records, rec.corrupt.records), (0, 0), "{rec:?}");
    assert_eq!(rec.pending.records, ok);
    let got = s.next_unsent(1000).expect("next");
    assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=ok).collect::<Vec<_>>());
    for r in got {
        assert_eq!(r.payload, payload(r.seq, 1000));
    }
}
