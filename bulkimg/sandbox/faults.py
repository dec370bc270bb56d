"""Fault injection for tests: HTTP errors and slow answers on any route, bulk operations that fail
part way or skip lines, media downloads that fail.

A :class:`FaultRule` names a route and what goes wrong there. Rules are checked in the order they
were added; the first one that matches a request applies. ``count`` limits a rule to the first N
requests it matches; ``probability`` (seeded by ``SandboxConfig.fault_seed``) makes it apply to
a random share of them.

The injector also counts every request it is asked about (:meth:`FaultInjector.seen`), before
any delay: a test can hold a client at a route with a ``delay`` rule and act (kill it) once the
shop has seen that request.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Literal, get_args

Route = Literal[
    "graphql", "staged_upload", "result_download", "media_fetch", "bulk_mutation", "bulk_query"
]
ROUTES: tuple[str, ...] = get_args(Route)
_BULK_ROUTES = ("bulk_mutation", "bulk_query")


class FaultRuleError(ValueError):
    """A fault rule that makes no sense (unknown route or field, bad value)."""


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One kind of failure on one route.

    - ``status``: answer with this HTTP status instead (``media_fetch``: the download gets it);
      a 429 carries ``Retry-After: retry_after`` (default 1).
    - ``delay``: wait this many seconds first (slow responses, client timeouts).
    - ``operation_name`` (graphql) / ``url_contains`` (any route): match only those requests.
    - ``fail_after_lines`` (bulk routes): the operation ends FAILED (INTERNAL_SERVER_ERROR) after
      that many result lines, which stay available at ``partialDataUrl``.
    - ``skip_lines`` (bulk_mutation): these 0-based input lines never run, yet the operation
      ends COMPLETED; they have no result line.
    - ``user_error`` (graphql, with ``operation_name``): the operation does not run; its payload
      holds one userError with this message (and ``user_error_code``), every other field null.
    - ``after``: let the first N matching requests (bulk routes: operations) through untouched.
    """

    route: Route
    status: int | None = None
    delay: float = 0.0
    retry_after: int | None = None
    count: int | None = None
    probability: float = 1.0
    operation_name: str | None = None
    url_contains: str | None = None
    fail_after_lines: int | None = None
    skip_lines: tuple[int, ...] = ()
    user_error: str | None = None
    user_error_code: str | None = None
    after: int = 0

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise FaultRuleError("; ".join(problems))

    def _problems(self) -> list[str]:
        problems = []
        bulk = self.route in _BULK_ROUTES
        if self.route not in ROUTES:
            problems.append(f"unknown route {self.route!r} (routes: {', '.join(ROUTES)})")
        if self.status is not None and not 400 <= self.status <= 599:
            problems.append("status must be an HTTP error status (400-599)")
        if self.status is not None and bulk:
            problems.append("bulk routes take fail_after_lines or skip_lines, not status")
        if self.delay < 0 or not 0.0 <= self.probability <= 1.0:
            problems.append("delay must be >= 0 and probability within 0..1")
        if self.count is not None and self.count < 1:
            problems.append("count must be at least 1")
        if self.after < 0:
            problems.append("after must be >= 0")
        if self.operation_name is not None and self.route != "graphql":
            problems.append("operation_name applies to the graphql route only")
        if (self.fail_after_lines is not None or self.skip_lines) and not bulk:
            problems.append("fail_after_lines and skip_lines apply to bulk routes only")
        if self.skip_lines and self.route != "bulk_mutation":
            problems.append("skip_lines applies to bulk_mutation only")
        if self.fail_after_lines is not None and self.fail_after_lines < 0:
            problems.append("fail_after_lines must be >= 0")
        if self.user_error is not None and (self.operation_name is None or self.status is not None):
            problems.append("user_error needs operation_name (graphql) and no status")
        if self.user_error_code is not None and self.user_error is None:
            problems.append("user_error_code needs user_error")
        return problems

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> FaultRule:
        """A rule from its JSON form (the body of ``POST /sandbox/faults``)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FaultRuleError(f"unknown fault rule fields: {', '.join(unknown)}")
        values = dict(data)
        if isinstance(values.get("skip_lines"), list):
            values["skip_lines"] = tuple(values["skip_lines"])  # type: ignore[arg-type]
        try:
            return cls(**values)  # type: ignore[arg-type]
        except TypeError as exc:
            raise FaultRuleError(str(exc)) from None

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["skip_lines"] = list(self.skip_lines)
        return data


@dataclass(slots=True)
class _Active:
    rule: FaultRule
    remaining: int | None
    passed: int = 0


class FaultInjector:
    """The active fault rules of one shop (thread-safe)."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._active: list[_Active] = []
        self._seen: Counter[tuple[str, str | None]] = Counter()

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._active.append(_Active(rule, rule.count))

    def clear(self) -> None:
        with self._lock:
            self._active.clear()

    def rules(self) -> list[FaultRule]:
        """The rules still active, in order."""
        with self._lock:
            return [active.rule for active in self._active]

    def seen(self, route: Route, operation_name: str | None = None) -> int:
        """Requests (bulk routes: operations started) that reached ``route`` so far, all GraphQL
        operations or only ``operation_name``; counted before any delay, faults or not."""
        with self._lock:
            return sum(
                n
                for (r, name), n in self._seen.items()
                if r == route and (operation_name is None or name == operation_name)
            )

    def match(
        self, route: Route, *, operation_name: str | None = None, url: str = ""
    ) -> FaultRule | None:
        """The first active rule for this request, counting it against the rule's ``count``."""
        with self._lock:
            self._seen[(route, operation_name)] += 1
            for active in self._active:
                if not _applies(active.rule, route, operation_name, url):
                    continue
                if active.passed < active.rule.after:
                    active.passed += 1
                    continue
                if (
                    active.rule.probability < 1.0
                    and self._random.random() >= active.rule.probability
                ):
                    continue
                if active.remaining is not None:
                    active.remaining -= 1
                    if active.remaining == 0:
                        self._active.remove(active)
                return active.rule
        return None


def _applies(rule: FaultRule, route: str, operation_name: str | None, url: str) -> bool:
    if rule.route != route:
        return False
    if rule.operation_name is not None and rule.operation_name != operation_name:
        return False
    return rule.url_contains is None or rule.url_contains in url
