//! A filesystem that loses every write not yet synced: a power cut you can trigger.
//!
//! In the spirit of Jepsen's LazyFS. [`LazyFs::mount`] mounts (FUSE, in a background thread) a
//! view of a backing directory. Writes land in this process's memory, page by page; only
//! `fsync`/`fdatasync` of a file writes its pages through to the backing file. [`Mounted::cut_power`]
//! discards every page not yet synced and fails every later operation with `EIO`, as a disk whose
//! page cache is gone; a new mount over the same backing directory then shows exactly what a machine
//! would find after the power came back.
//!
//! Metadata (create, rename, unlink, truncate, permissions) reaches the backing directory at once, as
//! on a journalling filesystem that commits metadata before data; only file contents are lazy. The
//! backing directory itself is never synced to its disk: the machine under test does not lose power,
//! only this filesystem does.
//!
//! Used by the tests only; the server knows nothing of it.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation,
    INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    SessionACL, WriteFlags,
};

/// The unit in which unsynced data is kept and lost.
pub const PAGE: u64 = 4096;
const TTL: Duration = Duration::ZERO;

/// What a power cut did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Pages written through to the backing files by an fsync, over the mount's life.
    pub synced_pages: u64,
    /// Pages that were written but never synced, and so were lost.
    pub lost_pages: u64,
}

struct Node {
    path: PathBuf,
    file: Option<Arc<File>>,
    /// Unsynced pages by index.
    dirty: BTreeMap<u64, Box<[u8]>>,
    /// The file's size as its writers see it, while it differs from the backing file's.
    size: Option<u64>,
}

#[derive(Default)]
struct State {
    nodes: HashMap<u64, Node>,
    by_path: HashMap<PathBuf, u64>,
    next: u64,
    dead: bool,
    counts: Counts,
}

impl State {
    fn intern(&mut self, path: PathBuf) -> u64 {
        if let Some(ino) = self.by_path.get(&path) {
            return *ino;
        }
        self.next += 1;
        let ino = self.next;
        self.by_path.insert(path.clone(), ino);
        self.nodes.insert(
            ino,
            Node {
                path,
                file: None,
                dirty: BTreeMap::new(),
                size: None,
            },
        );
        ino
    }

    fn node(&mut self, ino: INodeNo) -> Result<&mut Node, Errno> {
        if self.dead {
            return Err(Errno::EIO);
        }
        self.nodes.get_mut(&ino.0).ok_or(Errno::ENOENT)
    }

    fn child(&mut self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.node(parent)?.path.join(name))
    }
}

impl Node {
    fn file(&mut self) -> io::Result<Arc<File>> {
        if let Some(f) = &self.file {
            return Ok(f.clone());
        }
        let f = Arc::new(OpenOptions::new().read(true).write(true).open(&self.path)?);
        self.file = Some(f.clone());
        Ok(f)
    }

    fn backing_len(&mut self) -> io::Result<u64> {
        Ok(self.file()?.metadata()?.len())
    }

    fn len(&mut self) -> io::Result<u64> {
        match self.size {
            Some(s) => Ok(s),
            None => self.backing_len(),
        }
    }

    fn attr(&mut self, ino: u64) -> io::Result<FileAttr> {
        let meta = match &self.file {
            Some(f) => f.metadata()?,
            None => std::fs::symlink_metadata(&self.path)?,
        };
        let mut attr = attr_of(ino, &meta);
        if let Some(s) = self.size {
            attr.size = s;
            attr.blocks = s.div_ceil(512);
        }
        Ok(attr)
    }

