# SPDX-License-Identifier: LGPL-2.1-or-later
"""The codec and the connection against a fake daemon: the other end of a
socketpair, which says whatever the test wants, well-formed or not.

No daemon and no privileges are needed.  The examples of fsnote-protocol(7)
are decoded byte for byte; every rule of its FRAMES section is broken once
and must give a ProtocolError with the errno the page names; a connection fed
garbage must raise, never hang or crash, and stay dead afterwards.
"""

import errno
import os
import random
import selectors
import socket
import struct
import unittest

import fsnote
from fsnote import _wire as W

# fsnote-protocol(7), EXAMPLE
HELLO_EXAMPLE = bytes.fromhex(
    "29000000" "0101" "0000"
    "3000" "0000" "04000000" "01000000"
    "3400" "0000" "05000000" "64656d6f00"
    "0000000000000000")
EVENT_EXAMPLE = bytes.fromhex(
    "b7000000" "01030000"
    "2100000004000000" "01000000"
    "0100000008000000" "0500e0b1c2a3d417"
    "0200000004000000" "01000000"
    "0300000004000000" "00000000"
    "0400000008000000" "15cd853dfe9c9717"
    "0500000004000000" "92100000"
    "060000000b000000" "2f7372762f612e74787400"
    "0700000008000000" "0308000000000000"
    "0800000008000000" "8300000000000000"
    "0900000004000000" "a4810000"
    "0a00000004000000" "e8030000"
    "0b00000004000000" "e8030000"
    "0000000000000000")


def frame(rtype, *args, reserved=0, length=None, done=True):
    """A frame from (argtype, raw value bytes) pairs, with no checks at all."""
    body = b"".join(struct.pack("<HHI", a, 0, len(v)) + v for a, v in args)
    if done:
        body += struct.pack("<HHI", 0, 0, 0)
    n = 8 + len(body) if length is None else length
    return struct.pack("<IHH", n, rtype, reserved) + body


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def s(v):
    return v + b"\0"


def hello_reply(backend=b"fanotify", features=0x1B):
    return frame(W.REP_HELLO, (W.ARG_VERSION, u32(1)), (W.ARG_SERVER_VERSION, s(b"0.1.0")),
                 (W.ARG_FEATURES, u64(features)), (W.ARG_BACKEND, s(backend)))


def event(sub_id, ev_id, etype, path, flags=0, extra=()):
    return frame(W.REC_EVENT, (W.ARG_SUB_ID, u32(sub_id)), (W.ARG_ID, u64(ev_id)),
                 (W.ARG_EVENT_TYPE, u32(etype)), (W.ARG_FLAGS, u32(flags)),
                 (W.ARG_TIME, u64(1700000000123456789)), (W.ARG_PID, u32(42)),
                 (W.ARG_PATH, s(path)), *extra)


def decode(buf):
    n = W.peek_frame(buf, 0)
    if n == 0:
        raise AssertionError("incomplete frame")
    return W.decode(buf, 0, n)


