//! The spool's errors: each names the path or the value at fault.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a spool directory was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnsafeReason {
    /// The directory belongs to another user.
    NotOwner {
        /// The directory's owner.
        owner: u32,
        /// This process's effective user id.
        euid: u32,
    },
    /// Users other than the owner may create, rename or delete files in it.
    WritableByOthers,
}

/// An error of the spool's storage layer.
#[non_exhaustive]
#[derive(Debug)]
pub(crate) enum SpoolError {
    /// Another handle, in this process or another one, holds the
    /// directory's lock file.
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The process id the lock file names, when it names one.
        holder: Option<u32>,
    },
    /// The directory is not safe to keep telemetry in.
    UnsafePermissions {
        /// The directory.
        path: PathBuf,
        /// Its permission bits (`st_mode & 0o7777`).
        mode: u32,
        /// What is wrong with it.
        reason: UnsafeReason,
    },
    /// The path exists and is not a directory.
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A file system call failed.
    Io {
        /// What was being done ("append to", "fsync", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The disk (ENOSPC) or the file size limit (EFBIG) refused a record.
    /// Nothing of it was left in the file.
    DiskFull {
        /// The segment the record was for.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The spool holds `max_bytes` already and its policy refuses new records.
    Full {
        /// The bytes the record needed on disk (frame and, for a new
        /// segment, its header).
        needed: u64,
        /// The bytes the spool holds.
        used: u64,
        /// The bound.
        max_bytes: u64,
    },
    /// The record can never fit: it is larger than the spool's bound or the
    /// format's 4 GiB frame limit.
    RecordTooLarge {
        /// The payload's length in bytes.
        len: usize,
        /// The largest payload accepted.
        max: u64,
    },
    /// A segment file whose header this version cannot read. It is left on
    /// disk, untouched.
    UnknownSegment {
        /// The segment file.
        path: PathBuf,
        /// What its header holds instead of a known magic and version.
        found: SegmentHeaderProblem,
    },
    /// An option out of range.
    InvalidOption {
        /// The option's name.
        name: &'static str,
        /// Its value.
        value: u64,
        /// What it must be.
        expected: &'static str,
    },
}

/// What is wrong with an unreadable segment's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SegmentHeaderProblem {
    /// The file does not start with the spool's magic bytes.
    Magic([u8; 8]),
    /// The magic is right; the format version is not one this build reads.
    Version(u32),
    /// The header's first sequence number differs from the file's name.
    FirstSeq {
        /// In the header.
        header: u64,
        /// In the file name.
        name: u64,
    },
}

impl SpoolError {
    /// An `Io` error, or `DiskFull` when the cause is ENOSPC or EFBIG.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        if is_disk_full(&source) {
            SpoolError::DiskFull { path, source }
        } else {
            SpoolError::Io { op, path, source }
        }
    }
}

/// ENOSPC, EFBIG (a file size limit: `RLIMIT_FSIZE`, the file system's
/// largest file) and EDQUOT: a write the disk has no room for.
pub(crate) fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::FileTooLarge | io::ErrorKind::QuotaExceeded)
}

impl fmt::Display for SpoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpoolError::Locked { path, holder: Some(pid) } => write!(
                f,
                "spool directory {} is in use: its lock file {} is held (by process {pid}, per the file); one process per spool directory",
                path.parent().unwrap_or(path).display(),
                path.display()
            ),
            SpoolError::Locked { path, holder: None } => write!(
                f,
                "spool directory {} is in use: its lock file {} is held by another handle; one process per spool directory",
                path.parent().unwrap_or(path).display(),
                path.display()
            ),
            SpoolError::UnsafePermissions { path, mode, reason: UnsafeReason::NotOwner { owner, euid } } => write!(
                f,
                "spool directory {} (mode {mode:04o}) belongs to uid {owner}, not to this process's uid {euid}: refused",
                path.display()
            ),
            SpoolError::UnsafePermissions { path, mode, reason: UnsafeReason::WritableByOthers } => write!(
                f,
                "spool directory {} has mode {mode:04o}: writable by group or others, refused (use a directory of your own, mode 0700)",
                path.display()
            ),
            SpoolError::NotADirectory { path } => write!(f, "spool path {} is not a directory", path.display()),
            SpoolError::Io { op, path, source } => write!(f, "spool: cannot {op} {}: {source}", path.display()),
            SpoolError::DiskFull { path, source } => {
                write!(f, "spool: no room for the record in {} ({source}); nothing of it was kept", path.display())
            }
            SpoolError::Full { needed, used, max_bytes } => write!(
                f,
                "spool full: a record of {needed} bytes does not fit, {used} of {max_bytes} bytes are used"
            ),
            SpoolError::RecordTooLarge { len, max } => {
                write!(f, "spool: a record of {len} bytes can never fit (at most {max} bytes)")
            }
            SpoolError::UnknownSegment { path, found } => match found {
                SegmentHeaderProblem::Magic(m) => write!(
                    f,
                    "spool segment {} is not a spool segment (magic {:02x?}): left alone, not read",
                    path.display(),
                    m
                ),
                SegmentHeaderProblem::Version(v) => write!(
                    f,
                    "spool segment {} has format version {v}, this build reads version {}: left alone, not read",
                    path.display(),
                    super::format::VERSION
                ),
                SegmentHeaderProblem::FirstSeq { header, name } => write!(
                    f,
                    "spool segment {}: its header starts at sequence {header}, its name at {name}: left alone, not read",
                    path.display()
                ),
            },
            SpoolError::InvalidOption { name, value, expected } => {
                write!(f, "spool option {name} = {value}: must be {expected}")
            }
        }
    }
}

impl std::error::Error for SpoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpoolError::Io { source, .. } | SpoolError::DiskFull { source, .. } => Some(source),
            _ => None,
        }
    }
}
