"""Which customer each message belongs to: identity links from the batch and from the store.

A customer is known by every ``userId`` and ``anonymousId`` linked to it. ``identify`` (or
any message carrying both ids) links an anonymous id to a user; ``alias`` links
``previousId`` to ``userId``. The customer id is the user id once there is one, so it is stable
for known customers; an anonymous profile that becomes known is merged into the user's
profile and its id kept as a redirect (``mergedInto``), which is how later anonymous events
find the customer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from audience.domain.events import Alias, Message
from audience.domain.profile import Profile


@dataclass
class Group:
    """The messages of one customer in a batch, and the ids whose stored items must change."""

    customer_id: str
    indexes: list[int] = field(default_factory=list)  # positions of the messages in the batch
    absorb: list[str] = field(default_factory=list)  # live profiles to merge in, then retire
    redirect: list[str] = field(default_factory=list)  # ids to point at this customer


def identities(messages: Iterable[Message]) -> set[str]:
    return {identity for message in messages for identity in message.identities}


def plan(messages: list[Message], stored: Mapping[str, Profile]) -> dict[str, Group]:
    """Group ``messages`` by customer, given the stored items of every id they name (and of
    every id those redirect to). Deterministic: the same inputs give the same plan."""
    parent: dict[str, str] = {i: p.merged_into for i, p in stored.items() if p.merged_into}
    known = {i for i, p in stored.items() if p.known and not p.merged_into}
    known |= {m.user_id for m in messages if m.user_id is not None and not isinstance(m, Alias)}

    def root(identity: str) -> str:
        seen = set()
        while identity in parent and identity not in seen:
            seen.add(identity)
            identity = parent[identity]
        return identity

    for message in messages:
        if isinstance(message, Alias):
            _link(parent, root, message.previous_id, message.user_id)
        elif message.user_id is not None and message.anonymous_id is not None:
            anonymous, user = message.anonymous_id, message.user_id
            if anonymous in known and anonymous not in parent:
                continue  # this "anonymous" id is somebody's user id: never merge two users implicitly
            if root(anonymous) in known and root(anonymous) != root(user):
                parent[anonymous] = root(user)  # a shared device: later anonymous events follow the new user
            else:
                _link(parent, root, anonymous, user)

    groups: dict[str, Group] = {}
    for index, message in enumerate(messages):
        customer = root(message.customer_id)
        groups.setdefault(customer, Group(customer)).indexes.append(index)
    for identity in sorted(identities(messages) | set(parent)):
        customer = root(identity)
        if identity == customer or customer not in groups:
            continue
        item = stored.get(identity)
        if item is not None and item.merged_into is None:
            groups[customer].absorb.append(identity)
        elif item is None or item.merged_into != customer:
            groups[customer].redirect.append(identity)
    return groups


def _link(parent: dict[str, str], root: Callable[[str], str], source: str, target: str) -> None:
    source_root, target_root = root(source), root(target)
    if source_root != target_root:
        parent[source_root] = target_root
