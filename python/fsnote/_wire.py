# SPDX-License-Identifier: LGPL-2.1-or-later
"""The fsnote wire format: frames of typed arguments, as fsnote-protocol(7)
describes them.

This module owns encoding requests and decoding whatever the daemon sends.
The decoder applies the rules of fsnote-protocol(7) in the order the page
gives them, as the C codec does: the frame length is bounded before the body
is believed, every argument header and value is checked against the bytes
left, each value's length against its kind, each argument against its record
type's table of allowed, required and repeatable arguments.  A frame that
breaks a rule raises ``ProtocolError``; nothing read from the socket is ever
trusted further than that.  Nothing here does I/O.
"""

import errno
import struct

PROTOCOL_VERSION = 1

FRAME_HEADER_SIZE = 8
ARG_HEADER_SIZE = 8
FRAME_MIN = FRAME_HEADER_SIZE + ARG_HEADER_SIZE
FRAME_MAX = 1024 * 1024
REQUEST_MAX = 64 * 1024
ARGS_MAX = 64
PATH_MAX = 4096
MESSAGE_MAX = 1024
EXCLUDES_MAX = 32
PATTERN_MAX = 256
NAME_MAX = 256

# record types
REQ_HELLO = 0x0101
REQ_SUBSCRIBE = 0x0102
REQ_UNSUBSCRIBE = 0x0103
REQ_CURRENT_ID = 0x0104
REQ_STATUS = 0x0105
REQ_INJECT = 0x0106
REQ_FLUSH = 0x0107
REP_HELLO = 0x0201
REP_SUBSCRIBED = 0x0202
REP_UNSUBSCRIBED = 0x0203
REP_CURRENT_ID = 0x0204
REP_STATUS = 0x0205
REP_INJECTED = 0x0206
REP_FLUSHED = 0x0207
REP_ERROR = 0x02FF
REC_EVENT = 0x0301
REC_SHUTDOWN = 0x0302

# argument types
ARG_DONE = 0x00
ARG_ID = 0x01
ARG_EVENT_TYPE = 0x02
ARG_FLAGS = 0x03
ARG_TIME = 0x04
ARG_PID = 0x05
ARG_PATH = 0x06
ARG_DEV = 0x07
ARG_INO = 0x08
ARG_MODE = 0x09
ARG_UID = 0x0A
ARG_GID = 0x0B
ARG_DEST_PATH = 0x0C
ARG_DEST_DEV = 0x0D
ARG_DEST_INO = 0x0E
ARG_DEST_MODE = 0x0F
ARG_DEST_UID = 0x10
ARG_DEST_GID = 0x11
ARG_COUNT = 0x12
ARG_ID_FIRST = 0x13
ARG_ID_LAST = 0x14
ARG_RESCAN_PATH = 0x15
ARG_REQ_ID = 0x20
ARG_SUB_ID = 0x21
ARG_SUB_FLAGS = 0x22
ARG_EVENT_MASK = 0x23
ARG_DEV_FILTER = 0x24
ARG_RING_DEPTH = 0x25
ARG_LATENCY_US = 0x26
ARG_BATCH = 0x27
ARG_SINCE_ID = 0x28
ARG_EXCLUDE = 0x29
ARG_FIELDS = 0x2B
ARG_VERSION = 0x30
ARG_ERRNO = 0x31
ARG_MESSAGE = 0x32
ARG_JSON = 0x33
ARG_CLIENT_NAME = 0x34
ARG_SERVER_VERSION = 0x35
ARG_FEATURES = 0x36
ARG_BACKEND = 0x37

SUB_CHILDREN = 0x1
SUB_SYSTEM = 0x2

# FIELDS bits: the optional parts of events
FIELD_STAT = 0x1
FIELD_PID = 0x2
FIELDS_ALL = FIELD_STAT | FIELD_PID

EV_MAX = 12
EV_DROPPED = 8
EV_RENAME = 6
EV_ALL_MASK = ((1 << (EV_MAX + 1)) - 1) & ~1