class CodecTest(unittest.TestCase):
    def test_hello_example_encodes_byte_for_byte(self):
        got = W.Writer(W.REQ_HELLO).u32(W.ARG_VERSION, 1).string(W.ARG_CLIENT_NAME, b"demo").finish()
        self.assertEqual(got, HELLO_EXAMPLE)

    def test_event_example_decodes(self):
        rtype, args = decode(EVENT_EXAMPLE)
        self.assertEqual(rtype, W.REC_EVENT)
        self.assertEqual(args[W.ARG_ID], 0x17D4A3C2B1E00005)
        self.assertEqual(args[W.ARG_PATH], b"/srv/a.txt")
        self.assertEqual(args[W.ARG_TIME], 1700000000123456789)
        self.assertEqual(args[W.ARG_MODE], 0o100644)
        self.assertEqual(args[W.ARG_DEV], 0x803)
        W.check_event(args)

    def test_decodes_at_an_offset_and_in_a_bytearray(self):
        buf = bytearray(b"xyz" + EVENT_EXAMPLE + b"\x01")
        n = W.peek_frame(buf, 3)
        self.assertEqual(n, len(EVENT_EXAMPLE))
        self.assertEqual(W.decode(buf, 3, n)[1][W.ARG_INO], 131)

    def test_partial_frames_wait(self):
        for cut in (0, 7, 8, 100, len(EVENT_EXAMPLE) - 1):
            self.assertEqual(W.peek_frame(EVENT_EXAMPLE[:cut], 0), 0)

    def assertRefused(self, buf, err=errno.EBADMSG, limit=W.FRAME_MAX):
        with self.assertRaises(W.ProtocolError) as cm:
            n = W.peek_frame(buf, 0, limit)
            self.assertNotEqual(n, 0, "frame not complete: the test is wrong")
            rtype, args = W.decode(buf, 0, n)
            if rtype == W.REC_EVENT:
                W.check_event(args)
        self.assertEqual(cm.exception.errno, err, cm.exception)
        self.assertIsInstance(cm.exception, OSError)

    def test_rule_1_short_frame_or_reserved_header(self):
        self.assertRefused(struct.pack("<IHH", 15, W.REC_SHUTDOWN, 0) + b"\0" * 8)
        self.assertRefused(frame(W.REC_SHUTDOWN, (W.ARG_MESSAGE, s(b"x")), reserved=1))

    def test_rule_2_too_long_is_refused_from_the_header_alone(self):
        # nothing but the header has arrived: refused before the body
        self.assertRefused(struct.pack("<IHH", W.FRAME_MAX + 1, W.REC_EVENT, 0), errno.EMSGSIZE)
        self.assertRefused(struct.pack("<IHH", 0xFFFFFFFF, W.REC_EVENT, 0), errno.EMSGSIZE)
        self.assertRefused(HELLO_EXAMPLE, errno.EMSGSIZE, limit=40)

    def test_rule_3_unknown_record_type(self):
        self.assertRefused(frame(0x0399), errno.EPROTONOSUPPORT)

    def test_rule_4_argument_past_the_end(self):
        ok = frame(W.REC_SHUTDOWN, (W.ARG_MESSAGE, s(b"bye")))
        bad = bytearray(ok)
        struct.pack_into("<I", bad, 12, 0xFFFFFFFF)       # value length
        self.assertRefused(bytes(bad))
        bad = bytearray(ok)
        struct.pack_into("<H", bad, 10, 1)                # argument reserved
        self.assertRefused(bytes(bad))
        # a header that starts inside the frame but does not fit in it
        self.assertRefused(frame(W.REC_SHUTDOWN, (W.ARG_MESSAGE, s(b"x")), done=False) + b"\0\0")

    def test_rule_5_done(self):
        msg = (W.ARG_MESSAGE, s(b"bye"))
        self.assertRefused(frame(W.REC_SHUTDOWN, msg, done=False))
        f = frame(W.REC_SHUTDOWN, msg)
        self.assertRefused(frame(W.REC_SHUTDOWN, msg, (0, b"")))        # two DONEs
        self.assertRefused(frame(W.REC_SHUTDOWN, msg, (0, b"x"), done=False))
        trailing = bytearray(f + b"\0\0\0\0")
        struct.pack_into("<I", trailing, 0, len(trailing))
        self.assertRefused(bytes(trailing))

    def test_rule_6_arguments_not_allowed(self):
        self.assertRefused(frame(W.REC_SHUTDOWN, (W.ARG_MESSAGE, s(b"x")), (W.ARG_ID, u64(1))))
        self.assertRefused(frame(W.REC_SHUTDOWN, (W.ARG_MESSAGE, s(b"x")), (0x16, u32(1))))
        self.assertRefused(frame(W.REC_SHUTDOWN, (W.ARG_MESSAGE, s(b"x")), (0x1234, u32(1))))

    def test_rule_7_repeated_argument(self):
        self.assertRefused(frame(W.REC_SHUTDOWN, (W.ARG_MESSAGE, s(b"x")), (W.ARG_MESSAGE, s(b"y"))))

    def test_rule_8_kinds(self):
        self.assertRefused(frame(W.REP_CURRENT_ID, (W.ARG_REQ_ID, u32(1)), (W.ARG_ID, u32(1))))
        self.assertRefused(frame(W.REP_CURRENT_ID, (W.ARG_REQ_ID, u64(1)), (W.ARG_ID, u64(1))))
        for bad in (b"", b"x", b"a\0b\0"):
            self.assertRefused(frame(W.REC_SHUTDOWN, (W.ARG_MESSAGE, bad)))
        self.assertRefused(frame(W.REC_SHUTDOWN, (W.ARG_MESSAGE, s(b"m" * W.MESSAGE_MAX))))
        self.assertRefused(event(1, 1, 1, b"/" + b"p" * W.PATH_MAX))

    def test_rule_9_too_many_arguments(self):
        args = [(W.ARG_REQ_ID, u32(1)), (W.ARG_SUB_FLAGS, u32(0))]
        # the largest frame a request may be: 61 excludes make 63 arguments
        ok = frame(W.REQ_SUBSCRIBE, *args, *[(W.ARG_EXCLUDE, s(b"x"))] * 61)
        self.assertEqual(decode(ok)[1][W.ARG_EXCLUDE], [b"x"] * 61)
        self.assertRefused(frame(W.REQ_SUBSCRIBE, *args, *[(W.ARG_EXCLUDE, s(b"x"))] * 62))

    def test_rule_10_required(self):
        self.assertRefused(frame(W.REP_CURRENT_ID, (W.ARG_REQ_ID, u32(1))))
        self.assertRefused(frame(W.REC_SHUTDOWN))

    def test_any_argument_order_decodes_the_same(self):
        rtype, args = decode(EVENT_EXAMPLE)
        body = EVENT_EXAMPLE[8:-8]
        parts = []
        p = 0
        while p < len(body):
            n = 8 + struct.unpack_from("<I", body, p + 4)[0]
            parts.append(body[p:p + n])
            p += n
        for seed in range(20):
            random.Random(seed).shuffle(parts)
            f = b"".join(parts) + struct.pack("<HHI", 0, 0, 0)
            f = struct.pack("<IHH", 8 + len(f), W.REC_EVENT, 0) + f
            self.assertEqual(decode(f), (rtype, args))

    def test_a_repeat_after_the_usual_head_is_refused(self):
        # the daemon's own order first, then the same argument again
        self.assertRefused(event(1, 2, 1, b"/a", extra=[(W.ARG_PID, u32(1))]))
        self.assertRefused(event(1, 2, 1, b"/a", extra=[(W.ARG_PATH, s(b"/b"))]))
        st = [(W.ARG_DEV, u64(1)), (W.ARG_INO, u64(2)), (W.ARG_MODE, u32(3)),
              (W.ARG_UID, u32(4)), (W.ARG_GID, u32(5))]
        self.assertEqual(decode(event(1, 2, 1, b"/a", extra=st))[1][W.ARG_GID], 5)
        self.assertRefused(event(1, 2, 1, b"/a", extra=st + [(W.ARG_INO, u64(2))]))
        # a bad path right after the head is refused by the general rules
        self.assertRefused(event(1, 2, 1, b"/a\0b"))

    def test_inconsistent_events(self):
        self.assertRefused(event(1, 1, 0, b"/a"))
        self.assertRefused(event(1, 1, 13, b"/a"))
        self.assertRefused(event(1, 1, 6, b"/a"))                       # rename without dest
        self.assertRefused(event(1, 1, 8, b"/a"))                       # dropped without rescan
        self.assertRefused(event(1, 1, 1, b"a"))                        # relative
        self.assertRefused(event(1, 1, 1, b""))                         # empty
        self.assertRefused(event(1, 1, 6, b"/a", extra=[(W.ARG_DEST_PATH, s(b"b"))]))
        W.check_event(decode(event(1, 1, 8, b"", extra=[(W.ARG_RESCAN_PATH, s(b"/"))]))[1])

    def test_writer_limits(self):
        with self.assertRaises(ValueError):
            W.Writer(W.REQ_SUBSCRIBE).string(W.ARG_EXCLUDE, b"x" * W.PATTERN_MAX)
        with self.assertRaises(ValueError):
            W.Writer(W.REQ_SUBSCRIBE).string(W.ARG_EXCLUDE, b"a\0b")
        with self.assertRaises(ValueError):
            W.Writer(W.REQ_SUBSCRIBE).u32(W.ARG_REQ_ID, 1 << 32)
        w = W.Writer(W.REQ_SUBSCRIBE)
        for _ in range(63):
            w.u32(W.ARG_BATCH, 1)
        with self.assertRaises(ValueError):
            w.u32(W.ARG_BATCH, 1)

    def test_random_damage_never_escapes_as_anything_else(self):
        rng = random.Random(18)
        seeds = [EVENT_EXAMPLE, hello_reply(), frame(W.REP_ERROR, (W.ARG_REQ_ID, u32(3)),
                                                      (W.ARG_ERRNO, u32(1)), (W.ARG_MESSAGE, s(b"no")))]
        accepted = refused = 0
        for i in range(20000):
            buf = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                op = rng.randrange(3)
                if op == 0:
                    buf[rng.randrange(len(buf))] = rng.randrange(256)
                elif op == 1:
                    del buf[rng.randrange(len(buf)):][:rng.randint(1, 9)]
                else:
                    pos = rng.randrange(len(buf) + 1)
                    buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 9)))
            try:
                n = W.peek_frame(buf, 0)
                if n == 0:
                    continue
                rtype, args = W.decode(buf, 0, n)
                if rtype == W.REC_EVENT:
                    W.check_event(args)
                accepted += 1
            except W.ProtocolError:
                refused += 1
        self.assertGreater(refused, 1000)


