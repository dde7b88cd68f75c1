//! Append-only partition files: one block file and one index file per partition, holding the
//! compressed blocks and the large index values (trace-id lists, service summaries) that sled
//! points at.
//!
//! sled 0.34 keeps every large value it writes in memory (a log message over a quarter of its
//! segment, such as a tree node holding a few large values, becomes a blob that stays
//! resident), so those bytes live here instead and sled holds a [`BlockRef`] per value: offset
//! (u64 LE) ++ length (u32 LE) ++ XXH64 (seed 0) of the bytes (u64 LE; layout 4 used
//! byte-at-a-time FNV-1a, which was a quarter to a third of a search's CPU). A reference that
//! points past the end of the file or at bytes whose checksum differs (a crash between the
//! index and the file reaching the disk, or damage) is reported as [`StoreError::Corrupt`]
//! naming the file and offset.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::{StoreError, StoreResult};

/// Length of an encoded [`BlockRef`].
pub(super) const REF_BYTES: usize = 20;

/// Where a block (or an index value) lives in its partition's file.
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

const P1: u64 = 0x9e37_79b1_85eb_ca87;
const P2: u64 = 0xc2b2_ae3d_27d4_eb4f;
const P3: u64 = 0x1656_67b1_9e37_79f9;
const P4: u64 = 0x85eb_ca77_c2b2_ae63;
const P5: u64 = 0x27d4_eb2f_1656_67c5;

fn le64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

fn round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

fn merge_round(acc: u64, lane: u64) -> u64 {
    (acc ^ round(0, lane)).wrapping_mul(P1).wrapping_add(P4)
}

/// XXH64 of `bytes` with seed 0: four 8-byte lanes per 32-byte stripe, so it runs at memory
/// speed instead of one multiply per byte. Also the checksum of `spoor-objstore`'s aggregate
/// objects, so the project has one.
pub fn xxh64(bytes: &[u8]) -> u64 {
    let len = bytes.len() as u64;
    let mut rest = bytes;
    let mut h = if rest.len() >= 32 {
        let mut v = [P1.wrapping_add(P2), P2, 0, 0u64.wrapping_sub(P1)];
        let mut stripes = rest.chunks_exact(32);
        for s in &mut stripes {
            v[0] = round(v[0], le64(&s[..8]));
            v[1] = round(v[1], le64(&s[8..16]));
            v[2] = round(v[2], le64(&s[16..24]));
            v[3] = round(v[3], le64(&s[24..32]));
        }
        rest = stripes.remainder();
        let mut h = v[0]
            .rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18));
        for lane in v {
            h = merge_round(h, lane);
        }
        h
    } else {
        P5
    };
    h = h.wrapping_add(len);
    let mut words = rest.chunks_exact(8);
    for w in &mut words {
        h = (h ^ round(0, le64(w)))
            .rotate_left(27)
            .wrapping_mul(P1)
            .wrapping_add(P4);
    }
    rest = words.remainder();
    if rest.len() >= 4 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&rest[..4]);
        h = (h ^ u64::from(u32::from_le_bytes(w)).wrapping_mul(P1))
            .rotate_left(23)
            .wrapping_mul(P2)
            .wrapping_add(P3);
        rest = &rest[4..];
    }
    for b in rest {
        h = (h ^ u64::from(*b).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

/// The append handle and the file length it writes at.
struct Appender {
    file: File,
    len: u64,
}

/// What a partition file holds; names it in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FileKind {
    /// `blocks/p{p}.blk`: compressed blocks.
    Blocks,
    /// `blocks/p{p}.idx`: block directories and service summaries.
    Index,
}

impl FileKind {
    fn file(self) -> &'static str {
        match self {
            FileKind::Blocks => "block file",
            FileKind::Index => "index file",
        }
    }

    fn item(self) -> &'static str {
        match self {
            FileKind::Blocks => "block",
            FileKind::Index => "index entry",
        }
    }
}

/// One partition's block or index file.
pub(super) struct BlockFile {
    path: PathBuf,
    kind: FileKind,
    read: Arc<File>,
    append: Mutex<Appender>,
    /// Set by an append, cleared just before the file is synced.
    dirty: AtomicBool,
}

fn io_at(kind: FileKind, path: &Path, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Io(format!(
        "cannot {what} {} {}: {e}",
        kind.file(),
        path.display()
    ))
}

