"""Run the `portsec` command in-process, as a user would type it."""

from __future__ import annotations

import io
import logging
import shlex
from dataclasses import dataclass

from portsec.cli.app import PortsecApp

# `port show server1 -c allowed_address_pairs` in the seed document, once the VIP pair is set.
SEED_PAIR_TABLE = (
    "+-----------------------+------------------------------------------------------------+\n"
    "| Field                 | Value                                                      |\n"
    "+-----------------------+------------------------------------------------------------+\n"
    "| allowed_address_pairs | ip_address='192.168.1.10', mac_address='fa:16:3e:3e:e3:14' |\n"
    "+-----------------------+------------------------------------------------------------+\n"
)


@dataclass
class Result:
    code: int
    out: str
    err: str


def run(command: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    app = PortsecApp()
    app.stdout, app.stderr = out, err
    root = logging.getLogger()
    handlers = list(root.handlers)
    try:
        code = app.run(shlex.split(command))
    finally:
        # cliff adds a console handler on every run; keep runs independent.
        for handler in root.handlers[len(handlers) :]:
            root.removeHandler(handler)
    return Result(code, out.getvalue(), err.getvalue())
