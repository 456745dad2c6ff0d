# SPDX-License-Identifier: LGPL-2.1-or-later
"""One connection to fsnoted: requests, subscriptions and their events.

Input.  The socket is non-blocking and read in chunks into one bytearray;
whole frames are cut out of it with ``_wire.peek_frame()`` (which bounds the
length from the header before the body is believed) and decoded by
``_wire.decode()``.  Only a partial frame is ever left in the buffer when more
is read, so it holds at most one frame (1 MiB) plus one chunk.

Queues.  Every subscription has its own FIFO of finished ``Event`` objects,
so that one subscription can be read while another is not.  A FIFO is
bounded (``queue_max``): when it is full its events are thrown away and one
dropped record flagged ``must_rescan`` takes their place, as the daemon does
with a ring that overflows, so that no loss is ever silent.  Events carry an
arrival number, so reading the connection as a whole keeps arrival order.

Readiness.  ``Connection.fileno()`` is an epoll descriptor that watches the
socket and an eventfd; the eventfd is kept signalled exactly while
``read(timeout=0)`` has work the socket would not announce (queued events,
whole frames already buffered, a lost connection to report), so a
``selectors`` loop never sleeps on events that are already here.  It stays
the same across ``reconnect()``.  Waits of the blocking and asyncio calls
watch the socket itself, after everything buffered was dispatched.

Errors are exceptions: ``DaemonError`` carries the daemon's errno and message
for a refused request, ``ConnectionLostError`` a lost connection (the
daemon's errno and message when it said why), ``_wire.ProtocolError`` input
that breaks the protocol, after which the connection is dead.  A connection
is for one thread at a time.
"""

import array
import asyncio
import datetime
import enum
import errno
import json
import os
import select
import socket
import sys
import time
from collections import deque

from . import _wire as W
from ._wire import Error, ProtocolError

DEFAULT_SOCKET = "/run/fsnoted/fsnoted.sock"

_READ_CHUNK = 256 * 1024
# a request whose daemon says nothing at all for this long is abandoned
_REQUEST_IDLE = 30.0
_RECONNECT_PAUSE = 0.05
# frames decoded ahead of the reader at a time
_BATCH = 64


class DaemonError(Error):
    """The daemon refused a request: ``errno`` is its errno (EPERM,
    EINVAL, EDQUOT ...), ``strerror`` its message."""


class ConnectionLostError(Error, ConnectionError):
    """The connection is gone: the daemon closed it (``errno`` and
    ``strerror`` are then its reason when it gave one; ESHUTDOWN when it is
    shutting down), the socket failed, or it stopped answering.  Events
    already received can still be read; ``Connection.reconnect()`` resumes."""


class EventType(str, enum.Enum):
    """An event's type.  Members compare equal to their names, so
    ``ev.type == "create"`` works as well as ``ev.type is EventType.CREATE``."""

    CREATE = "create"
    DELETE = "delete"
    MODIFY = "modify"
    ATTRIB = "attrib"
    CLOSE_WRITE = "close_write"
    RENAME = "rename"
    UNMOUNT = "unmount"
    DROPPED = "dropped"
    OPEN = "open"
    ACCESS = "access"
    MOUNT = "mount"
    FS_ERROR = "fs_error"

    def __str__(self):
        return self.value

    @property
    def code(self):
        """The number on the wire (1 for create ... 12 for fs_error)."""
        return _TYPE_CODE[self]


_TYPES = (None,) + tuple(EventType)
_TYPE_CODE = {t: i for i, t in enumerate(_TYPES) if t is not None}
_TYPE_BY_NAME = {t.value: t for t in EventType}
DEFAULT_TYPES = frozenset(_TYPES[1:9])


class Flag(enum.IntFlag):
    """Event flags (bits a client does not know are kept, and ignored)."""

    COMBINED = 1 << 0
    DROPPED = 1 << 1
    MUST_RESCAN = 1 << 2
    IS_DIR = 1 << 3
    RENAMED = 1 << 4
    KERNEL_OVERFLOW = 1 << 5
    RING_OVERFLOW = 1 << 6
    POOL_RECLAIM = 1 << 7
    INJECTED = 1 << 8
    HISTORY = 1 << 9
    ROOT = 1 << 10
    SUB_ENDED = 1 << 11
    LOCAL_ONLY = 1 << 12
    UNVERIFIED = 1 << 15


_FLAG_NAMES = [(f, f.name.lower()) for f in Flag]


class Feature(enum.IntFlag):
    """What the daemon announced in its hello reply."""

    FANOTIFY = 1 << 0
    RENAME = 1 << 1
    INOTIFY = 1 << 2
    HISTORY = 1 << 3
    FLUSH = 1 << 4
    MOUNT_EVENTS = 1 << 5
    FS_ERROR = 1 << 6
    FIELDS = 1 << 8          # subscribe(fields=...)


# subscribe(fields=...): the optional parts of events
FIELD_STAT = W.FIELD_STAT    # ino, mode, uid, gid (and dest_*)
FIELD_PID = W.FIELD_PID      # pid (else 0)


def _time_ns():
    return time.time_ns()


