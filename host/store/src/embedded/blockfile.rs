//! Append-only block files: one per partition, holding the compressed blocks that sled indexes.
//!
//! sled 0.34 keeps every large value it writes in memory, so the blocks live here instead and
//! the `p{p}.blk` tree holds a [`BlockRef`] per block: offset (u64 LE) ++ length (u32 LE) ++
//! FNV-1a 64 of the bytes (u64 LE). A reference that points past the end of the file or at
//! bytes whose checksum differs (a crash between the index and the file reaching the disk, or
//! damage) is reported as [`StoreError::Corrupt`] naming the file and offset.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::{StoreError, StoreResult};

/// Length of an encoded [`BlockRef`].
pub(super) const REF_BYTES: usize = 20;

/// Where a block lives in its partition's block file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BlockRef {
    pub offset: u64,
    pub len: u32,
    pub checksum: u64,
}

impl BlockRef {
    pub fn encode(&self) -> [u8; REF_BYTES] {
        let mut out = [0u8; REF_BYTES];
        out[..8].copy_from_slice(&self.offset.to_le_bytes());
        out[8..12].copy_from_slice(&self.len.to_le_bytes());
        out[12..].copy_from_slice(&self.checksum.to_le_bytes());
        out
    }

    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != REF_BYTES {
            return None;
        }
        Some(BlockRef {
            offset: u64::from_le_bytes(b[..8].try_into().ok()?),
            len: u32::from_le_bytes(b[8..12].try_into().ok()?),
            checksum: u64::from_le_bytes(b[12..].try_into().ok()?),
        })
    }
}

/// FNV-1a 64 of `bytes`.
pub(super) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The append handle and the file length it writes at.
struct Appender {
    file: File,
    len: u64,
}

/// One partition's block file.
pub(super) struct BlockFile {
    path: PathBuf,
    read: Arc<File>,
    append: Mutex<Appender>,
    /// Set by an append, cleared just before the file is synced.
    dirty: AtomicBool,
}

fn io_at(path: &Path, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("cannot {what} block file {}: {e}", path.display()))
}

impl BlockFile {
    /// Opens (creating if missing) the block file at `path`.
    pub fn open(path: PathBuf) -> StoreResult<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_at(&path, "open", e))?;
        let len = file
            .metadata()
            .map_err(|e| io_at(&path, "read the length of", e))?
            .len();
        let read = File::open(&path).map_err(|e| io_at(&path, "open", e))?;
        Ok(BlockFile {
            path,
            read: Arc::new(read),
            append: Mutex::new(Appender { file, len }),
            dirty: AtomicBool::new(false),
        })
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Current length of the file in bytes.
    pub fn len(&self) -> u64 {
        self.append.lock().len
    }

    /// Appends `bytes`; returns where they went and whether the file was clean before (so the
    /// caller registers it for the next sync).
    pub fn append(&self, bytes: &[u8]) -> StoreResult<(BlockRef, bool)> {
        let len = u32::try_from(bytes.len()).map_err(|_| {
            StoreError::Io(format!(
                "block of {} bytes is too large for block file {}",
                bytes.len(),
                self.path.display()
            ))
        })?;
        let mut a = self.append.lock();
        let offset = a.len;
        if let Err(e) = a.file.write_all(bytes) {
            // A partial write leaves unindexed bytes; later appends go after them.
            if let Ok(m) = a.file.metadata() {
                a.len = m.len();
            }
            return Err(io_at(&self.path, "append to", e));
        }
        a.len += u64::from(len);
        drop(a);
        let was_dirty = self.dirty.swap(true, Ordering::AcqRel);
        Ok((
            BlockRef {
                offset,
                len,
                checksum: fnv1a64(bytes),
            },
            !was_dirty,
        ))
    }

    /// Makes every byte appended so far durable.
    pub fn sync(&self) -> StoreResult<()> {
        self.dirty.store(false, Ordering::Release);
        let file = self.append.lock().file.try_clone();
        file.and_then(|f| f.sync_data())
            .map_err(|e| io_at(&self.path, "sync", e))
    }

    /// The bytes `r` points at, checked against its length and checksum.
    pub fn read(&self, r: BlockRef) -> StoreResult<Vec<u8>> {
        let corrupt = |detail: String| StoreError::Corrupt {
            location: format!("block file {}, offset {}", self.path.display(), r.offset),
            detail,
        };
        let mut buf = vec![0u8; r.len as usize];
        let mut done = 0usize;
        while done < buf.len() {
            let at = r.offset.saturating_add(done as u64);
            match read_at(&self.read, &mut buf[done..], at) {
                Ok(0) => {
                    return Err(corrupt(format!(
                        "block of {} bytes ends past the end of the file ({} bytes read)",
                        r.len, done
                    )))
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_at(&self.path, "read", e)),
            }
        }
        let sum = fnv1a64(&buf);
        if sum != r.checksum {
            return Err(corrupt(format!(
                "checksum {sum:016x} of {} bytes, expected {:016x}",
                r.len, r.checksum
            )));
        }
        Ok(buf)
    }
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(f, buf, offset)
}