# Kinds: 0 invalid, 4 / 8 the integer widths, 's' a string with its limit.
_U32 = (ARG_EVENT_TYPE, ARG_FLAGS, ARG_PID, ARG_MODE, ARG_UID, ARG_GID,
        ARG_DEST_MODE, ARG_DEST_UID, ARG_DEST_GID, ARG_REQ_ID, ARG_SUB_ID,
        ARG_SUB_FLAGS, ARG_RING_DEPTH, ARG_LATENCY_US, ARG_BATCH, ARG_VERSION,
        ARG_ERRNO, ARG_FIELDS)
_U64 = (ARG_ID, ARG_TIME, ARG_DEV, ARG_INO, ARG_DEST_DEV, ARG_DEST_INO,
        ARG_COUNT, ARG_ID_FIRST, ARG_ID_LAST, ARG_EVENT_MASK, ARG_DEV_FILTER,
        ARG_SINCE_ID, ARG_FEATURES)
_STRING_MAX = {
    ARG_PATH: PATH_MAX, ARG_DEST_PATH: PATH_MAX, ARG_RESCAN_PATH: PATH_MAX,
    ARG_EXCLUDE: PATTERN_MAX, ARG_MESSAGE: MESSAGE_MAX, ARG_JSON: FRAME_MAX,
    ARG_CLIENT_NAME: NAME_MAX, ARG_SERVER_VERSION: NAME_MAX, ARG_BACKEND: NAME_MAX,
}
# per argument number below 64: 4, 8, or a string limit as a negative number
# (so that one table lookup tells integer width from string), None if invalid
_KIND = [None] * 64
for _a in _U32:
    _KIND[_a] = 4
for _a in _U64:
    _KIND[_a] = 8
for _a, _m in _STRING_MAX.items():
    _KIND[_a] = -_m
del _a, _m


def _bits(*args):
    m = 0
    for a in args:
        m |= 1 << a
    return m


_EVENT_ARGS = _bits(ARG_SUB_ID, ARG_ID, ARG_EVENT_TYPE, ARG_FLAGS, ARG_TIME, ARG_PID,
                    ARG_PATH, ARG_DEV, ARG_INO, ARG_MODE, ARG_UID, ARG_GID,
                    ARG_DEST_PATH, ARG_DEST_DEV, ARG_DEST_INO, ARG_DEST_MODE,
                    ARG_DEST_UID, ARG_DEST_GID, ARG_COUNT, ARG_ID_FIRST,
                    ARG_ID_LAST, ARG_RESCAN_PATH)

