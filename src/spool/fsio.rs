//! The spool's file system calls: its directory (created 0700, checked),
//! its lock, its files (created 0600), the segment writer behind a small
//! trait (the seam where tests inject ENOSPC and short writes), and the
//! cursor file's atomic replacement.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use super::error::SpoolError;
#[cfg(unix)]
use super::error::UnsafeReason;
use super::format;

/// The lock file's name in a spool directory.
pub(crate) const LOCK_FILE: &str = "lock";
/// The cursor file's name.
pub(crate) const CURSOR_FILE: &str = "cursor";
/// The cursor's temporary file, renamed over `cursor`.
pub(crate) const CURSOR_TMP: &str = "cursor.tmp";
/// A segment's file name suffix.
pub(crate) const SEGMENT_SUFFIX: &str = ".seg";

/// The segment file named for its first sequence number.
pub(crate) fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SEGMENT_SUFFIX}")
}

/// The first sequence number a segment file's name carries.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// Creates `dir` (and missing parents) with mode 0700 when missing, then
/// refuses it unless it is a directory owned by this process's effective
/// user and writable by nobody else.
///
/// # Errors
///
/// [`SpoolError::UnsafePermissions`] naming the path and its mode,
/// [`SpoolError::NotADirectory`], or [`SpoolError::Io`].
pub(crate) fn prepare_dir(dir: &Path) -> Result<(), SpoolError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| SpoolError::io("create directory", dir, e))?;
    check_dir(dir)
}

/// Refuses a directory that another user owns or can write to: such a user
/// could plant, replace or delete segments (the .NET disk retry's default
/// in a shared temporary directory is the example not to follow).
fn check_dir(dir: &Path) -> Result<(), SpoolError> {
    let md = fs::metadata(dir).map_err(|e| SpoolError::io("read the metadata of", dir, e))?;
    if !md.is_dir() {
        return Err(SpoolError::NotADirectory { path: dir.to_owned() });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let mode = md.mode() & 0o7777;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if md.uid() != euid {
            return Err(SpoolError::UnsafePermissions {
                path: dir.to_owned(),
                mode,
                reason: UnsafeReason::NotOwner { owner: md.uid(), euid },
            });
        }
        if mode & 0o022 != 0 {
            return Err(SpoolError::UnsafePermissions {
                path: dir.to_owned(),
                mode,
                reason: UnsafeReason::WritableByOthers,
            });
        }
    }
    Ok(())
}

/// Options for a file of the spool: mode 0600 when created.
fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o
}

/// Takes the directory's exclusive lock (an advisory `flock` on Unix, a
/// `LockFileEx` on Windows, through `File::try_lock`), for as long as the
/// returned file is open. A second holder, in this process or another,
/// gets [`SpoolError::Locked`]. The lock file records the holder's process
/// id, for that error's message.
pub(crate) fn lock(dir: &Path) -> Result<File, SpoolError> {
    let path = dir.join(LOCK_FILE);
    let mut file = options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| SpoolError::io("open the lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut s = String::new();
            let holder = file.read_to_string(&mut s).ok().and_then(|_| s.trim().parse().ok());
            return Err(SpoolError::Locked { path, holder });
        }
        Err(fs::TryLockError::Error(e)) => return Err(SpoolError::io("lock", &path, e)),
    }
    // Best effort: the pid only serves the next holder's error message.
    let _ = file.set_len(0).and_then(|()| writeln!(&file, "{}", std::process::id()));
    Ok(file)
}

