#!/usr/bin/python3
"""
crashfs: a FUSE file system for power-cut tests, in the manner of LazyFS (Jepsen) and SQLite's
crash tests. It passes everything through to a backing directory except file data: writes are kept
in this process's memory, overlaid on reads, and reach the backing file only when fsync or
fdatasync reaches that file. A power cut is this process ending without writing them:

- SIGKILL: every write not yet synced is lost;
- "cut" on stdin: a seeded choice of them lands first, in any order, the last one torn (only a 512-byte
  aligned part of it), as a disk's write cache may leave them; then the process ends.

Metadata (create, mkdir, rename, unlink, truncate, modes) goes to the backing directory at once:
durable when done, a stronger promise than a real file system makes (so a missing directory fsync
goes unseen here). syncfs(2) does not reach a FUSE daemon at all: data synced only that way is lost
on a cut, as it would be on many FUSE and network file systems.

usage: crashfs.py BACKING MOUNTPOINT [SEED]; prints "ready" once mounted. The line "cut" on its
stdin is the torn cut: it prints "cut: N writes pending, M landed (T torn)" and ends. (A thread reads
stdin: a signal handler would wait for the next file system request to run.) Needs Debian's
python3-fusepy.
"""
import errno
import os
import random
import sys
import threading
import time

from fusepy import FUSE, FuseOSError, Operations

SECTOR = 512