# record type: (allowed, required, repeatable), the table of fsnote-protocol(7)
RULES = {
    REQ_HELLO: (_bits(ARG_VERSION, ARG_CLIENT_NAME), _bits(ARG_VERSION), 0),
    REQ_SUBSCRIBE: (_bits(ARG_REQ_ID, ARG_SUB_FLAGS, ARG_EVENT_MASK, ARG_DEV_FILTER,
                          ARG_RING_DEPTH, ARG_LATENCY_US, ARG_BATCH, ARG_SINCE_ID,
                          ARG_EXCLUDE, ARG_PATH, ARG_FIELDS),
                    _bits(ARG_REQ_ID, ARG_SUB_FLAGS), _bits(ARG_EXCLUDE)),
    REQ_UNSUBSCRIBE: (_bits(ARG_REQ_ID, ARG_SUB_ID), _bits(ARG_REQ_ID, ARG_SUB_ID), 0),
    REQ_CURRENT_ID: (_bits(ARG_REQ_ID, ARG_TIME), _bits(ARG_REQ_ID), 0),
    REQ_STATUS: (_bits(ARG_REQ_ID), _bits(ARG_REQ_ID), 0),
    REQ_INJECT: (_bits(ARG_REQ_ID, ARG_EVENT_TYPE, ARG_PATH, ARG_FLAGS, ARG_PID,
                       ARG_DEST_PATH, ARG_DEV, ARG_INO, ARG_MODE, ARG_UID, ARG_GID),
                 _bits(ARG_REQ_ID, ARG_EVENT_TYPE, ARG_PATH), 0),
    REQ_FLUSH: (_bits(ARG_REQ_ID, ARG_SUB_ID), _bits(ARG_REQ_ID, ARG_SUB_ID), 0),
    REP_HELLO: (_bits(ARG_VERSION, ARG_SERVER_VERSION, ARG_FEATURES, ARG_BACKEND),
                _bits(ARG_VERSION), 0),
    REP_SUBSCRIBED: (_bits(ARG_REQ_ID, ARG_SUB_ID, ARG_ID, ARG_PATH, ARG_DEV, ARG_FLAGS,
                           ARG_MESSAGE, ARG_BACKEND),
                     _bits(ARG_REQ_ID, ARG_SUB_ID, ARG_ID), 0),
    REP_UNSUBSCRIBED: (_bits(ARG_REQ_ID, ARG_SUB_ID), _bits(ARG_REQ_ID, ARG_SUB_ID), 0),
    REP_CURRENT_ID: (_bits(ARG_REQ_ID, ARG_ID), _bits(ARG_REQ_ID, ARG_ID), 0),
    REP_STATUS: (_bits(ARG_REQ_ID, ARG_JSON), _bits(ARG_REQ_ID, ARG_JSON), 0),
    REP_INJECTED: (_bits(ARG_REQ_ID, ARG_ID), _bits(ARG_REQ_ID, ARG_ID), 0),
    REP_FLUSHED: (_bits(ARG_REQ_ID, ARG_SUB_ID, ARG_ID),
                  _bits(ARG_REQ_ID, ARG_SUB_ID, ARG_ID), 0),
    REP_ERROR: (_bits(ARG_REQ_ID, ARG_ERRNO, ARG_MESSAGE), _bits(ARG_ERRNO, ARG_MESSAGE), 0),
    REC_EVENT: (_EVENT_ARGS,
                _bits(ARG_SUB_ID, ARG_ID, ARG_EVENT_TYPE, ARG_FLAGS, ARG_TIME, ARG_PID,
                      ARG_PATH), 0),
    REC_SHUTDOWN: (_bits(ARG_MESSAGE), _bits(ARG_MESSAGE), 0),
}

_HDR = struct.Struct("<IHH")      # frame: length, type, reserved
_ARG = struct.Struct("<HHI")      # argument: type, reserved, length
_U32S = struct.Struct("<I")
_U64S = struct.Struct("<Q")


class Error(OSError):
    """Every error of this package: an OSError whose ``errno`` and
    ``strerror`` say what went wrong (for the daemon's refusals, its errno
    and its message)."""


class ProtocolError(Error):
    """The peer sent something that breaks fsnote-protocol(7).

    ``errno`` says which rule: EBADMSG (malformed), EMSGSIZE (too long),
    EPROTONOSUPPORT (an unknown record type or version), EPROTO (a record
    that makes no sense where it came).  The connection is unusable after it.
    """

    def __init__(self, err, message):
        super().__init__(err, message)


def _bad(message, err=errno.EBADMSG):
    return ProtocolError(err, message)


def peek_frame(buf, off, limit=FRAME_MAX):
    """The length of the frame at ``buf[off:]``, or 0 when its header or body
    has not all arrived.  Raises ProtocolError as soon as the header shows the
    frame is malformed or longer than ``limit``, before its body is read."""
    if len(buf) - off < FRAME_HEADER_SIZE:
        return 0
    length, _type, reserved = _HDR.unpack_from(buf, off)
    if length < FRAME_MIN or reserved != 0:
        raise _bad("malformed frame header (length %d, reserved %d)" % (length, reserved))
    if length > limit or length > FRAME_MAX:
        raise _bad("frame of %d bytes exceeds the limit of %d" % (length, min(limit, FRAME_MAX)),
                   errno.EMSGSIZE)
    if len(buf) - off < length:
        return 0
    return length