class FakeDaemon:
    """The daemon's end of a socketpair.  What it will say is written ahead
    into the socket, so no thread is needed; what the client said is read
    back by ``requests()``."""

    def __init__(self, *frames, hello=True, features=0x1B):
        self.client_end, self.end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        if hello:
            self.end.sendall(hello_reply(features=features))
        for f in frames:
            self.end.sendall(f)

    def say(self, data):
        self.end.sendall(data)

    def requests(self):
        self.end.setblocking(False)
        buf = b""
        try:
            while True:
                chunk = self.end.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except BlockingIOError:
            pass
        out = []
        off = 0
        while True:
            n = W.peek_frame(buf, off, W.REQUEST_MAX)
            if not n:
                break
            out.append(W.decode(buf, off, n))
            off += n
        return out

    def connect(self, **kw):
        return fsnote.connect("/nonexistent", sock=self.client_end, **kw)

    def close(self):
        self.end.close()


def subscribed(req_id, sub_id, cur=100, root=b"/w"):
    return frame(W.REP_SUBSCRIBED, (W.ARG_REQ_ID, u32(req_id)), (W.ARG_SUB_ID, u32(sub_id)),
                 (W.ARG_ID, u64(cur)), (W.ARG_PATH, s(root)), (W.ARG_BACKEND, s(b"inotify")))


