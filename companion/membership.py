"""Whether a node's node.json fits its group config: its id and the peers it fetches configs from are members."""

from __future__ import annotations

from loadmesh.core import errors


def strangers(parsed: dict[str, object], group: dict[str, object]) -> str:
    """Why node.json does not fit the group config ("" if it does): its id and its peers must be members."""
    members = [str(member["id"]) for member in group["members"]]  # type: ignore[attr-defined]
    named = f"group {errors.quoted(str(group['group']))} (its members: {', '.join(members)})"
    node_id = parsed["id"]
    if node_id is not None and node_id not in members:
        # The node would boot left out: its config names no member of its id, so it drives nothing.
        return f"node.id: {errors.quoted(str(node_id))} is not a member of {named}"
    peers = parsed["peers_http"]
    assert isinstance(peers, dict)
    for peer in sorted(peers):
        if peer not in members:  # (the node itself among them settings.parse refuses)
            return f"node.peers_http.{peer}: is not a member of {named}"
    return ""