/// Fsyncs a directory, so that files created, renamed or removed in it
/// stay so after a power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    #[cfg(unix)]
    {
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| SpoolError::io("fsync directory", dir, e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The append side of a segment file: the seam where the tests inject
/// disk-full errors and short writes.
pub(crate) trait SegmentWrite: Send + std::fmt::Debug {
    /// Writes at the end of the file; may write less than `buf`.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Truncates the file to `len` bytes; the next write goes there.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Flushes the file's data to the disk.
    fn sync_data(&mut self) -> io::Result<()>;
}

/// Makes a segment writer from a segment file opened for appending.
pub(crate) type WriterFactory = fn(File) -> Box<dyn SegmentWrite>;

/// The real segment writer.
pub(crate) fn std_writer(file: File) -> Box<dyn SegmentWrite> {
    Box::new(StdWriter(file))
}

#[derive(Debug)]
struct StdWriter(File);

impl SegmentWrite for StdWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

/// Writes all of `buf`, retrying short writes and EINTR.
pub(crate) fn write_all(w: &mut dyn SegmentWrite, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match w.write(buf) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote 0 bytes")),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Creates a new segment file (never one that exists) and writes its
/// header, returning its writer. A failure removes the file.
pub(crate) fn create_segment(
    path: &Path,
    header: &[u8],
    factory: WriterFactory,
) -> Result<Box<dyn SegmentWrite>, SpoolError> {
    let file =
        options().append(true).create_new(true).open(path).map_err(|e| SpoolError::io("create segment", path, e))?;
    let mut w = factory(file);
    if let Err(e) = write_all(w.as_mut(), header) {
        drop(w);
        let _ = fs::remove_file(path);
        return Err(SpoolError::io("write the header of", path, e));
    }
    Ok(w)
}

/// Opens a segment for reading.
pub(crate) fn open_read(path: &Path) -> Result<File, SpoolError> {
    File::open(path).map_err(|e| SpoolError::io("open segment", path, e))
}

/// Reads `len` bytes at `offset`.
pub(crate) fn read_at(file: &File, path: &Path, offset: u64, len: usize) -> Result<Vec<u8>, SpoolError> {
    let mut buf = vec![0u8; len];
    #[cfg(unix)]
    std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, offset)
        .map_err(|e| SpoolError::io("read segment", path, e))?;
    #[cfg(not(unix))]
    {
        use std::io::{Read as _, Seek as _};
        let mut f = file;
        f.seek(io::SeekFrom::Start(offset))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|e| SpoolError::io("read segment", path, e))?;
    }
    Ok(buf)
}

/// What the cursor file held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CursorRead {
    /// The last settled sequence number.
    Found(u64),
    /// No cursor file.
    Missing,
    /// A cursor file that does not decode (wrong length, magic, version or checksum).
    Damaged,
}

/// Reads the cursor file: what it says, and the last sequence number it
/// says was handed out (0 when it cannot say).
pub(crate) fn read_cursor(dir: &Path) -> Result<(CursorRead, u64), SpoolError> {
    let path = dir.join(CURSOR_FILE);
    match fs::read(&path) {
        Ok(b) => Ok(format::decode_cursor(&b)
            .map_or((CursorRead::Damaged, 0), |(settled, sent)| (CursorRead::Found(settled), sent))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((CursorRead::Missing, 0)),
        Err(e) => Err(SpoolError::io("read the cursor", path, e)),
    }
}

/// Replaces the cursor file atomically: a temporary file written and
/// fsynced, renamed over it, and the directory fsynced. A crash leaves
/// either the old cursor or the new one.
pub(crate) fn write_cursor(dir: &Path, settled: u64, sent: u64) -> Result<(), SpoolError> {
    let tmp = dir.join(CURSOR_TMP);
    let path = dir.join(CURSOR_FILE);
    let write = || -> io::Result<()> {
        let mut f = options().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(&format::encode_cursor(settled, sent))?;
        f.sync_all()
    };
    write().map_err(|e| SpoolError::io("write the cursor", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| SpoolError::io("rename the cursor to", &path, e))?;
    sync_dir(dir)
}

/// Removes a file, counting a missing one as removed.
pub(crate) fn remove(path: &Path) -> Result<(), SpoolError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SpoolError::io("remove", path, e)),
    }
}

/// The segment files of a directory, by first sequence number.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SpoolError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| SpoolError::io("list directory", dir, e))? {
        let entry = entry.map_err(|e| SpoolError::io("list directory", dir, e))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_segment_name) {
            out.push((seq, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_sort_by_sequence_and_parse_back() {
        assert_eq!(segment_name(42), "00000000000000000042.seg");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("42.seg"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.seg"), None);
        assert_eq!(parse_segment_name("00000000000000000042.tmp"), None);
        assert!(segment_name(9) < segment_name(10));
    }
}