class FakeDaemonTest(unittest.TestCase):
    def setUp(self):
        self.dir_fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
        self.fakes = []

    def tearDown(self):
        os.close(self.dir_fd)
        for d in self.fakes:
            d.end.close()
            d.client_end.close()

    def fake(self, *a, **kw):
        d = FakeDaemon(*a, **kw)
        self.fakes.append(d)
        return d

    def test_hello(self):
        d = self.fake()
        with d.connect(client_name="unit") as c:
            self.assertEqual(c.backend, "fanotify")
            self.assertEqual(c.server_version, "0.1.0")
            self.assertTrue(c.features & fsnote.Feature.HISTORY)
            (rtype, args), = d.requests()
            self.assertEqual(rtype, W.REQ_HELLO)
            self.assertEqual(args[W.ARG_VERSION], 1)
            self.assertEqual(args[W.ARG_CLIENT_NAME], b"unit")

    def test_garbage_instead_of_hello(self):
        d = self.fake(hello=False)
        d.say(os.urandom(7) + b"\x00" * 9 + b"garbage garbage garbage")
        with self.assertRaises(fsnote.ProtocolError):
            d.connect()

    def test_refusal_at_connect_carries_the_daemons_errno(self):
        d = self.fake(hello=False)
        d.say(frame(W.REP_ERROR, (W.ARG_ERRNO, u32(errno.EUSERS)),
                    (W.ARG_MESSAGE, s(b"too many connections for uid 65534"))))
        d.close()
        with self.assertRaises(fsnote.DaemonError) as cm:
            d.connect()
        self.assertEqual(cm.exception.errno, errno.EUSERS)
        self.assertIn("too many", cm.exception.strerror)

    def test_other_version(self):
        d = self.fake(hello=False)
        d.say(frame(W.REP_HELLO, (W.ARG_VERSION, u32(2))))
        with self.assertRaises(fsnote.ProtocolError) as cm:
            d.connect()
        self.assertEqual(cm.exception.errno, errno.EPROTONOSUPPORT)

    def _subscribed_conn(self, d, **kw):
        d.say(subscribed(1, 7))
        c = d.connect(**kw)
        sub = c.subscribe(self.dir_fd)
        self.assertEqual(sub.root, "/w")
        self.assertEqual(sub.backend, "inotify")
        return c, sub

    def test_subscribe_passes_the_descriptor(self):
        d = self.fake()
        d.say(subscribed(1, 7))
        c = d.connect()
        # read the request with its ancillary data, as the daemon does
        sub = c.subscribe(self.dir_fd, recursive=False, types={"create", "rename"}, since=5,
                          exclude=[".git", b"*.tmp"], latency=0, batch=3, ring_depth=64)
        msg, anc, flags, _ = d.end.recvmsg(65536, socket.CMSG_SPACE(4 * 4))
        fds = []
        for level, kind, data in anc:
            self.assertEqual((level, kind), (socket.SOL_SOCKET, socket.SCM_RIGHTS))
            fds += list(struct.unpack("<%di" % (len(data) // 4), data))
        self.assertEqual(len(fds), 1)
        self.assertEqual(os.fstat(fds[0]).st_ino, os.fstat(self.dir_fd).st_ino)
        for fd in fds:
            os.close(fd)
        off = W.peek_frame(msg, 0)
        rtype, args = W.decode(msg, off, W.peek_frame(msg, off))
        self.assertEqual(rtype, W.REQ_SUBSCRIBE)
        self.assertEqual(args[W.ARG_SUB_FLAGS], W.SUB_CHILDREN)
        self.assertEqual(args[W.ARG_EVENT_MASK], (1 << 1) | (1 << 6))
        self.assertEqual(args[W.ARG_SINCE_ID], 5)
        self.assertEqual(args[W.ARG_EXCLUDE], [b".git", b"*.tmp"])
        self.assertEqual((args[W.ARG_LATENCY_US], args[W.ARG_BATCH], args[W.ARG_RING_DEPTH]),
                         (0, 3, 64))
        self.assertEqual(sub.resume_id, 5)
        c.close()

    def test_fields_are_sent_only_when_asked(self):
        d = self.fake(features=0x1B | fsnote.Feature.FIELDS)
        for req in (1, 2, 3, 4):
            d.say(subscribed(req, 6 + req))
        c = d.connect()
        self.assertTrue(c.features & fsnote.Feature.FIELDS)
        c.subscribe(self.dir_fd)
        c.subscribe(self.dir_fd, fields=fsnote.FIELD_PID)
        c.subscribe(self.dir_fd, fields=0)
        c.subscribe(self.dir_fd, fields=fsnote.FIELD_STAT | fsnote.FIELD_PID)
        got = [args.get(W.ARG_FIELDS) for rtype, args in d.requests()
               if rtype == W.REQ_SUBSCRIBE]
        self.assertEqual(got, [None, 0x2, 0, 0x3])
        for bad in (4, -1, "stat", True, 1.0):
            with self.assertRaises(ValueError):
                c.subscribe(self.dir_fd, fields=bad)
        self.assertEqual(d.requests(), [])
        c.close()

    def test_fields_need_the_daemons_feature(self):
        d = self.fake()
        c = d.connect()
        self.assertFalse(c.features & fsnote.Feature.FIELDS)
        with self.assertRaises(fsnote.DaemonError) as cm:
            c.subscribe(self.dir_fd, fields=fsnote.FIELD_STAT)
        self.assertEqual(cm.exception.errno, errno.EOPNOTSUPP)
        self.assertIn("does not support choosing event fields", cm.exception.strerror)
        # nothing the daemon would refuse as malformed was sent ...
        self.assertEqual([rtype for rtype, args in d.requests()], [W.REQ_HELLO])
        # ... and the connection is as good as before
        d.say(subscribed(1, 7))
        sub = c.subscribe(self.dir_fd)
        (rtype, args), = d.requests()
        self.assertEqual(rtype, W.REQ_SUBSCRIBE)
        self.assertNotIn(W.ARG_FIELDS, args)
        d.say(event(7, 101, 1, b"/w/a"))
        self.assertEqual(sub.read(5).id, 101)
        c.close()

    def test_events_and_their_attributes(self):
        d = self.fake()
        c, sub = self._subscribed_conn(d)
        d.say(event(7, 101, 6, b"/w/a\xff", flags=0x8, extra=[
            (W.ARG_DEST_PATH, s(b"/w/b")), (W.ARG_DEST_INO, u64(9)), (W.ARG_INO, u64(8))]))
        d.say(event(7, 102, 8, b"/w", flags=0x6, extra=[
            (W.ARG_COUNT, u64(3)), (W.ARG_ID_FIRST, u64(50)), (W.ARG_ID_LAST, u64(52)),
            (W.ARG_RESCAN_PATH, s(b"/w/sub"))]))
        d.say(event(99, 103, 1, b"/w/other"))     # not ours: ignored
        ev = sub.read(5)
        self.assertEqual((ev.id, ev.type, ev.path_bytes, ev.dest), (101, "rename", b"/w/a\xff", "/w/b"))
        self.assertIs(ev.type, fsnote.EventType.RENAME)
        self.assertEqual(ev.path, os.fsdecode(b"/w/a\xff"))
        self.assertEqual(os.fsencode(ev.path), b"/w/a\xff")
        self.assertTrue(ev.is_dir)
        self.assertEqual((ev.ino, ev.dest_ino, ev.mode, ev.dest_mode), (8, 9, None, None))
        self.assertEqual((ev.pid, ev.time_ns), (42, 1700000000123456789))
        self.assertIs(ev.subscription, sub)
        ev = sub.read(5)
        self.assertEqual((ev.type, ev.count, ev.id_first, ev.id_last, ev.rescan),
                         ("dropped", 3, 50, 52, "/w/sub"))
        self.assertTrue(ev.flags & fsnote.Flag.MUST_RESCAN)
        self.assertIsNone(sub.read(0))
        self.assertEqual(sub.last_id, 102)
        c.close()

    def test_garbage_after_events_raises_and_stays_dead(self):
        d = self.fake()
        c, sub = self._subscribed_conn(d)
        d.say(event(7, 101, 1, b"/w/a"))
        d.say(b"\x20\x00\x00\x00\x01\x03\x00\x00" + os.urandom(24))
        self.assertEqual(sub.read(5).path, "/w/a")
        for _ in range(2):
            with self.assertRaises(fsnote.ProtocolError) as cm:
                sub.read(5)
            self.assertEqual(cm.exception.errno, errno.EBADMSG)
        with self.assertRaises(fsnote.ProtocolError):
            c.current_id()
        c.close()

    def test_an_endless_frame_is_refused_without_waiting_for_it(self):
        d = self.fake()
        c, sub = self._subscribed_conn(d)
        d.say(struct.pack("<IHH", 0xFFFFFFF0, W.REC_EVENT, 0))   # and nothing more
        with self.assertRaises(fsnote.ProtocolError) as cm:
            sub.read(30)
        self.assertEqual(cm.exception.errno, errno.EMSGSIZE)
        c.close()

    def test_truncated_frame_then_close_is_a_lost_connection(self):
        d = self.fake()
        c, sub = self._subscribed_conn(d)
        d.say(event(7, 101, 1, b"/w/a")[:30])
        d.close()
        with self.assertRaises(fsnote.ConnectionLostError) as cm:
            sub.read(5)
        self.assertIsInstance(cm.exception, ConnectionError)
        c.close()

    def test_error_reply_and_closing_error(self):
        d = self.fake()
        d.say(frame(W.REP_ERROR, (W.ARG_REQ_ID, u32(1)), (W.ARG_ERRNO, u32(errno.ERANGE)),
                    (W.ARG_MESSAGE, s(b"the history does not reach back so far"))))
        c = d.connect()
        with self.assertRaises(fsnote.DaemonError) as cm:
            c.id_at(0)
        self.assertEqual(cm.exception.errno, errno.ERANGE)
        self.assertIn("history", str(cm.exception))
        d.say(frame(W.REP_ERROR, (W.ARG_ERRNO, u32(errno.EBADMSG)),
                    (W.ARG_MESSAGE, s(b"malformed frame"))))
        with self.assertRaises(fsnote.ConnectionLostError) as cm:
            c.current_id()
        self.assertEqual(cm.exception.errno, errno.EBADMSG)
        c.close()

    def test_shutdown(self):
        d = self.fake()
        c, sub = self._subscribed_conn(d)
        d.say(event(7, 101, 1, b"/w/a"))
        d.say(frame(W.REC_SHUTDOWN, (W.ARG_MESSAGE, s(b"fsnoted is shutting down"))))
        self.assertEqual(sub.read(5).id, 101)
        with self.assertRaises(fsnote.ConnectionLostError) as cm:
            sub.read(5)
        self.assertEqual(cm.exception.errno, errno.ESHUTDOWN)
        # still raised, and a connection on a given socket has nowhere to go back to
        with self.assertRaises(fsnote.ConnectionLostError):
            c.read(0)
        with self.assertRaises(ValueError):
            c.reconnect(timeout=0)
        c.close()

    def test_a_reply_where_an_event_belongs(self):
        d = self.fake()
        c, sub = self._subscribed_conn(d)
        d.say(frame(W.REQ_STATUS, (W.ARG_REQ_ID, u32(1))))
        with self.assertRaises(fsnote.ProtocolError) as cm:
            sub.read(5)
        self.assertEqual(cm.exception.errno, errno.EPROTO)
        c.close()

    def test_a_full_queue_gives_way_to_a_dropped_record(self):
        d = self.fake()
        c, sub = self._subscribed_conn(d, queue_max=4)
        for i in range(10):
            d.say(event(7, 101 + i, 1, b"/w/f%d" % i))
        d.say(subscribed(2, 8, root=b"/w2"))
        other = c.subscribe(self.dir_fd)      # reads all ten events while it waits
        self.assertEqual(len(sub._q), 2)
        ev = sub.read(0)
        self.assertEqual((ev.type, ev.count, ev.rescan), ("dropped", 9, "/w"))
        self.assertTrue(ev.flags & fsnote.Flag.RING_OVERFLOW)
        self.assertEqual(sub.read(0).id, 110)
        self.assertIsNone(sub.read(0))
        self.assertIsNone(other.read(0))
        c.close()

    def test_sub_ended_ends_iteration(self):
        d = self.fake()
        c, sub = self._subscribed_conn(d)
        d.say(event(7, 101, 1, b"/w/a"))
        d.say(event(7, 102, 7, b"/w", flags=0x808))
        got = [ev.type for ev in sub]
        self.assertEqual(got, ["create", "unmount"])
        self.assertTrue(sub.ended)
        with self.assertRaises(fsnote.Error) as cm:
            sub.flush()
        self.assertEqual(cm.exception.errno, errno.ENOENT)
        c.close()

    def test_damaged_streams_raise_only_fsnote_errors(self):
        rng = random.Random(1818)
        good = [event(7, 101, 1, b"/w/a"), event(7, 102, 6, b"/w/a", extra=[
            (W.ARG_DEST_PATH, s(b"/w/b"))]), frame(W.REC_SHUTDOWN, (W.ARG_MESSAGE, s(b"bye"))),
            subscribed(9, 3), frame(W.REP_ERROR, (W.ARG_ERRNO, u32(5)), (W.ARG_MESSAGE, s(b"x")))]
        outcomes = set()
        for _ in range(300):
            d = self.fake()
            d.say(subscribed(1, 7))
            c = d.connect()
            sub = c.subscribe(self.dir_fd)
            stream = bytearray(b"".join(rng.choice(good) for _ in range(rng.randint(1, 6))))
            for _ in range(rng.randint(0, 3)):
                stream[rng.randrange(len(stream))] = rng.randrange(256)
            d.say(bytes(stream[:rng.randint(0, len(stream))]))
            d.end.close()
            try:
                for _ in range(100):
                    ev = sub.read(0) if rng.random() < 0.5 else c.read(0)
                    self.assertTrue(ev is None or isinstance(ev, fsnote.Event))
                    if ev is None and rng.random() < 0.3:
                        c.current_id()
                self.fail("a closed stream never ended")
            except fsnote.Error as e:
                outcomes.add(type(e).__name__)
            c.close()
        self.assertIn("ProtocolError", outcomes)
        self.assertIn("ConnectionLostError", outcomes)

    def test_fileno_is_readable_exactly_while_there_is_work(self):
        d = self.fake()
        c, sub = self._subscribed_conn(d)
        sel = selectors.DefaultSelector()
        sel.register(c, selectors.EVENT_READ)
        self.assertEqual(sel.select(0), [])
        d.say(event(7, 101, 1, b"/w/a") + event(7, 102, 1, b"/w/b"))
        self.assertEqual(len(sel.select(5)), 1)
        self.assertEqual(c.read(0).id, 101)
        # the second event is already in our buffer, not in the socket
        self.assertEqual(len(sel.select(0)), 1)
        self.assertEqual(c.read(0).id, 102)
        self.assertIsNone(c.read(0))
        self.assertEqual(sel.select(0), [])
        sel.close()
        c.close()

    def test_connection_read_keeps_arrival_order(self):
        d = self.fake()
        c, a = self._subscribed_conn(d)
        d.say(subscribed(2, 8))
        b = c.subscribe(self.dir_fd)
        d.say(event(8, 1, 1, b"/w/1") + event(7, 2, 1, b"/w/2") + event(8, 3, 1, b"/w/3"))
        got = [c.read(5) for _ in range(3)]
        self.assertEqual([e.id for e in got], [1, 2, 3])
        self.assertEqual([e.subscription for e in got], [b, a, b])
        c.close()

    def test_asyncio(self):
        import asyncio
        d = self.fake()
        c, sub = self._subscribed_conn(d)

        async def main():
            loop = asyncio.get_running_loop()
            loop.call_later(0.05, d.say, event(7, 101, 1, b"/w/a"))
            loop.call_later(0.1, d.say, event(7, 102, 7, b"/w", flags=0x808))
            return [ev.id async for ev in sub]
        self.assertEqual(asyncio.run(main()), [101, 102])
        c.close()

    def test_asyncio_on_the_connection(self):
        import asyncio
        d = self.fake()
        c, sub = self._subscribed_conn(d)

        async def main():
            self.assertIsNone(await c.aread(timeout=0.01))
            asyncio.get_running_loop().call_later(0.02, d.say, event(7, 5, 1, b"/w/a") +
                                                  event(7, 6, 2, b"/w/a"))
            got = []
            async for ev in c:
                got.append((ev.id, str(ev.type)))
                if len(got) == 2:
                    break
            return got
        self.assertEqual(asyncio.run(main()), [(5, "create"), (6, "delete")])
        c.close()


if __name__ == "__main__":
    unittest.main()
