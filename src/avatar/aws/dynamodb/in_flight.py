"""Each user's generate requests in flight, as leases on one item of their partition (the generation's
RequestsInFlight): taking one is conditional on the item's revision, so the limit holds across concurrent Lambdas,
and a lease whose function died expires by itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from avatar.aws.dynamodb.table import UserPartition, user_pk
from avatar.errors import ConcurrentUpdate

IN_FLIGHT = "GENERATING"
_ATTEMPTS = 5
_TTL_MARGIN_SECONDS = 3600  # DynamoDB's TTL removes an item whose every lease has long expired


class InFlightTable(UserPartition):
    """Leases of a user's generate requests."""

    def _key(self, user_id: str) -> dict[str, str]:
        return {"PK": user_pk(user_id), "SK": IN_FLIGHT}

    def begin(self, user_id: str, request_id: str, *, until: datetime, limit: int, now: datetime) -> bool:
        """Take a lease for the request until `until`, unless `limit` unexpired ones are held; raises
        ConcurrentUpdate when other requests keep moving the item."""
        for _ in range(_ATTEMPTS):
            item = self.table.get(self._key(user_id))
            leases = _live(item, now)
            if len(leases) >= limit:
                return False
            leases[request_id] = int(until.timestamp())
            if self._write(user_id, item, leases):
                return True
        raise ConcurrentUpdate("many requests at once; try again")

    def end(self, user_id: str, request_id: str, *, now: datetime) -> None:
        """Give the request's lease back (the item goes with the last one)."""
        for _ in range(_ATTEMPTS):
            item = self.table.get(self._key(user_id))
            if item is None or request_id not in item.get("leases", {}):
                return
            leases = _live(item, now)
            leases.pop(request_id, None)
            if self._write(user_id, item, leases):
                return
        raise ConcurrentUpdate("many requests at once; the lease expires by itself")

    def _write(self, user_id: str, seen: dict[str, Any] | None, leases: dict[str, int]) -> bool:
        """The new leases, if nobody moved the item since `seen`; False otherwise."""
        revision = int(seen["revision"]) if seen else 0
        condition = "revision = :seen" if seen else "attribute_not_exists(PK)"
        values = {":seen": revision} if seen else {}
        if not leases:
            return self.table.delete(self._key(user_id), condition, **values)
        item = self._key(user_id) | {
            "type": "in_flight",
            "leases": leases,
            "revision": revision + 1,
            "expires_at": max(leases.values()) + _TTL_MARGIN_SECONDS,
        }
        return self.table.put(item, condition, **values)


def _live(item: dict[str, Any] | None, now: datetime) -> dict[str, int]:
    leases = (item or {}).get("leases", {})
    return {request: int(until) for request, until in leases.items() if int(until) > now.timestamp()}