class CrashFS(Operations):
    def __init__(self, root, seed):
        self.root = root
        self.seed = seed
        # path -> [(offset, bytes)] written since the file was last synced, in order
        self.pending = {}
        self.guard = threading.Lock()
        # Set by the cut: from then on nothing succeeds (a sync that would report success after the
        # power went would lie).
        self.dead = False

    def __call__(self, op, *args):
        if self.dead:
            raise FuseOSError(errno.EIO)
        return super().__call__(op, *args)

    def _full(self, path):
        return os.path.join(self.root, path.lstrip('/'))

    def _end(self, path):
        writes = self.pending.get(path)
        return max(o + len(b) for o, b in writes) if writes else 0

    # ---- metadata, passed through ----

    def getattr(self, path, fh=None):
        try:
            st = os.lstat(self._full(path))
        except OSError as e:
            raise FuseOSError(e.errno)
        d = {k: getattr(st, k) for k in ('st_atime', 'st_ctime', 'st_gid', 'st_mode', 'st_mtime', 'st_nlink', 'st_size', 'st_uid')}
        with self.guard:
            d['st_size'] = max(d['st_size'], self._end(path))
        d['st_blocks'] = (d['st_size'] + 511) // 512
        return d

    def readdir(self, path, fh):
        return ['.', '..'] + os.listdir(self._full(path))

    def access(self, path, mode):
        if not os.access(self._full(path), mode):
            raise FuseOSError(errno.EACCES)

    def chmod(self, path, mode):
        os.chmod(self._full(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._full(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self._full(path), times)

    def mkdir(self, path, mode):
        os.mkdir(self._full(path), mode)

    def rmdir(self, path):
        os.rmdir(self._full(path))

    def link(self, target, source):
        os.link(self._full(source), self._full(target))
        with self.guard:
            # One file under two names: the same writes, synced by either.
            if source in self.pending:
                self.pending[target] = self.pending[source]

    def unlink(self, path):
        os.unlink(self._full(path))
        with self.guard:
            self.pending.pop(path, None)

    def rename(self, old, new):
        os.rename(self._full(old), self._full(new))
        with self.guard:
            self.pending.pop(new, None)
            moved = {}
            for p in list(self.pending):
                if p == old or p.startswith(old + '/'):
                    moved[new + p[len(old):]] = self.pending.pop(p)
            self.pending.update(moved)

    def statfs(self, path):
        sv = os.statvfs(self._full(path))
        return {k: getattr(sv, k) for k in ('f_bavail', 'f_bfree', 'f_blocks', 'f_bsize', 'f_favail', 'f_ffree', 'f_files', 'f_flag', 'f_frsize', 'f_namemax')}

    def truncate(self, path, length, fh=None):
        with self.guard:
            writes = self.pending.get(path)
            if writes:
                clipped = []
                for o, b in writes:
                    if o < length:
                        clipped.append((o, b[:length - o]))
                self.pending[path] = clipped
        os.truncate(self._full(path), length)

    # ---- files ----

    def create(self, path, mode, fi=None):
        return os.open(self._full(path), os.O_RDWR | os.O_CREAT | os.O_TRUNC, mode)

    def open(self, path, flags):
        if flags & os.O_TRUNC:
            with self.guard:
                self.pending.pop(path, None)
            os.truncate(self._full(path), 0)
        # Read-write whatever was asked, for the sync's writes; the kernel gives every write its offset.
        return os.open(self._full(path), os.O_RDWR)

    def read(self, path, size, offset, fh):
        with self.guard:
            writes = list(self.pending.get(path, ()))
        base = os.pread(fh, size, offset)
        if not writes:
            return base
        end = min(offset + size, max(offset + len(base), max(o + len(b) for o, b in writes)))
        buf = bytearray(base) + bytearray(max(0, end - offset - len(base)))
        for o, b in writes:
            lo = max(o, offset)
            hi = min(o + len(b), end)
            if lo < hi:
                buf[lo - offset:hi - offset] = b[lo - o:hi - o]
        return bytes(buf)

    def write(self, path, data, offset, fh):
        with self.guard:
            if self.dead:
                raise FuseOSError(errno.EIO)
            self.pending.setdefault(path, []).append((offset, bytes(data)))
        return len(data)

    def fsync(self, path, datasync, fh):
        with self.guard:
            if self.dead:
                raise FuseOSError(errno.EIO)
            writes = self.pending.pop(path, None)
            taken = list(writes) if writes else []
            if writes:
                writes.clear()  # and from another name of the same file
        for o, b in taken:
            os.pwrite(fh, b, o)
        os.fsync(fh)
        return 0

    def fsyncdir(self, path, datasync, fh):
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        os.close(fh)
        return 0

    # ---- the cut ----

    def cut(self):
        """Some pending writes land, in a random order, the last of them torn; the rest are lost."""
        rng = random.Random(self.seed)
        with self.guard:
            self.dead = True
            writes = [(p, o, b) for p, ws in sorted(self.pending.items()) for o, b in ws]
            self.pending = {}
        landed = [w for w in writes if rng.random() < 0.5]
        rng.shuffle(landed)
        torn = 0
        for i, (p, o, b) in enumerate(landed):
            if i == len(landed) - 1 and len(b) > SECTOR:
                # Only whole sectors of it, from a random one on.
                first = rng.randrange(0, len(b) // SECTOR) * SECTOR
                last = rng.randrange(first + SECTOR, len(b) + SECTOR, SECTOR)
                o, b = o + first, b[first:last]
                torn = 1
            try:
                fd = os.open(self._full(p), os.O_WRONLY)
            except OSError:
                continue
            try:
                os.pwrite(fd, b, o)
                os.fsync(fd)
            finally:
                os.close(fd)
        print(f'cut: {len(writes)} writes pending, {len(landed)} landed ({torn} torn)', flush=True)


def main():
    backing, mountpoint = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    fs = CrashFS(backing, seed)

    def control():
        for line in sys.stdin:
            if line.strip() == 'cut':
                fs.cut()
                os._exit(0)

    def ready():
        for _ in range(2000):
            if os.path.ismount(mountpoint):
                print('ready', flush=True)
                return
            time.sleep(0.005)
        print('not mounted', flush=True)

    threading.Thread(target=control, daemon=True).start()
    threading.Thread(target=ready, daemon=True).start()
    FUSE(fs, mountpoint, foreground=True, nothreads=True)


if __name__ == '__main__':
    main()
