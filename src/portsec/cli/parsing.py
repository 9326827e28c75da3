"""argparse pieces shared by the commands: OSC's key=value,key=value options."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any


class KeyValueList(argparse.Action):
    """``--opt k1=v1,k2=v2`` (repeatable) -> a list of dicts, keys checked like osc-lib."""

    def __init__(self, *args: Any, required_keys: Sequence[str] = (), optional_keys: Sequence[str] = (), **kw: Any):
        super().__init__(*args, **kw)
        self.required_keys = list(required_keys)
        self.optional_keys = list(optional_keys)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option=None):  # type: ignore[no-untyped-def]
        entry: dict[str, str] = {}
        for part in str(values).split(","):
            if "=" not in part:
                raise argparse.ArgumentError(self, f"Expected 'key=value' type, but got: {part}")
            key, value = part.split("=", 1)
            entry[key] = value
        valid = self.required_keys + self.optional_keys
        invalid = [k for k in entry if k not in valid]
        if invalid:
            raise argparse.ArgumentError(
                self, f"Invalid keys {', '.join(invalid)} specified.\nValid keys are: {', '.join(valid)}"
            )
        missing = [k for k in self.required_keys if k not in entry]
        if missing:
            raise argparse.ArgumentError(
                self,
                f"Missing required keys {', '.join(missing)}.\nRequired keys are: {', '.join(self.required_keys)}",
            )
        items = getattr(namespace, self.dest, None) or []
        setattr(namespace, self.dest, [*items, entry])


def enable_disable(parser: argparse.ArgumentParser, what: str, dest: str, enable: str, disable: str) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(enable, dest=dest, action="store_const", const=True, help=f"Enable {what}")
    group.add_argument(disable, dest=dest, action="store_const", const=False, help=f"Disable {what}")


def count(text: str) -> int:
    """A whole number >= 0 (an option or its environment variable); argparse prints the refusal."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value
