"""How long a server may keep an Idempotency-Key, and which uses of a key observe may then judge together.

The contract is silent on it; the IETF Idempotency-Key draft lets a server expire keys (and publish
the period), and Stripe prunes keys once they are at least 24 hours old. So observe assumes a key
may be forgotten `retention` seconds after it was first stored (`--key-retention`, default 24 h,
`forever` for a server that keeps them), and never later judges a use of the key against the
others: a different run, or a 202 for another body, is then what a correct server does.

Only the earliest moment a key can expire is known (its first use's start plus the retention): a
server that prunes lazily ("at least 24 h old") may still hold it at any time after, so the uses
after that moment cannot be put in a generation of their own either: two of them may straddle the
pruning. For each (credential, key):

- the bound is the earliest start of a use that may have stored the key (every use but one
  answered 400, 401, 413 or 415, which the contract says does not use up a key; an unanswered one
  may have been handled), plus the retention;
- a use answered by then is judged as before; one answered later is not judged on its key: a 202
  keeps the key, suffixed to be its own alone (a replay's RunRef may show the run as it was when
  first answered, and a keyed 202's window says so), any other answer loses the key;
- if a use answered late was sent by then, it may have been the cause of an earlier use's 409, so
  no answered use of the key is judged;
- an unanswered use keeps its key: it is never judged itself and may be a cause of another's 409.

An untimed use has no place in time: it may have come after any expiry, so with a finite retention
a key with one is not judged at all (its bound is the epoch's start plus the retention). With a
history limit (the live observer's segments), a key seen in a later segment may have been stored in
an earlier one, which is not remembered: its bound counts from the earliest keyed use of them all.
"""

from __future__ import annotations

import dataclasses
import math

from conformance.history import Operation

__all__ = ["DEFAULT_RETENTION", "KeyRetention"]

DEFAULT_RETENTION = 86400.0  # 24 hours: Stripe's, and what observe assumes when not told
_NO_KEY_USE = frozenset({400, 401, 413, 415})  # rejected before a run is created: the key is not used up


class KeyRetention:
    """The uses of each key as the builder adds them, resolved into the Operations' keys on demand."""

    def __init__(self, seconds: float | None, before: float = math.inf) -> None:
        self.seconds = seconds  # None: keys are kept forever
        # The earliest keyed use of the history segments before this one (conformance/observe.py): a key
        # seen here may have been stored then, and what it was is not remembered.
        self.earliest = before
        self._before = before
        self._uses: dict[tuple[str, str], list[int]] = {}
        self._recorded: dict[int, tuple[str, str | None]] = {}  # (key, body fingerprint) of uses judged on the key
        self._dirty: set[tuple[str, str]] = set()
        self._unjudged: dict[tuple[str, str], set[int]] = {}
        self._forgotten: set[int] = set()

    def note(self, credential: str, key: str, index: int, invoked: float, fingerprint: str | None) -> None:
        """A use of `key` (operation `index`); `fingerprint` None: its body is unknown and it is never judged."""
        part = (credential, key)
        self.earliest = min(self.earliest, invoked)
        self._uses.setdefault(part, []).append(index)
        if fingerprint is not None:
            self._recorded[index] = (key, fingerprint)
        if self.seconds is not None:
            self._dirty.add(part)

    @property
    def unjudged(self) -> int:
        """Answered 202s whose key may have expired: counted by the history as CONC-003/004 instances, never one."""
        return len(self._forgotten)

    def forgotten(self, index: int) -> bool:
        """Operation `index` is one of those 202s (as of the last `apply`)."""
        return index in self._forgotten

    def apply(self, operations: list[Operation]) -> None:
        """Give each use of a key added since the last call the key it is judged under (in place)."""
        for part in self._dirty:
            self._resolve(part, operations)
        self._dirty.clear()

    def _resolve(self, part: tuple[str, str], operations: list[Operation]) -> None:
        assert self.seconds is not None
        uses = [operations[i] for i in self._uses[part]]
        stored = [op.invoked for op in uses if op.status not in _NO_KEY_USE]
        bound = min([*stored, self._before]) + self.seconds
        late = [op for op in uses if op.completed is not None and op.completed > bound]
        straddled = any(op.invoked <= bound for op in late)
        self._forgotten -= self._unjudged.pop(part, set())
        unjudged = self._unjudged[part] = set()
        for op in uses:
            if op.index not in self._recorded:
                continue
            key, fingerprint = self._recorded[op.index]
            wanted: tuple[str | None, str | None] = (key, fingerprint)
            if op.completed is not None and (straddled or op.completed > bound):
                if op.status == 202:
                    wanted = (f"{key} [op #{op.index}: the server may have forgotten it]", fingerprint)
                    unjudged.add(op.index)
                else:
                    wanted = (None, None)
            if (op.key, op.body_fingerprint) != wanted:
                operations[op.index] = dataclasses.replace(op, key=wanted[0], body_fingerprint=wanted[1])
        self._forgotten |= unjudged
