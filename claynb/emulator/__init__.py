"""The Clay emulator: Clay's Public API v0, webhook sources, meters, latency and faults.

:class:`Emulator` runs it in-process on a free loopback port; ``claynb emulator``
serves it from the command line. The pure core (meters, runs, rate limits, tables) is
in ``_state`` and friends; ``_app``, ``_admin`` and ``_server`` are the HTTP edges.
"""

from claynb.emulator._faults import Faults
from claynb.emulator._recorder import Recorded, RecordingServer
from claynb.emulator._server import Emulator
from claynb.wire._signatures import SIGNATURE_HEADER, sign

__all__ = ["SIGNATURE_HEADER", "Emulator", "Faults", "Recorded", "RecordingServer", "sign"]