def decode(buf, off, length):
    """Decodes the frame ``buf[off:off+length]`` (as found by peek_frame()).

    Returns ``(record_type, args)`` where ``args`` maps each argument number to
    its value: an int for the integer kinds, bytes without the NUL for
    strings, and for a repeatable argument a list of them.  Raises
    ProtocolError for anything fsnote-protocol(7) refuses."""
    end = off + length
    if length < FRAME_MIN or end > len(buf):
        raise _bad("truncated frame")
    flen, rtype, reserved = _HDR.unpack_from(buf, off)
    if flen != length or reserved != 0:
        raise _bad("frame length does not match")
    rule = RULES.get(rtype)
    if rule is None:
        raise _bad("unknown record type 0x%04x" % rtype, errno.EPROTONOSUPPORT)
    allowed, required, repeatable = rule
    args = {}
    p = off + FRAME_HEADER_SIZE
    if rtype == REC_EVENT:
        p, seen, n = _event_fast(buf, p, end, args)
    else:
        seen = n = 0
    unpack_arg = _ARG.unpack_from
    kinds = _KIND
    while True:
        if p + ARG_HEADER_SIZE > end:
            raise _bad("argument header runs past the frame")
        arg, res, vlen = unpack_arg(buf, p)
        p += ARG_HEADER_SIZE
        # vlen is at most 2**32-1 and p a Python int: no wrap-around
        if res != 0 or p + vlen > end:
            raise _bad("argument 0x%04x: bad header or length %d" % (arg, vlen))
        if arg == ARG_DONE:
            if vlen != 0 or p != end:
                raise _bad("DONE is not the last argument or has a value")
            break
        bit = 1 << arg if arg < 64 else 0
        if not (allowed & bit):
            raise _bad("argument 0x%04x not allowed in record 0x%04x" % (arg, rtype))
        if seen & bit and not (repeatable & bit):
            raise _bad("argument 0x%04x repeated" % arg)
        kind = kinds[arg]
        if kind == 4 or kind == 8:
            if vlen != kind:
                raise _bad("argument 0x%04x: length %d for an integer of %d" % (arg, vlen, kind))
            value = (_U32S if kind == 4 else _U64S).unpack_from(buf, p)[0]
        else:
            if vlen < 1 or vlen > -kind or buf[p + vlen - 1] != 0 or \
                    buf.find(b"\0", p, p + vlen - 1) != -1:
                raise _bad("argument 0x%04x: not a valid string" % arg)
            value = bytes(buf[p:p + vlen - 1])
        n += 1
        if n >= ARGS_MAX:
            raise _bad("more than %d arguments" % (ARGS_MAX - 1))
        if repeatable & bit:
            args.setdefault(arg, []).append(value)
        else:
            args[arg] = value
        seen |= bit
        p += vlen
    if seen & required != required:
        raise _bad("record 0x%04x lacks a required argument" % rtype)
    return rtype, args


def _fused(*spec):
    """One struct for a run of integer arguments in a given order: their
    8-byte headers come out as bytes, so that a single tuple comparison
    checks every header (type, reserved zero, exact length) at once."""
    fmt = "<" + "".join("8s" + ("I" if kind == 4 else "Q") for _, kind in spec)
    hdrs = tuple(_ARG.pack(a, 0, kind) for a, kind in spec)
    keys = tuple(a for a, _ in spec)
    return struct.Struct(fmt), hdrs, keys, _bits(*keys)


# The order the daemon writes an event's arguments in (codec_encode_event()).
# Only a shortcut: a frame in any other order goes through the general loop,
# and every rule is checked either way.
_EV_HEAD = _fused((ARG_SUB_ID, 4), (ARG_ID, 8), (ARG_EVENT_TYPE, 4), (ARG_FLAGS, 4),
                  (ARG_TIME, 8), (ARG_PID, 4))
_EV_STAT = _fused((ARG_DEV, 8), (ARG_INO, 8), (ARG_MODE, 4), (ARG_UID, 4), (ARG_GID, 4))


