"""The receiving side of a store node: the only code that touches pynetdicom internals.

It enters through pynetdicom's server hooks (`AE.make_server(server_class=...,
request_handler=...)`) with subclasses of its server, request handler, socket,
association and DUL classes; it patches no module and no instance. `capabilities()`
checks every private name it uses; where one is missing the node runs on stock
pynetdicom (see store.acceptor.server).
"""

from __future__ import annotations

import threading

from pynetdicom import AE

from store.acceptor.limits import Limits
from store.acceptor.server import Capabilities, StoreServer, capabilities, make_server

__all__ = ["Capabilities", "Limits", "StoreServer", "capabilities", "make_server", "serve"]


def serve(ae: AE, server: StoreServer, name: str) -> None:
    """Serve in a daemon thread; `ae.shutdown()` stops the server as it stops those of
    `AE.start_server()` (which takes no server class in pynetdicom 3.0)."""
    ae._servers.append(server)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                     name=name, daemon=True).start()
