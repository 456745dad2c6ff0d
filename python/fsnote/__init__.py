# SPDX-License-Identifier: LGPL-2.1-or-later
"""fsnote: a pure-Python client of fsnoted, the filesystem notification
daemon (the protocol of fsnote-protocol(7); only the standard library).

    import fsnote

    with fsnote.connect() as c:
        sub = c.subscribe("/srv/data", types={"create", "delete", "rename"},
                          exclude=[".git", "*.tmp"])
        for ev in sub:
            print(ev.id, ev.type, ev.path, ev.dest or "")

Events are ``Event`` objects with typed attributes; ``Connection.fileno()``
serves select/selectors; ``async for ev in sub`` serves asyncio; failures
are OSError subclasses carrying an errno (the daemon's, for its refusals).
See fsnote-python(3) and python/README.md.
"""

from ._wire import PROTOCOL_VERSION, Error, ProtocolError
from ._client import (DEFAULT_SOCKET, DEFAULT_TYPES, FIELD_PID, FIELD_STAT, Connection,
                      ConnectionLostError, DaemonError, Event, EventType, Feature, Flag,
                      Subscription, connect)

__version__ = "0.1.0"

__all__ = [
    "connect", "Connection", "Subscription", "Event", "EventType", "Flag", "Feature",
    "Error", "DaemonError", "ProtocolError", "ConnectionLostError",
    "DEFAULT_SOCKET", "DEFAULT_TYPES", "PROTOCOL_VERSION", "FIELD_STAT", "FIELD_PID",
]