def _event_fast(buf, p, end, args):
    """Decodes the usual head of an event (its six integers, PATH, and the
    five stat integers) into ``args``; returns where it stopped, the
    arguments seen and their count, for the general loop to go on from."""
    st, hdrs, keys, bits = _EV_HEAD
    if end - p < st.size:
        return p, 0, 0
    v = st.unpack_from(buf, p)
    if v[0::2] != hdrs:
        return p, 0, 0
    args.update(zip(keys, v[1::2]))
    p += st.size
    seen = bits
    n = len(keys)
    if end - p < ARG_HEADER_SIZE:
        return p, seen, n
    arg, res, vlen = _ARG.unpack_from(buf, p)
    q = p + ARG_HEADER_SIZE
    if arg != ARG_PATH or res != 0 or not 1 <= vlen <= PATH_MAX or q + vlen > end \
            or buf[q + vlen - 1] != 0 or buf.find(b"\0", q, q + vlen - 1) != -1:
        return p, seen, n        # the general loop says what is wrong, if anything
    args[ARG_PATH] = bytes(buf[q:q + vlen - 1])
    p = q + vlen
    seen |= 1 << ARG_PATH
    n += 1
    st, hdrs, keys, bits = _EV_STAT
    if end - p >= st.size:
        v = st.unpack_from(buf, p)
        if v[0::2] == hdrs:
            args.update(zip(keys, v[1::2]))
            p += st.size
            seen |= bits
            n += len(keys)
    return p, seen, n


class Writer:
    """Builds one frame.  Limits are checked as arguments are added, so a
    finished frame always obeys fsnote-protocol(7)."""

    __slots__ = ("_type", "_parts", "_len", "_n")

    def __init__(self, rtype):
        self._type = rtype
        self._parts = []
        self._len = FRAME_HEADER_SIZE
        self._n = 0

    def _put(self, arg, value):
        if self._n + 1 >= ARGS_MAX:
            raise ValueError("too many arguments for one frame")
        self._parts.append(_ARG.pack(arg, 0, len(value)))
        self._parts.append(value)
        self._len += ARG_HEADER_SIZE + len(value)
        self._n += 1

    def u32(self, arg, value):
        if not 0 <= value <= 0xFFFFFFFF:
            raise ValueError("argument 0x%04x: %r does not fit in 32 bits" % (arg, value))
        self._put(arg, _U32S.pack(value))
        return self

    def u64(self, arg, value):
        if not 0 <= value <= 0xFFFFFFFFFFFFFFFF:
            raise ValueError("argument 0x%04x: %r does not fit in 64 bits" % (arg, value))
        self._put(arg, _U64S.pack(value))
        return self

    def string(self, arg, value):
        """``value`` is bytes without NUL; the NUL is added here."""
        if b"\0" in value:
            raise ValueError("argument 0x%04x: a string may not contain NUL" % arg)
        if len(value) + 1 > _STRING_MAX[arg]:
            raise ValueError("argument 0x%04x: %d bytes exceed the limit of %d"
                             % (arg, len(value), _STRING_MAX[arg] - 1))
        self._put(arg, bytes(value) + b"\0")
        return self

    def finish(self, limit=REQUEST_MAX):
        """The frame as bytes, DONE included."""
        total = self._len + ARG_HEADER_SIZE
        if total > limit:
            raise ValueError("frame of %d bytes exceeds the limit of %d" % (total, limit))
        return b"".join([_HDR.pack(total, self._type, 0)] + self._parts
                        + [_ARG.pack(ARG_DONE, 0, 0)])


def check_event(args):
    """Refuses an EVENT record that decodes but is inconsistent, as
    fsnote-protocol(7) asks of every receiver."""
    etype = args[ARG_EVENT_TYPE]
    if etype == 0 or etype > EV_MAX:
        raise _bad("event type %d out of range" % etype)
    path = args[ARG_PATH]
    dest = args.get(ARG_DEST_PATH)
    rescan = args.get(ARG_RESCAN_PATH)
    if etype == EV_RENAME and dest is None:
        raise _bad("a rename without a destination")
    if etype == EV_DROPPED and rescan is None:
        raise _bad("a dropped record without a rescan path")
    if path:
        if path[0] != 0x2F:
            raise _bad("a relative path")
    elif etype != EV_DROPPED:
        raise _bad("an empty path")
    if dest is not None and (not dest or dest[0] != 0x2F):
        raise _bad("a relative destination")
    if rescan is not None and (not rescan or rescan[0] != 0x2F):
        raise _bad("a relative rescan path")