impl BlockFile {
    /// Opens (creating if missing) the file of `kind` at `path`.
    pub fn open(path: PathBuf, kind: FileKind) -> StoreResult<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_at(kind, &path, "open", e))?;
        let len = file
            .metadata()
            .map_err(|e| io_at(kind, &path, "read the length of", e))?
            .len();
        let read = File::open(&path).map_err(|e| io_at(kind, &path, "open", e))?;
        Ok(BlockFile {
            path,
            kind,
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
    /// caller registers it for the next sync). (The store appends frames with `append_parts`.)
    #[cfg(test)]
    pub fn append(&self, bytes: &[u8]) -> StoreResult<(BlockRef, bool)> {
        let (refs, fresh) = self.append_parts(&[bytes])?;
        match refs.first() {
            Some(r) => Ok((*r, fresh)),
            None => Err(StoreError::Io(format!(
                "append to {} {} returned no reference",
                self.kind.file(),
                self.path.display()
            ))),
        }
    }

    /// Appends `parts` back to back with one write; returns where each went (each with its own
    /// checksum) and whether the file was clean before.
    pub fn append_parts(&self, parts: &[&[u8]]) -> StoreResult<(Vec<BlockRef>, bool)> {
        let mut refs = Vec::with_capacity(parts.len());
        let mut at = 0u64;
        for part in parts {
            let len = u32::try_from(part.len()).map_err(|_| {
                StoreError::Io(format!(
                    "{} of {} bytes is too large for {} {}",
                    self.kind.item(),
                    part.len(),
                    self.kind.file(),
                    self.path.display()
                ))
            })?;
            refs.push(BlockRef {
                offset: at,
                len,
                checksum: xxh64(part),
            });
            at += u64::from(len);
        }
        let joined;
        let bytes: &[u8] = match parts {
            [one] => one,
            _ => {
                joined = parts.concat();
                &joined
            }
        };
        let mut a = self.append.lock();
        let offset = a.len;
        if let Err(e) = a.file.write_all(bytes) {
            // A partial write leaves unindexed bytes; later appends go after them.
            if let Ok(m) = a.file.metadata() {
                a.len = m.len();
            }
            return Err(io_at(self.kind, &self.path, "append to", e));
        }
        a.len += at;
        drop(a);
        for r in &mut refs {
            r.offset += offset;
        }
        let was_dirty = self.dirty.swap(true, Ordering::AcqRel);
        Ok((refs, !was_dirty))
    }

    /// Makes every byte appended so far durable.
    pub fn sync(&self) -> StoreResult<()> {
        self.dirty.store(false, Ordering::Release);
        let file = self.append.lock().file.try_clone();
        file.and_then(|f| f.sync_data())
            .map_err(|e| io_at(self.kind, &self.path, "sync", e))
    }

    /// The bytes `r` points at, checked against its length and checksum.
    pub fn read(&self, r: BlockRef) -> StoreResult<Vec<u8>> {
        let corrupt = |detail: String| StoreError::Corrupt {
            location: format!(
                "{} {}, offset {}",
                self.kind.file(),
                self.path.display(),
                r.offset
            ),
            detail,
        };
        let mut buf = vec![0u8; r.len as usize];
        let mut done = 0usize;
        while done < buf.len() {
            let at = r.offset.saturating_add(done as u64);
            match read_at(&self.read, &mut buf[done..], at) {
                Ok(0) => {
                    return Err(corrupt(format!(
                        "{} of {} bytes ends past the end of the file ({} bytes read)",
                        self.kind.item(),
                        r.len,
                        done
                    )))
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_at(self.kind, &self.path, "read", e)),
            }
        }
        let sum = xxh64(&buf);
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

/// Partition files appended to since their last sync; `sync_all` syncs them.
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

    /// How many files wait for the next sync.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.files.lock().len()
    }

    /// Syncs every registered file; all are attempted, the first error is returned.
    pub fn sync_all(&self) -> StoreResult<()> {
        let _guard = self.syncing.lock();
        let files = std::mem::take(&mut *self.files.lock());
        let mut first = Ok(());
        for f in files {
            if let Err(e) = f.sync() {
                tracing::warn!(error = %e, "partition file sync failed");
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
    fn xxh64_matches_reference_values() {
        // Values of the reference implementation (xxhsum -H64), covering every tail path.
        assert_eq!(xxh64(b""), 0xef46_db37_51d8_e999);
        assert_eq!(xxh64(b"a"), 0xd24e_c4f1_a98c_6e5b);
        assert_eq!(xxh64(b"abc"), 0x44bc_2cf5_ad77_0999);
        assert_eq!(
            xxh64(b"Nobody inspects the spammish repetition"),
            0xfbce_a83c_8a37_8bf1
        );
        let long: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        assert_ne!(xxh64(&long), xxh64(&long[..999]));
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
        let f = BlockFile::open(path.clone(), FileKind::Blocks).unwrap();
        let (a, first) = f.append(b"hello").unwrap();
        let (b, second) = f.append(b"world!").unwrap();
        assert_eq!((a.offset, a.len, first), (0, 5, true));
        assert_eq!((b.offset, b.len, second), (5, 6, false));
        f.sync().unwrap();
        assert_eq!(f.read(b).unwrap(), b"world!");
        assert_eq!(f.len(), 11);
        // Reopened, appends continue at the end.
        drop(f);
        let f = BlockFile::open(path.clone(), FileKind::Blocks).unwrap();
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
                xxh64(b"hello")
            )
        );
    }

    #[test]
    fn parts_get_their_own_references_and_index_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p1.idx");
        let f = BlockFile::open(path.clone(), FileKind::Index).unwrap();
        f.append(b"head").unwrap();
        let (refs, fresh) = f.append_parts(&[b"dir", b"", b"summaries"]).unwrap();
        assert!(!fresh, "already dirty");
        assert_eq!(
            refs.iter().map(|r| (r.offset, r.len)).collect::<Vec<_>>(),
            vec![(4, 3), (7, 0), (7, 9)]
        );
        assert_eq!(f.read(refs[0]).unwrap(), b"dir");
        assert_eq!(f.read(refs[1]).unwrap(), b"");
        assert_eq!(f.read(refs[2]).unwrap(), b"summaries");
        assert_eq!(refs[2].checksum, xxh64(b"summaries"));
        assert_eq!(f.len(), 16);
        let torn = BlockRef {
            offset: 12,
            ..refs[2]
        };
        assert_eq!(
            f.read(torn).unwrap_err().to_string(),
            format!(
                "stored data is corrupt at index file {}, offset 12: index entry of 9 bytes ends past the end of the file (4 bytes read)",
                path.display()
            )
        );
    }

    #[test]
    fn dirty_files_are_synced_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = Arc::new(BlockFile::open(dir.path().join("p2.blk"), FileKind::Blocks).unwrap());
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