    fn read(&mut self, offset: u64, size: u64) -> io::Result<Vec<u8>> {
        let end = (offset + size).min(self.len()?);
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let file = self.file()?;
        let mut at = offset;
        while at < end {
            let page = at / PAGE;
            let within = (at % PAGE) as usize;
            let take = ((PAGE - at % PAGE).min(end - at)) as usize;
            match self.dirty.get(&page) {
                Some(p) => out.extend_from_slice(&p[within..within + take]),
                None => {
                    let mut buf = vec![0; take];
                    let n = read_at_most(&file, &mut buf, at)?;
                    buf[n..].fill(0);
                    out.extend_from_slice(&buf);
                }
            }
            at += take as u64;
        }
        Ok(out)
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let file = self.file()?;
        let len = self.len()?;
        let mut at = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let page = at / PAGE;
            let within = (at % PAGE) as usize;
            let take = (PAGE as usize - within).min(rest.len());
            let p = match self.dirty.entry(page) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let mut buf = vec![0u8; PAGE as usize].into_boxed_slice();
                    // What the page holds now: the backing file's bytes up to the file's end.
                    let known = len.saturating_sub(page * PAGE).min(PAGE) as usize;
                    let n = read_at_most(&file, &mut buf[..known], page * PAGE)?;
                    buf[n..].fill(0);
                    e.insert(buf)
                }
            };
            p[within..within + take].copy_from_slice(&rest[..take]);
            rest = &rest[take..];
            at += take as u64;
        }
        self.size = Some(len.max(offset + data.len() as u64));
        Ok(())
    }

    fn sync(&mut self) -> io::Result<u64> {
        if self.dirty.is_empty() && self.size.is_none() {
            return Ok(0);
        }
        let file = self.file()?;
        let len = self.len()?;
        let mut written = 0;
        for (page, bytes) in std::mem::take(&mut self.dirty) {
            let start = page * PAGE;
            if start >= len {
                continue;
            }
            let n = (len - start).min(PAGE) as usize;
            file.write_all_at(&bytes[..n], start)?;
            written += 1;
        }
        if file.metadata()?.len() != len {
            file.set_len(len)?;
        }
        self.size = None;
        Ok(written)
    }

    fn truncate(&mut self, size: u64) -> io::Result<()> {
        self.file()?.set_len(size)?;
        let first_gone = size.div_ceil(PAGE);
        self.dirty.split_off(&first_gone);
        if size % PAGE != 0
            && let Some(p) = self.dirty.get_mut(&(size / PAGE))
        {
            p[(size % PAGE) as usize..].fill(0);
        }
        self.size = if self.dirty.is_empty() {
            None
        } else {
            Some(size)
        };
        Ok(())
    }
}

fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn kind_of(meta: &std::fs::Metadata) -> FileType {
    let t = meta.file_type();
    if t.is_dir() {
        FileType::Directory
    } else if t.is_symlink() {
        FileType::Symlink
    } else {
        FileType::RegularFile
    }
}

fn time(secs: i64, nanos: i64) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs.max(0) as u64, nanos.clamp(0, 999_999_999) as u32)
}

fn attr_of(ino: u64, meta: &std::fs::Metadata) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: meta.len(),
        blocks: meta.blocks(),
        atime: time(meta.atime(), meta.atime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        crtime: time(meta.ctime(), meta.ctime_nsec()),
        kind: kind_of(meta),
        perm: (meta.mode() & 0o7777) as u16,
        nlink: meta.nlink() as u32,
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: meta.rdev() as u32,
        blksize: PAGE as u32,
        flags: 0,
    }
}

fn owned_by(path: &Path, req: &Request, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))?;
    std::os::unix::fs::chown(path, Some(req.uid()), Some(req.gid()))
}

/// The filesystem, before it is mounted.
pub struct LazyFs {
    state: Arc<Mutex<State>>,
}