class Event:
    """One record of a subscription.

    Attributes: ``subscription``, ``id`` (64-bit, strictly increasing per
    subscription except for replayed history), ``type`` (an EventType),
    ``flags`` (a Flag), ``time_ns``, ``pid`` (0 when hidden or unknown),
    ``path_bytes`` and ``dest_bytes`` (a rename's destination, else None) as
    the kernel reported them, and where the daemon knew them ``dev``,
    ``ino``, ``mode``, ``uid``, ``gid`` and ``dest_dev`` ... ``dest_gid``
    (None otherwise).  A dropped record (``type == "dropped"``) also has
    ``count`` (events lost, 0 when unknown), ``id_first``, ``id_last`` and
    ``rescan_bytes``, the directory to rescan.  ``path``, ``dest`` and
    ``rescan`` are the same names decoded with ``os.fsdecode``.
    """

    __slots__ = ("subscription", "id", "type", "flags", "time_ns", "pid",
                 "path_bytes", "dest_bytes", "dev", "ino", "mode", "uid", "gid",
                 "dest_dev", "dest_ino", "dest_mode", "dest_uid", "dest_gid",
                 "count", "id_first", "id_last", "rescan_bytes", "_seq")

    @property
    def path(self):
        """The absolute path, decoded with ``os.fsdecode`` (undecodable
        bytes become surrogates; ``os.fsencode`` gives the bytes back)."""
        return os.fsdecode(self.path_bytes)

    @property
    def dest(self):
        """A rename's destination path, or None."""
        return None if self.dest_bytes is None else os.fsdecode(self.dest_bytes)

    @property
    def rescan(self):
        """The directory a dropped record asks to rescan, or None."""
        return None if self.rescan_bytes is None else os.fsdecode(self.rescan_bytes)

    @property
    def is_dir(self):
        return bool(self.flags & Flag.IS_DIR)

    @property
    def time(self):
        """When it happened, in seconds since the epoch (a float)."""
        return self.time_ns / 1e9

    @property
    def flag_names(self):
        """The names of the flags set, as fsnotectl prints them."""
        return [n for f, n in _FLAG_NAMES if self.flags & f]

    def to_dict(self):
        """The record as ``fsnotectl watch --json`` prints it."""
        d = {"id": self.id, "type": self.type.value, "path": self.path}
        if self.dest_bytes is not None:
            d["dest"] = self.dest
        d["is_dir"] = self.is_dir
        d["flags"] = self.flag_names
        d["pid"] = self.pid
        for k in ("uid", "gid", "mode", "ino", "dev"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        d["time"] = self.time
        if self.type is EventType.DROPPED:
            d["count"] = self.count
            d["rescan"] = self.rescan
        return d

    def __repr__(self):
        extra = " -> %r" % self.dest if self.dest_bytes is not None else ""
        return "<fsnote.Event %d %s %r%s [%s]>" % (self.id, self.type.value, self.path, extra,
                                                   ",".join(self.flag_names))


_FLAG_CACHE = {}


def _flag(v):
    f = _FLAG_CACHE.get(v)
    if f is None:
        f = Flag(v)
        if len(_FLAG_CACHE) < 4096:
            _FLAG_CACHE[v] = f
    return f


def _event_from(args, sub, seq):
    W.check_event(args)
    e = Event()
    g = args.get
    e.subscription = sub
    e.id = args[W.ARG_ID]
    e.type = _TYPES[args[W.ARG_EVENT_TYPE]]
    e.flags = _flag(args[W.ARG_FLAGS])
    e.time_ns = args[W.ARG_TIME]
    e.pid = args[W.ARG_PID]
    e.path_bytes = args[W.ARG_PATH]
    e.dev = g(W.ARG_DEV)
    e.ino = g(W.ARG_INO)
    e.mode = g(W.ARG_MODE)
    e.uid = g(W.ARG_UID)
    e.gid = g(W.ARG_GID)
    e.dest_bytes = d = g(W.ARG_DEST_PATH)
    if d is None:
        e.dest_dev = e.dest_ino = e.dest_mode = e.dest_uid = e.dest_gid = None
    else:
        e.dest_dev = g(W.ARG_DEST_DEV)
        e.dest_ino = g(W.ARG_DEST_INO)
        e.dest_mode = g(W.ARG_DEST_MODE)
        e.dest_uid = g(W.ARG_DEST_UID)
        e.dest_gid = g(W.ARG_DEST_GID)
    e.rescan_bytes = r = g(W.ARG_RESCAN_PATH)
    if r is None:
        e.count = e.id_first = e.id_last = None
    else:
        e.count = g(W.ARG_COUNT, 0)
        e.id_first = g(W.ARG_ID_FIRST, 0)
        e.id_last = g(W.ARG_ID_LAST, 0)
    e._seq = seq
    return e


def _local_dropped(sub, seq, count, id_first, id_last, flags):
    """A dropped record made here, for losses the library itself causes or
    learns of (a full queue, a subscription that could not be restored)."""
    # paths are in the daemon's view of the root, as in its own records
    root = sub.root_bytes or sub._path or b"/"
    e = Event()
    e.subscription = sub
    e.id = id_last or sub.resume_id
    e.type = EventType.DROPPED
    e.flags = _flag(Flag.DROPPED | Flag.MUST_RESCAN | flags)
    e.time_ns = _time_ns()
    e.pid = 0
    e.path_bytes = root
    e.dest_bytes = None
    e.dev = e.ino = e.mode = e.uid = e.gid = None
    e.dest_dev = e.dest_ino = e.dest_mode = e.dest_uid = e.dest_gid = None
    e.rescan_bytes = root
    e.count = count
    e.id_first = id_first
    e.id_last = id_last
    e._seq = seq
    return e


def _types_mask(types):
    if isinstance(types, (str, EventType)):
        types = (types,)
    mask = 0
    for t in types:
        et = t if isinstance(t, EventType) else _TYPE_BY_NAME.get(t)
        if et is None:
            raise ValueError("unknown event type %r (known: %s)"
                             % (t, ", ".join(_TYPE_BY_NAME)))
        mask |= 1 << _TYPE_CODE[et]
    if not mask:
        raise ValueError("types names no event type")
    return mask


class Subscription:
    """A subscription on a connection (made by ``Connection.subscribe()``).

    Iterate it for its events: ``for ev in sub`` blocks until the next one
    and ends when the subscription does (its root was unmounted or removed,
    or it was unsubscribed); ``async for ev in sub`` is the same in asyncio.
    ``read(timeout)`` returns one event or None.

    ``id`` is the library's number for it, stable across
    ``Connection.reconnect()``; ``root`` is the root as the daemon sees it,
    ``start_id`` the event ID current when it started, ``last_id`` the ID of
    the last event read, ``backend`` the source serving it, ``warning`` the
    daemon's warning (a filesystem that only reports local changes) or None.
    """

    def __init__(self, conn, sub_id, path, opts):
        self.connection = conn
        self.id = sub_id
        self._path = path          # absolute bytes, to subscribe again; None: system
        self._opts = opts          # (sub_flags, mask, dev, depth, latency_us, batch, excludes,
                                   #  fields)
        self._q = deque()
        self._daemon_id = 0
        self.ended = False
        self.start_id = 0
        self.last_id = 0
        self.resume_id = 0
        self.flags = Flag(0)
        self.root_bytes = None
        self.warning = None
        self.backend = None

    @property
    def root(self):
        return None if self.root_bytes is None else os.fsdecode(self.root_bytes)

    def read(self, timeout=None):
        """The next event, waiting up to ``timeout`` seconds (None: as long
        as it takes, 0: not at all).  Returns None on timeout, or at once
        when the subscription has ended and nothing of it is left.  Raises
        ConnectionLostError, ProtocolError."""
        return self.connection._read(self, timeout)

    def __iter__(self):
        return self

    def __next__(self):
        ev = self.connection._read(self, None)
        if ev is None:
            raise StopIteration
        return ev

    async def aread(self, timeout=None):
        """``read()`` for asyncio: waits without blocking the event loop."""
        return await self.connection._aread(self, timeout)

    def __aiter__(self):
        return self

    async def __anext__(self):
        ev = await self.connection._aread(self, None)
        if ev is None:
            raise StopAsyncIteration
        return ev

    def flush(self):
        """Makes the daemon read everything the kernel has queued and send
        what is pending for this subscription ahead of its reply; returns the
        event ID that covers them.  Every event that happened before the
        call is then readable without waiting."""
        return self.connection.flush(self)

    def unsubscribe(self):
        """Ends the subscription; events still queued for it are discarded."""
        self.connection.unsubscribe(self)

    close = unsubscribe

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self.ended:
            try:
                self.unsubscribe()
            except Error:
                if exc[0] is None:
                    raise

    def __repr__(self):
        return "<fsnote.Subscription %d %r%s>" % (self.id, self.root,
                                                  " ended" if self.ended else "")


class Connection:
    """One connection to fsnoted.  Made by ``fsnote.connect()``; a context
    manager that closes it.

    ``backend``, ``server_version`` and ``features`` are what the daemon
    said at hello.  ``read()`` and iterating the connection give the events
    of all its subscriptions in arrival order; ``fileno()`` is for
    ``select``/``selectors``.
    """

    def __init__(self, socket_path=None, *, client_name=None, queue_max=65536,
                 timeout=_REQUEST_IDLE, sock=None):
        if not socket_path:
            socket_path = os.environ.get("FSNOTE_SOCKET") or DEFAULT_SOCKET
        if queue_max < 1:
            raise ValueError("queue_max must be positive")
        self.socket_path = os.fspath(socket_path)
        if client_name is None:
            client_name = os.path.basename(sys.argv[0] if sys.argv and sys.argv[0] else "") \
                or "python"
        name = os.fsencode(client_name).replace(b"\0", b"")[:W.NAME_MAX - 1]
        self._client_name = name
        self._queue_max = queue_max
        self._timeout = timeout
        self._sock = None
        self._dead = None          # (class, errno, message) of the lost connection
        self._in = bytearray()
        self._off = 0
        self._subs = {}            # library ID -> Subscription
        self._by_daemon = {}       # daemon's ID on this connection -> Subscription
        self._next_sub = 0
        self._next_req = 0
        self._seq = 0
        self._queued = 0
        self._aio_fut = None
        self._aio_loop = None
        self.backend = ""
        self.server_version = ""
        self.features = Feature(0)
        self._ep = select.epoll()
        self._evfd = None
        self._signalled = False
        self._given_sock = sock
        self._reconnectable = sock is None
        try:
            self._evfd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            self._ep.register(self._evfd, select.EPOLLIN)
            self._establish()
        except BaseException:
            self.close()
            raise

    # --- life -----------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def close(self):
        """Closes the connection (ending its subscriptions).  Idempotent."""
        self._drop_connection()
        if self._ep is not None:
            self._ep.close()
            self._ep = None
        if self._evfd is not None:
            os.close(self._evfd)
            self._evfd = None
        for s in self._subs.values():
            s.ended = True
        self._queued = 0

    @property
    def closed(self):
        return self._ep is None

    def fileno(self):
        """A descriptor that is readable while ``read(timeout=0)`` has
        something to return or raise: for select, poll, selectors, or an
        event loop's add_reader.  The same for the connection's life."""
        if self._ep is None:
            raise ValueError("I/O on a closed fsnote connection")
        return self._ep.fileno()

    # --- readiness --------------------------------------------------------

    def _frame_buffered(self):
        try:
            return W.peek_frame(self._in, self._off) != 0
        except ProtocolError:
            return True    # read() must come and report it

    def _update_ready(self):
        if self._evfd is None:
            return
        want = bool(self._queued or self._dead or self._sock is None or self._frame_buffered())
        if want == self._signalled:
            return
        try:
            if want:
                os.eventfd_write(self._evfd, 1)
            else:
                os.eventfd_read(self._evfd)
            self._signalled = want
        except BlockingIOError:
            self._signalled = want

    # --- connection -----------------------------------------------------------

    def _raise_dead(self):
        cls, err, msg = self._dead
        raise cls(err, msg)

    def _set_dead(self, cls, err, msg=None):
        if self._dead is None:
            self._dead = (cls, err, msg or os.strerror(err))

    def _drop_connection(self):
        if self._aio_fut is not None and not self._aio_fut.done() and self._sock is not None:
            try:
                self._aio_loop.remove_reader(self._sock.fileno())
                self._aio_fut.set_result(None)
            except Exception:
                pass
        self._aio_fut = None
        if self._sock is not None:
            try:
                if self._ep is not None:
                    self._ep.unregister(self._sock.fileno())
            except (OSError, ValueError):
                pass
            self._sock.close()
            self._sock = None
        self._in = bytearray()
        self._off = 0
        self._dead = None
        for s in self._subs.values():
            s._daemon_id = 0
        self._by_daemon.clear()

    def _establish(self):
        sock, given = self._given_sock, self._given_sock is not None
        self._given_sock = None
        if not given:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            if not given:
                # a blocking connect: a full backlog waits instead of failing
                sock.connect(self.socket_path)
            sock.setblocking(False)
            self._ep.register(sock.fileno(), select.EPOLLIN)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._dead = None
        self._in = bytearray()
        self._off = 0
        w = W.Writer(W.REQ_HELLO).u32(W.ARG_VERSION, W.PROTOCOL_VERSION)
        if self._client_name:
            w.string(W.ARG_CLIENT_NAME, self._client_name)
        try:
            args = self._request(w.finish(1024), W.REP_HELLO, 0)
            version = args[W.ARG_VERSION]
            if version != W.PROTOCOL_VERSION:
                raise ProtocolError(errno.EPROTONOSUPPORT,
                                    "the daemon speaks protocol version %d, not %d"
                                    % (version, W.PROTOCOL_VERSION))
        except BaseException:
            self._drop_connection()
            raise
        self.backend = os.fsdecode(args.get(W.ARG_BACKEND, b""))
        self.server_version = os.fsdecode(args.get(W.ARG_SERVER_VERSION, b""))
        self.features = Feature(args.get(W.ARG_FEATURES, 0))
        self._update_ready()

    # --- input ----------------------------------------------------------------

    def _fill(self):
        """Reads what the socket has.  Returns the byte count, 0 when nothing
        is there; a lost connection is recorded in _dead (and returns -1)."""
        if self._dead:
            return -1
        if self._sock is None:
            self._set_dead(ConnectionLostError, errno.ENOTCONN)
            return -1
        if self._off:
            # only a partial frame is left when we get here: cheap to move
            del self._in[:self._off]
            self._off = 0
        try:
            data = self._sock.recv(_READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as e:
            err = errno.ECONNRESET if e.errno in (errno.ECONNRESET, errno.EPIPE) else e.errno
            self._set_dead(ConnectionLostError, err or errno.EIO)
            return -1
        if not data:
            self._set_dead(ConnectionLostError, errno.ECONNRESET,
                           "the daemon closed the connection")
            return -1
        self._in += data
        return len(data)

    def _next_frame(self):
        """The next whole frame as (type, args), or None.  A frame that breaks
        the protocol kills the connection: nothing after it can be trusted."""
        try:
            n = W.peek_frame(self._in, self._off)
            if not n:
                return None
            rec = W.decode(self._in, self._off, n)
        except ProtocolError as e:
            self._off = len(self._in)
            self._set_dead(ProtocolError, e.errno, "the daemon sent a bad frame: " + e.strerror)
            raise ProtocolError(*self._dead[1:]) from None
        self._off += n
        return rec

    def _push(self, sub, ev):
        q = sub._q
        if len(q) >= self._queue_max:
            # the daemon's own policy for a full ring: the events give way to
            # one record that says how many were lost and what to rescan
            lost = 1
            first = 0
            last = ev.id
            for old in q:
                lost += old.count if old.type is EventType.DROPPED and old.count else 1
                if not first or (old.id and old.id < first):
                    first = old.id
            self._queued -= len(q)
            q.clear()
            ev = _local_dropped(sub, ev._seq, lost, first, last, Flag.RING_OVERFLOW)
        q.append(ev)
        self._queued += 1

    def _dispatch(self, rtype, args):
        """Handles a record that is not the reply being waited for."""
        if rtype == W.REC_EVENT:
            try:
                sub = self._by_daemon.get(args[W.ARG_SUB_ID])
                self._seq += 1
                ev = _event_from(args, sub, self._seq)
            except ProtocolError as e:
                self._off = len(self._in)
                self._set_dead(ProtocolError, e.errno, "the daemon sent a bad event: " + e.strerror)
                raise ProtocolError(*self._dead[1:]) from None
            if sub is None:
                return     # unsubscribed meanwhile: asked not to hear more
            if ev.id > sub.resume_id:
                sub.resume_id = ev.id
            if ev.flags & Flag.SUB_ENDED:
                # the daemon destroyed it after this record
                sub.ended = True
                self._by_daemon.pop(sub._daemon_id, None)
                sub._daemon_id = 0
            self._push(sub, ev)
        elif rtype == W.REC_SHUTDOWN:
            self._set_dead(ConnectionLostError, errno.ESHUTDOWN,
                           os.fsdecode(args[W.ARG_MESSAGE]))
        elif rtype == W.REP_ERROR and W.ARG_REQ_ID not in args:
            # no request named: the daemon is closing this connection
            self._set_dead(ConnectionLostError, args[W.ARG_ERRNO] or errno.EPROTO,
                           os.fsdecode(args[W.ARG_MESSAGE]))
        elif rtype & 0xFF00 == 0x0100:
            self._set_dead(ProtocolError, errno.EPROTO, "the daemon sent a request record")
            self._raise_dead()
        # other replies answer requests given up on: nothing to do

    def _pump(self):
        """Reads what the socket has and dispatches it, so that the daemon
        never waits on us while we wait on it."""
        self._fill()
        while True:
            rec = self._next_frame()
            if rec is None:
                return
            rtype, args = rec
            if rtype & 0xFF00 == 0x0200 and rtype != W.REP_ERROR:
                continue
            self._dispatch(rtype, args)

    def _pop(self, sub):
        if sub is not None:
            if sub._q:
                self._queued -= 1
                ev = sub._q.popleft()
                if ev.id > sub.last_id:
                    sub.last_id = ev.id
                return ev
            return None
        if not self._queued:
            return None
        best = None
        for s in self._subs.values():
            if s._q and (best is None or s._q[0]._seq < best._q[0]._seq):
                best = s
        return self._pop(best)

    def _dispatch_buffered(self, sub):
        """Decodes frames already buffered, a few dozen at a time (so that
        a reader that keeps up never meets the queue bound).  Returns
        whether there was any."""
        any_frame = False
        try:
            for _ in range(_BATCH):
                rec = self._next_frame()
                if rec is None:
                    break
                any_frame = True
                rtype, args = rec
                if rtype & 0xFF00 != 0x0200 or rtype == W.REP_ERROR:
                    self._dispatch(rtype, args)
                ahead = self._queued if sub is None else len(sub._q)
                if ahead >= _BATCH or self._dead:
                    break
        except ProtocolError:
            # recorded as the connection's death: raised once the events
            # that came before the bad frame have been read
            return True
        return any_frame

    def _wait_sock(self, events, deadline):
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        p = select.poll()
        p.register(self._sock.fileno(), events)
        r = p.poll(None if timeout is None else timeout * 1000)
        return r[0][1] if r else 0

    def _read(self, sub, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._ep is None:
            raise ValueError("I/O on a closed fsnote connection")
        try:
            while True:
                ev = self._pop(sub)
                if ev is not None:
                    return ev
                if self._dispatch_buffered(sub):
                    continue
                if sub is not None and sub.ended:
                    return None
                if self._dead:
                    self._raise_dead()
                n = self._fill()
                if n:
                    continue
                if timeout == 0 or not self._wait_sock(select.POLLIN, deadline):
                    return None
        finally:
            self._update_ready()

    async def _readable(self):
        fut = self._aio_fut
        if fut is None or fut.done():
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            fd = self._sock.fileno()

            def ready():
                loop.remove_reader(fd)
                if not fut.done():
                    fut.set_result(None)
            loop.add_reader(fd, ready)
            self._aio_fut = fut
            self._aio_loop = loop
        # shielded: one waiter cancelled must not cancel the others' wait
        await asyncio.shield(fut)

    async def _aread(self, sub, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ev = self._read(sub, 0)
            if ev is not None:
                return ev
            if sub is not None and sub.ended:
                return None
            if deadline is None:
                await self._readable()
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                await asyncio.wait_for(self._readable(), left)
            except asyncio.TimeoutError:
                return None

    def read(self, timeout=None):
        """The next event of any subscription, in arrival order, waiting up
        to ``timeout`` seconds (None: forever, 0: not at all); None on
        timeout.  Raises ConnectionLostError, ProtocolError."""
        return self._read(None, timeout)

    async def aread(self, timeout=None):
        """``read()`` for asyncio."""
        return await self._aread(None, timeout)

    def __iter__(self):
        while True:
            ev = self._read(None, None)
            if ev is not None:
                yield ev

    async def __aiter__(self):
        while True:
            yield await self._aread(None, None)

    # --- requests ---------------------------------------------------------------

    def _req_id(self):
        self._next_req = self._next_req % 0xFFFFFFFF + 1
        return self._next_req

    def _send(self, data, fd):
        view = memoryview(data)
        idle = time.monotonic() + self._timeout
        while view:
            try:
                if fd is not None:
                    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
                    n = self._sock.sendmsg([view], anc, socket.MSG_NOSIGNAL)
                    fd = None    # it travelled with the first bytes
                else:
                    n = self._sock.send(view, socket.MSG_NOSIGNAL)
                view = view[n:]
                idle = time.monotonic() + self._timeout
                continue
            except BlockingIOError:
                pass
            except OSError as e:
                err = errno.ECONNRESET if e.errno in (errno.EPIPE, errno.ECONNRESET) else e.errno
                self._set_dead(ConnectionLostError, err)
                self._raise_dead()
            ev = self._wait_sock(select.POLLOUT | select.POLLIN, idle)
            if not ev:
                self._set_dead(ConnectionLostError, errno.ETIMEDOUT, "the daemon stopped reading")
                self._raise_dead()
            if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                self._pump()
                if self._dead:
                    self._raise_dead()

    def _refusal(self):
        """The hello could not be sent because the daemon had already closed:
        it refuses a connection (a per-uid limit, say) with an error record
        that may still wait in our receive queue.  Raises that."""
        dead = self._dead
        self._dead = None
        try:
            for _ in range(16):
                rec = self._next_frame()
                if rec is None:
                    if self._fill() <= 0:
                        break
                    continue
                rtype, args = rec
                if rtype == W.REP_ERROR and W.ARG_REQ_ID not in args:
                    raise DaemonError(args[W.ARG_ERRNO] or errno.EPROTO,
                                      os.fsdecode(args[W.ARG_MESSAGE]))
        except ProtocolError:
            pass
        finally:
            if self._dead is None:
                self._dead = dead

    def _request(self, frame, want, req_id, fd=None):
        """Sends one request and waits for its reply, queueing the events that
        come first.  ``req_id`` 0 is the hello, whose reply carries none.
        Returns the reply's arguments; an error reply raises DaemonError."""
        if self._ep is None:
            raise ValueError("I/O on a closed fsnote connection")
        if self._sock is None:
            raise ConnectionLostError(errno.ENOTCONN, "not connected (reconnect() first)")
        if self._dead:
            self._raise_dead()
        try:
            try:
                self._send(frame, fd)
            except ConnectionLostError:
                if req_id == 0:
                    self._refusal()
                raise
            idle = time.monotonic() + self._timeout
            while True:
                rec = self._next_frame()
                if rec is not None:
                    rtype, args = rec
                    is_reply = rtype & 0xFF00 == 0x0200
                    rid = args.get(W.ARG_REQ_ID)
                    if is_reply and (rid == req_id if req_id else rid is None):
                        if rtype == W.REP_ERROR:
                            err = args[W.ARG_ERRNO]
                            msg = os.fsdecode(args[W.ARG_MESSAGE])
                            if not req_id:
                                self._set_dead(ConnectionLostError, err or errno.EPROTO, msg)
                            raise DaemonError(err if 0 < err < 4096 else errno.EPROTO, msg)
                        if rtype != want:
                            self._set_dead(ProtocolError, errno.EPROTO,
                                           "reply 0x%04x to a request that wants 0x%04x"
                                           % (rtype, want))
                            self._raise_dead()
                        return args
                    if rtype == W.REP_ERROR and rid is None:
                        self._dispatch(rtype, args)
                        self._raise_dead()
                    if not is_reply:
                        self._dispatch(rtype, args)
                    continue
                if self._dead:
                    self._raise_dead()
                n = self._fill()
                if n > 0:
                    idle = time.monotonic() + self._timeout
                    continue
                if n == 0 and not self._wait_sock(select.POLLIN, idle):
                    self._set_dead(ConnectionLostError, errno.ETIMEDOUT,
                                   "the daemon did not answer")
                    self._raise_dead()
        finally:
            self._update_ready()

    # --- subscriptions -----------------------------------------------------

    def subscribe(self, path=None, *, recursive=True, types=None, since=None, exclude=(),
                  latency=None, batch=None, ring_depth=None, dev=None, system=False,
                  fields=None):
        """Subscribes to events below ``path`` and returns a Subscription.

        ``path`` (str, bytes, a path-like object, or an open directory
        descriptor, which stays the caller's) is opened here with
        ``O_RDONLY|O_DIRECTORY``: the caller's own permissions are what the
        daemon checks, so an unreadable directory raises PermissionError
        from opening it.  ``recursive=False`` watches the directory and its
        direct children only.  ``types``: event type names (or EventType)
        wanted, default create, delete, modify, attrib, close_write, rename
        (dropped and unmount records come whatever is asked).  ``since``: an
        event ID to continue after (replayed from the daemon's history, or a
        dropped record saying what to rescan).  ``exclude``: up to 32
        patterns (".git", "*.tmp", "build/out").  ``latency`` (seconds, 0
        for immediate) and ``batch``: when the daemon wakes us.
        ``ring_depth``: the daemon-side queue.  ``dev``: only events on this
        st_dev.  ``system=True`` (root or the privileged group, no path):
        every mounted filesystem.  ``fields``: only these optional parts in
        the events, an OR of FIELD_STAT (ino, mode, uid, gid; else None) and
        FIELD_PID (else 0), or 0 for neither, which spares the daemon
        looking them up; None (the default) for all.  It needs a daemon
        with Feature.FIELDS: with any other, DaemonError EOPNOTSUPP, and
        nothing is sent.

        Raises OSError from opening ``path``, ValueError for bad options,
        DaemonError for the daemon's refusal (EPERM, EDQUOT, EOPNOTSUPP,
        ENOSPC ...)."""
        sub_flags = 0
        if not recursive:
            sub_flags |= W.SUB_CHILDREN
        if system:
            if path is not None:
                raise ValueError("a whole-system subscription takes no path")
            sub_flags |= W.SUB_SYSTEM
        elif path is None:
            raise ValueError("subscribe() needs a path (or system=True)")
        mask = None if types is None else _types_mask(types)
        if isinstance(exclude, (str, bytes)):
            exclude = (exclude,)
        excludes = []
        for p in exclude:
            b = os.fsencode(p)
            if not b or b"\0" in b or len(b) >= W.PATTERN_MAX:
                raise ValueError("exclude pattern %r: 1 to %d bytes, no NUL"
                                 % (p, W.PATTERN_MAX - 1))
            excludes.append(b)
        if len(excludes) > W.EXCLUDES_MAX:
            raise ValueError("at most %d exclude patterns" % W.EXCLUDES_MAX)
        latency_us = None
        if latency is not None:
            if not 0 <= latency <= 60:
                raise ValueError("latency is 0 to 60 seconds")
            latency_us = int(round(latency * 1e6))
        for name, v in (("batch", batch), ("ring_depth", ring_depth)):
            if v is not None and not 1 <= v <= 0xFFFFFFFF:
                raise ValueError("%s must be a positive 32-bit number" % name)
        if since is not None and not 0 <= since <= 0xFFFFFFFFFFFFFFFF:
            raise ValueError("since must be an unsigned 64-bit event ID")
        if fields is not None and (not isinstance(fields, int) or isinstance(fields, bool)
                                   or fields < 0 or fields & ~W.FIELDS_ALL):
            raise ValueError("fields is an OR of FIELD_STAT and FIELD_PID (or 0)")
        opts = (sub_flags, mask, dev, ring_depth, latency_us, batch, tuple(excludes), fields)

        self._next_sub += 1
        fd = None
        own_fd = False
        abs_path = None
        try:
            if system:
                pass
            elif isinstance(path, int):
                fd = path
                abs_path = os.readlink(b"/proc/self/fd/%d" % fd)
            else:
                p = os.fsencode(path)
                fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                own_fd = True
                # a relative path would mean something else after a chdir():
                # resume by the absolute name the directory has now
                abs_path = p if p.startswith(b"/") else os.readlink(b"/proc/self/fd/%d" % fd)
            sub = Subscription(self, self._next_sub, abs_path, opts)
            self._subscribe(sub, fd, since)
        finally:
            if own_fd:
                os.close(fd)
        # a caller's "since" is where a resume continues from until events come
        sub.resume_id = since if since is not None and since < sub.start_id else sub.start_id
        self._subs[sub.id] = sub
        return sub

    def _subscribe(self, sub, fd, since):
        sub_flags, mask, dev, depth, latency_us, batch, excludes, fields = sub._opts
        if fields is not None and not self.features & Feature.FIELDS:
            # an older daemon takes the argument for a malformed request
            raise DaemonError(errno.EOPNOTSUPP,
                              "fsnoted does not support choosing event fields")
        req = self._req_id()
        w = W.Writer(W.REQ_SUBSCRIBE).u32(W.ARG_REQ_ID, req).u32(W.ARG_SUB_FLAGS, sub_flags)
        if mask is not None:
            w.u64(W.ARG_EVENT_MASK, mask)
        if dev is not None:
            w.u64(W.ARG_DEV_FILTER, dev)
        if depth is not None:
            w.u32(W.ARG_RING_DEPTH, depth)
        if latency_us is not None:
            w.u32(W.ARG_LATENCY_US, latency_us)
        if batch is not None:
            w.u32(W.ARG_BATCH, batch)
        if since is not None:
            w.u64(W.ARG_SINCE_ID, since)
        if fields is not None:
            w.u32(W.ARG_FIELDS, fields)
        for x in excludes:
            w.string(W.ARG_EXCLUDE, x)
        # the label: the path this process opened, which the daemon puts in
        # front of what it reports (a container's or a chroot's own view)
        if (isinstance(sub._path, bytes) and sub._path.startswith(b"/")
                and len(sub._path) < W.PATH_MAX and b"\0" not in sub._path):
            w.string(W.ARG_PATH, sub._path)
        args = self._request(w.finish(), W.REP_SUBSCRIBED, req, fd)
        sub._daemon_id = args[W.ARG_SUB_ID]
        sub.start_id = args[W.ARG_ID]
        sub.flags = Flag(args.get(W.ARG_FLAGS, 0))
        sub.root_bytes = args.get(W.ARG_PATH, sub._path)
        msg = args.get(W.ARG_MESSAGE)
        sub.warning = None if msg is None else os.fsdecode(msg)
        b = args.get(W.ARG_BACKEND)
        sub.backend = self.backend if b is None else os.fsdecode(b)
        self._by_daemon[sub._daemon_id] = sub

    @property
    def subscriptions(self):
        """The live subscriptions of this connection."""
        return [s for s in self._subs.values() if not s.ended]

    def unsubscribe(self, sub):
        """Ends ``sub``; what is still queued for it is discarded."""
        if self._subs.get(sub.id) is not sub:
            raise Error(errno.ENOENT, "not a subscription of this connection")
        if sub._daemon_id and self._sock is not None and not self._dead:
            req = self._req_id()
            frame = W.Writer(W.REQ_UNSUBSCRIBE).u32(W.ARG_REQ_ID, req) \
                .u32(W.ARG_SUB_ID, sub._daemon_id).finish()
            try:
                self._request(frame, W.REP_UNSUBSCRIBED, req)
            except DaemonError as e:
                # ENOENT: the daemon ended it first
                if e.errno != errno.ENOENT:
                    raise
            except ConnectionLostError:
                pass     # a lost connection ended it too
        self._by_daemon.pop(sub._daemon_id, None)
        sub._daemon_id = 0
        sub.ended = True
        self._queued -= len(sub._q)
        sub._q.clear()
        del self._subs[sub.id]
        self._update_ready()

    # --- other requests -----------------------------------------------------------

    def _request_id(self, rtype, want, sub_id=None, time_ns=None):
        req = self._req_id()
        w = W.Writer(rtype).u32(W.ARG_REQ_ID, req)
        if sub_id is not None:
            w.u32(W.ARG_SUB_ID, sub_id)
        if time_ns is not None:
            w.u64(W.ARG_TIME, time_ns)
        return self._request(w.finish(), want, req)[W.ARG_ID]

    def current_id(self):
        """The ID of the newest event the daemon has handed out."""
        return self._request_id(W.REQ_CURRENT_ID, W.REP_CURRENT_ID)

    def id_at(self, when):
        """The first event ID at or after ``when`` (a datetime, or seconds
        since the epoch), as far as the daemon's history reaches: a time after
        every event gives the current ID plus 1, one before the history's
        oldest event raises DaemonError with errno ERANGE."""
        if isinstance(when, datetime.datetime):
            when = when.timestamp()
        ns = int(round(when * 1e9))
        if ns < 0:
            raise ValueError("a time before the epoch")
        return self.id_at_ns(ns)

    def id_at_ns(self, time_ns):
        """``id_at()`` with nanoseconds since the epoch."""
        return self._request_id(W.REQ_CURRENT_ID, W.REP_CURRENT_ID, time_ns=time_ns)

    def flush(self, sub):
        """See ``Subscription.flush()``."""
        if self._subs.get(sub.id) is not sub or not sub._daemon_id:
            if self._dead:
                self._raise_dead()
            raise Error(errno.ENOENT, "the subscription has ended")
        return self._request_id(W.REQ_FLUSH, W.REP_FLUSHED, sub_id=sub._daemon_id)

    def status(self):
        """The daemon's status, as a dict (the JSON document of
        fsnote-protocol(7)'s status reply)."""
        req = self._req_id()
        args = self._request(W.Writer(W.REQ_STATUS).u32(W.ARG_REQ_ID, req).finish(),
                             W.REP_STATUS, req)
        try:
            return json.loads(args[W.ARG_JSON].decode("utf-8"))
        except ValueError as e:
            raise ProtocolError(errno.EBADMSG, "the status is not JSON: %s" % e) from None

    def inject(self, type, path, dest=None, *, is_dir=False):
        """Adds a synthetic event (root only; for tests and replay) and
        returns its ID.  ``dest`` is given exactly for a rename."""
        et = type if isinstance(type, EventType) else _TYPE_BY_NAME.get(type)
        if et is None or et is EventType.DROPPED:
            raise ValueError("cannot inject an event of type %r" % (type,))
        req = self._req_id()
        w = W.Writer(W.REQ_INJECT).u32(W.ARG_REQ_ID, req).u32(W.ARG_EVENT_TYPE, et.code)
        w.string(W.ARG_PATH, os.fsencode(path))
        if is_dir:
            w.u32(W.ARG_FLAGS, Flag.IS_DIR)
        if dest is not None:
            w.string(W.ARG_DEST_PATH, os.fsencode(dest))
        return self._request(w.finish(), W.REP_INJECTED, req)[W.ARG_ID]

    # --- reconnect --------------------------------------------------------------

    def reconnect(self, timeout=None):
        """Connects again after the connection was lost (the daemon
        restarted, say) and subscribes every subscription again, each
        continuing after the newest event it received: what happened
        meanwhile is replayed from the daemon's history, or a dropped record
        says what to rescan.  A subscription that cannot be restored ends
        with a dropped record flagged sub_ended.  Retries until ``timeout``
        seconds (None: forever) pass; Subscription objects stay the same."""
        if self._ep is None:
            raise ValueError("I/O on a closed fsnote connection")
        if not self._reconnectable:
            raise ValueError("a connection made on a given socket cannot reconnect")
        deadline = None if timeout is None else time.monotonic() + timeout
        # what arrived whole on the old connection is still the caller's
        dead = self._dead
        self._dead = None
        try:
            while True:
                rec = self._next_frame()
                if rec is None:
                    break
                rtype, args = rec
                if rtype & 0xFF00 != 0x0200 or rtype == W.REP_ERROR:
                    self._dispatch(rtype, args)
        except ProtocolError:
            pass
        self._dead = self._dead or dead
        while True:
            self._drop_connection()
            try:
                self._establish()
                self._resubscribe_all()
                break
            except (ConnectionLostError, FileNotFoundError, ConnectionRefusedError,
                    ProtocolError) as e:
                err = e
            except DaemonError as e:
                if e.errno not in (errno.EUSERS, errno.EDQUOT, errno.EAGAIN):
                    self._lost_after_failure()
                    raise
                err = e
            if deadline is not None and time.monotonic() >= deadline:
                self._lost_after_failure()
                raise err
            pause = _RECONNECT_PAUSE
            if deadline is not None:
                pause = max(0.0, min(pause, deadline - time.monotonic()))
            time.sleep(pause)
        self._update_ready()

    def _lost_after_failure(self):
        # reads say "lost" until an attempt succeeds
        self._drop_connection()
        self._set_dead(ConnectionLostError, errno.ECONNRESET, "not connected (reconnect failed)")
        self._update_ready()

    def _end_locally(self, sub):
        self._seq += 1
        self._push(sub, _local_dropped(sub, self._seq, 0, sub.resume_id + 1, 0, Flag.SUB_ENDED))
        sub.ended = True
        sub._daemon_id = 0

    def _resubscribe_all(self):
        for sub in list(self._subs.values()):
            if sub.ended:
                continue
            fd = None
            if not sub._opts[0] & W.SUB_SYSTEM:
                try:
                    fd = os.open(sub._path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                except OSError:
                    self._end_locally(sub)
                    continue
            try:
                self._subscribe(sub, fd, sub.resume_id)
            except DaemonError:
                if self._dead:
                    raise
                # refused now (permissions changed, a limit ...): say it ended
                self._end_locally(sub)
            finally:
                if fd is not None:
                    os.close(fd)


def connect(socket_path=None, **kw):
    """Connects to fsnoted and completes the version handshake.

    ``socket_path`` defaults to $FSNOTE_SOCKET, then
    /run/fsnoted/fsnoted.sock.  Keywords: ``client_name`` (shown in the
    daemon's status), ``queue_max`` (events kept per subscription before the
    oldest give way to a dropped record, default 65536), ``timeout`` (seconds
    a request may go without any answer, default 30), ``sock`` (a socket
    already connected to a daemon, used instead of connecting; such a
    connection cannot ``reconnect()``).

    Raises FileNotFoundError or ConnectionRefusedError when no daemon
    listens, DaemonError when it refuses the connection (EUSERS: too many
    connections), ProtocolError when it speaks another protocol version."""
    return Connection(socket_path, **kw)
