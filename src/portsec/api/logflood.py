"""A logging filter that lets one line per condition through per interval and counts the rest.

A client can make the server log on every connection or request (refused,
malformed, timed out, accept() failing for want of files); without a bound the
log grows by megabytes a second and the disk is the next thing to fill. A
condition is the logger, the level and the first line of the message template
(before its arguments are put in), so "refused: 812 open" and "refused: 813
open" are one condition. The first line after an interval says how many were
not logged: ``portsec serve`` installs it on every handler of its log. A record
that reaches several handlers (the console and --log-file) is judged once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

INTERVAL = 10.0
_VERDICT = "portsec_flood_verdict"  # kept on the record, for the next handler that asks
_MAX_CONDITIONS = 1024  # templates are finite, but one built with an f-string is not: forget old ones past this


class RateLimit(logging.Filter):
    def __init__(self, interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()  # handlers call filters outside their own lock, from any thread
        self._windows: dict[tuple[str, int, str], list[float]] = {}  # condition -> [start, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        verdict = getattr(record, _VERDICT, None)
        if verdict is None:
            verdict = self._judge(record)
            setattr(record, _VERDICT, verdict)
        return bool(verdict)

    def _judge(self, record: logging.LogRecord) -> bool:
        condition = (record.name, record.levelno, str(record.msg).split("\n", 1)[0][:200])
        now = self.clock()
        with self._lock:
            window = self._windows.get(condition)
            if window is not None and now - window[0] < self.interval:
                window[1] += 1
                return False
            if window is not None and window[1]:
                # No '%' in what is added: the template is still formatted with the record's arguments.
                record.msg = f"{record.msg} [{int(window[1])} more like this in the last {now - window[0]:.0f} s]"
            if len(self._windows) >= _MAX_CONDITIONS:
                self._windows = {k: w for k, w in self._windows.items() if now - w[0] < self.interval}
                if len(self._windows) >= _MAX_CONDITIONS:
                    self._windows.clear()
            self._windows[condition] = [now, 0]
        return True