/// A mounted [`LazyFs`]. Dropping it unmounts without syncing (as [`Mounted::cut_power`] does,
/// without the count).
pub struct Mounted {
    session: Option<BackgroundSession>,
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl LazyFs {
    /// Mounts a lazy view of `backing` at `mountpoint`, open to every user (`allow_other`), with the
    /// kernel checking permissions against the backing files' owners and modes.
    pub fn mount(backing: &Path, mountpoint: &Path) -> io::Result<Mounted> {
        let mut state = State::default();
        let root = state.intern(backing.to_path_buf());
        debug_assert_eq!(root, 1, "the root is inode 1");
        let state = Arc::new(Mutex::new(state));
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("onekey-lazyfs".into()),
            MountOption::DefaultPermissions,
        ];
        config.acl = SessionACL::All;
        let fs = LazyFs {
            state: state.clone(),
        };
        let session = fuser::spawn_mount(fs, mountpoint, &config)?;
        Ok(Mounted {
            session: Some(session),
            state,
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> Result<T, Errno>) -> Result<T, Errno> {
        f(&mut lock(&self.state))
    }

    /// Answers a call that changes nothing: ok while the inode exists and the power is on.
    fn nothing_to_do(&self, ino: INodeNo, reply: ReplyEmpty) {
        match self.with(|s| s.node(ino).map(|_| ())) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

impl Mounted {
    /// Pages synced so far, and pages currently written but not synced.
    pub fn counts(&self) -> Counts {
        let s = lock(&self.state);
        Counts {
            synced_pages: s.counts.synced_pages,
            lost_pages: s.nodes.values().map(|n| n.dirty.len() as u64).sum(),
        }
    }

    /// The power cut: every page not yet synced is gone, and every later operation fails with
    /// `EIO`. Unmount by dropping the returned value once the processes using the mount are dead.
    pub fn cut_power(&self) -> Counts {
        let mut s = lock(&self.state);
        let lost = s.nodes.values().map(|n| n.dirty.len() as u64).sum();
        s.dead = true;
        for n in s.nodes.values_mut() {
            n.dirty.clear();
            n.size = None;
            n.file = None;
        }
        s.counts.lost_pages = lost;
        s.counts
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        lock(&self.state).dead = true;
        if let Some(session) = self.session.take() {
            let _ = session.umount_and_join();
        }
    }
}

macro_rules! reply_err {
    ($reply:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return $reply.error(e),
        }
    };
}

fn io(e: io::Error) -> Errno {
    Errno::from(e)
}

impl fuser::Filesystem for LazyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = self.with(|s| {
            let path = s.child(parent, name)?;
            std::fs::symlink_metadata(&path).map_err(io)?;
            let ino = s.intern(path);
            s.node(INodeNo(ino))?.attr(ino).map_err(io)
        });
        let attr = reply_err!(reply, r);
        reply.entry(&TTL, &attr, Generation(0));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let r = self.with(|s| s.node(ino)?.attr(ino.0).map_err(io));
        let attr = reply_err!(reply, r);
        reply.attr(&TTL, &attr);
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let r = self.with(|s| {
            let node = s.node(ino)?;
            if let Some(mode) = mode {
                std::fs::set_permissions(
                    &node.path,
                    std::fs::Permissions::from_mode(mode & 0o7777),
                )
                .map_err(io)?;
            }
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::chown(&node.path, uid, gid).map_err(io)?;
            }
            if let Some(size) = size {
                node.truncate(size).map_err(io)?;
            }
            node.attr(ino.0).map_err(io)
        });
        let attr = reply_err!(reply, r);
        reply.attr(&TTL, &attr);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = self.with(|s| {
            let path = s.child(parent, name)?;
            std::fs::create_dir(&path).map_err(io)?;
            owned_by(&path, req, mode & !umask).map_err(io)?;
            let ino = s.intern(path);
            s.node(INodeNo(ino))?.attr(ino).map_err(io)
        });
        let attr = reply_err!(reply, r);
        reply.entry(&TTL, &attr, Generation(0));
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let r = self.with(|s| {
            let path = s.child(parent, name)?;
            let mut open = OpenOptions::new();
            open.read(true).write(true).create(true);
            if flags & libc::O_EXCL != 0 {
                open.create_new(true);
            }
            let file = open.open(&path).map_err(io)?;
            owned_by(&path, req, mode & !umask).map_err(io)?;
            if s.by_path.contains_key(&path) && flags & libc::O_TRUNC != 0 {
                let ino = s.by_path[&path];
                s.node(INodeNo(ino))?.truncate(0).map_err(io)?;
            }
            let ino = s.intern(path);
            let node = s.node(INodeNo(ino))?;
            if node.file.is_none() {
                node.file = Some(Arc::new(file));
            }
            node.attr(ino).map_err(io)
        });
        let attr = reply_err!(reply, r);
        reply.created(
            &TTL,
            &attr,
            Generation(0),
            FileHandle(0),
            FopenFlags::empty(),
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let r = self.with(|s| s.node(ino)?.file().map(|_| ()).map_err(io));
        reply_err!(reply, r);
        reply.opened(FileHandle(0), FopenFlags::empty());
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let r = self.with(|s| s.node(ino)?.read(offset, u64::from(size)).map_err(io));
        let data = reply_err!(reply, r);
        reply.data(&data);
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let r = self.with(|s| s.node(ino)?.write(offset, data).map_err(io));
        reply_err!(reply, r);
        reply.written(data.len() as u32);
    }

    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close() is not a sync: the pages stay unsynced.
        self.nothing_to_do(ino, reply);
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = self.with(|s| {
            let n = s.node(ino)?.sync().map_err(io)?;
            s.counts.synced_pages += n;
            Ok(())
        });
        reply_err!(reply, r);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Metadata is already in the backing directory.
        self.nothing_to_do(ino, reply);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let r = self.with(|s| {
            let dir = s.node(ino)?.path.clone();
            let mut entries = vec![
                (ino.0, FileType::Directory, OsStr::new(".").to_os_string()),
                (ino.0, FileType::Directory, OsStr::new("..").to_os_string()),
            ];
            for e in std::fs::read_dir(&dir).map_err(io)? {
                let e = e.map_err(io)?;
                let Ok(meta) = e.metadata() else { continue };
                let child = s.intern(e.path());
                entries.push((child, kind_of(&meta), e.file_name()));
            }
            Ok(entries)
        });
        let entries = reply_err!(reply, r);
        for (i, (child, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.with(|s| {
            let path = s.child(parent, name)?;
            std::fs::remove_file(&path).map_err(io)?;
            if let Some(ino) = s.by_path.remove(&path)
                && s.nodes.get(&ino).is_some_and(|n| n.file.is_none())
            {
                s.nodes.remove(&ino);
            }
            Ok(())
        });
        reply_err!(reply, r);
        reply.ok();
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.with(|s| {
            let path = s.child(parent, name)?;
            std::fs::remove_dir(&path).map_err(io)?;
            if let Some(ino) = s.by_path.remove(&path) {
                s.nodes.remove(&ino);
            }
            Ok(())
        });
        reply_err!(reply, r);
        reply.ok();
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = self.with(|s| {
            let from = s.child(parent, name)?;
            let to = s.child(newparent, newname)?;
            std::fs::rename(&from, &to).map_err(io)?;
            if let Some(old) = s.by_path.remove(&to)
                && s.nodes.get(&old).is_some_and(|n| n.file.is_none())
            {
                s.nodes.remove(&old);
            }
            // The renamed entry and, for a directory, everything below it.
            let moved: Vec<(PathBuf, u64)> = s
                .by_path
                .iter()
                .filter(|(p, _)| p.starts_with(&from))
                .map(|(p, i)| (p.clone(), *i))
                .collect();
            for (p, i) in moved {
                s.by_path.remove(&p);
                let new = match p.strip_prefix(&from) {
                    Ok(rest) if !rest.as_os_str().is_empty() => to.join(rest),
                    _ => to.clone(),
                };
                if let Some(n) = s.nodes.get_mut(&i) {
                    n.path = new.clone();
                }
                s.by_path.insert(new, i);
            }
            Ok(())
        });
        reply_err!(reply, r);
        reply.ok();
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let r = self.with(|s| {
            let from = s.node(ino)?.path.clone();
            let to = s.child(newparent, newname)?;
            std::fs::hard_link(&from, &to).map_err(io)?;
            s.by_path.insert(to, ino.0);
            s.node(ino)?.attr(ino.0).map_err(io)
        });
        let attr = reply_err!(reply, r);
        reply.entry(&TTL, &attr, Generation(0));
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        let r = self.with(|s| {
            let path = s.node(ino)?.path.clone();
            let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
                .map_err(|_| Errno::EINVAL)?;
            let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
            // SAFETY: `c` is a NUL-terminated path and `st` a valid out-pointer.
            if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
                return Err(io(io::Error::last_os_error()));
            }
            Ok(st)
        });
        let st = reply_err!(reply, r);
        reply.statfs(
            st.f_blocks,
            st.f_bfree,
            st.f_bavail,
            st.f_files,
            st.f_ffree,
            st.f_bsize as u32,
            st.f_namemax as u32,
            st.f_frsize as u32,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(dir: &Path) -> Node {
        let path = dir.join("f");
        std::fs::write(&path, vec![7u8; 5000]).expect("seed file");
        Node {
            path,
            file: None,
            dirty: BTreeMap::new(),
            size: None,
        }
    }

    #[test]
    fn unsynced_writes_are_seen_by_readers_but_not_by_the_backing_file() {
        let dir = std::env::temp_dir().join(format!("lazyfs-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut n = node(&dir);
        n.write(4090, b"0123456789abcdef").expect("write");
        assert_eq!(n.len().expect("len"), 5000);
        assert_eq!(n.read(4088, 6).expect("read"), b"\x07\x07012\x33");
        n.write(9000, b"end").expect("write past the end");
        assert_eq!(n.len().expect("len"), 9003);
        assert_eq!(std::fs::read(&n.path).expect("backing").len(), 5000);
        assert_eq!(n.sync().expect("sync"), 3);
        let backing = std::fs::read(&n.path).expect("backing");
        assert_eq!(backing.len(), 9003);
        assert_eq!(&backing[4090..4096], b"012345");
        assert_eq!(&backing[9000..], b"end");
        assert_eq!(backing[6000], 0, "a hole reads as zeros");
        n.write(0, b"lost").expect("write");
        n.truncate(3).expect("truncate");
        assert_eq!(n.read(0, 10).expect("read"), b"los");
        std::fs::remove_dir_all(&dir).ok();
    }
}