#[cfg(windows)]
fn read_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(f, buf, offset)
}

/// Block files appended to since their last sync; `sync_all` syncs them.
#[derive(Default)]
pub(super) struct DirtyFiles {
    files: Mutex<Vec<Arc<BlockFile>>>,
    /// Held across a whole `sync_all`, so that a second caller returns only after the files the
    /// first one took are synced too.
    syncing: Mutex<()>,
}

impl DirtyFiles {
    pub fn add(&self, f: Arc<BlockFile>) {
        self.files.lock().push(f);
    }

    /// Syncs every registered file; all are attempted, the first error is returned.
    pub fn sync_all(&self) -> StoreResult<()> {
        let _guard = self.syncing.lock();
        let files = std::mem::take(&mut *self.files.lock());
        let mut first = Ok(());
        for f in files {
            if let Err(e) = f.sync() {
                tracing::warn!(error = %e, "block file sync failed");
                if first.is_ok() {
                    // Keep it registered so the next sync retries it.
                    f.dirty.store(true, Ordering::Release);
                    self.files.lock().push(f.clone());
                    first = Err(e);
                }
            }
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn refs_round_trip_and_reject_other_lengths() {
        let r = BlockRef {
            offset: 1 << 40,
            len: 77,
            checksum: 0x0123_4567_89ab_cdef,
        };
        assert_eq!(BlockRef::decode(&r.encode()), Some(r));
        assert_eq!(BlockRef::decode(&r.encode()[..19]), None);
        assert_eq!(BlockRef::decode(&[0u8; 21]), None);
    }

    #[test]
    fn appends_read_back_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p1.blk");
        let f = BlockFile::open(path.clone()).unwrap();
        let (a, first) = f.append(b"hello").unwrap();
        let (b, second) = f.append(b"world!").unwrap();
        assert_eq!((a.offset, a.len, first), (0, 5, true));
        assert_eq!((b.offset, b.len, second), (5, 6, false));
        f.sync().unwrap();
        assert_eq!(f.read(b).unwrap(), b"world!");
        assert_eq!(f.len(), 11);
        // Reopened, appends continue at the end.
        drop(f);
        let f = BlockFile::open(path.clone()).unwrap();
        assert_eq!(f.append(b"x").unwrap().0.offset, 11);
        assert_eq!(f.read(a).unwrap(), b"hello");
        // Past the end (a torn write after a crash).
        let past = BlockRef { offset: 10, ..b };
        assert_eq!(
            f.read(past).unwrap_err().to_string(),
            format!(
                "stored data is corrupt at block file {}, offset 10: block of 6 bytes ends past the end of the file (2 bytes read)",
                path.display()
            )
        );
        // Damaged bytes.
        let wrong = BlockRef { checksum: 1, ..a };
        assert_eq!(
            f.read(wrong).unwrap_err().to_string(),
            format!(
                "stored data is corrupt at block file {}, offset 0: checksum {:016x} of 5 bytes, expected 0000000000000001",
                path.display(),
                fnv1a64(b"hello")
            )
        );
    }

    #[test]
    fn dirty_files_are_synced_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = Arc::new(BlockFile::open(dir.path().join("p2.blk")).unwrap());
        let dirty = DirtyFiles::default();
        let (_, fresh) = f.append(b"abc").unwrap();
        assert!(fresh);
        dirty.add(f.clone());
        dirty.sync_all().unwrap();
        assert!(dirty.files.lock().is_empty());
        assert!(!f.dirty.load(Ordering::Acquire));
        let (_, fresh) = f.append(b"def").unwrap();
        assert!(fresh, "an append after a sync registers the file again");
    }
}
