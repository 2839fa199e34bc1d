"""Realism for ECS clusters (a rule of tests/support/realism.py's kind, kept in its own module):
a cluster applies a change of its capacity providers for a while.

After CreateCluster with capacity providers, or a PutClusterCapacityProviders, ECS associates
the providers asynchronously (the cluster's attachmentsStatus is UPDATE_IN_PROGRESS, then
UPDATE_COMPLETE); meanwhile another PutClusterCapacityProviders is refused with
UpdateInProgressException. The ECS API reference lists that error for the call without saying
how long it lasts, so, like the layer's other transient states, it is counted in calls: the
next UPDATING_CALLS puts on that cluster are refused. The tests' own calls bypass the layer,
so a change made outside the deployer (the console, another tool) is started by `begin`.
"""

from __future__ import annotations

from tests.support.aws_wire import Answer, WireCall, error
from tests.support.realism import Rule, ok

UPDATING_CALLS = 2
COUNTER = "cluster-updates"
# The error's code is what clients act on; the ECS API reference documents no message for it.
MESSAGE = (
    "The cluster is currently being updated (its capacity provider attachments are "
    "UPDATE_IN_PROGRESS). Wait for the update to complete and try again."
)


class ClusterUpdates(Rule):
    """PutClusterCapacityProviders is refused while the cluster still applies the last change
    of its providers."""

    def begin(self, cluster: str, calls: int = UPDATING_CALLS) -> None:
        """A change of `cluster`'s providers just made outside the deployer's credentials."""
        with self.layer.lock:
            self.layer.counter(COUNTER)[cluster] = calls

    def before(self, call: WireCall) -> Answer | None:
        if (call.service, call.operation) != ("ecs", "PutClusterCapacityProviders"):
            return None
        with self.layer.lock:
            updating = self.layer.tick(self.layer.counter(COUNTER), _cluster(call))
        return error(call, "UpdateInProgressException", MESSAGE) if updating else None

    def after(self, call: WireCall, answer: Answer) -> Answer | None:
        if call.service != "ecs" or not ok(answer):
            return None
        changed = call.operation == "PutClusterCapacityProviders" or (
            call.operation == "CreateCluster" and call.params.get("capacityProviders")
        )
        if changed:
            self.begin(_cluster(call))
        return None


def _cluster(call: WireCall) -> str:
    """The cluster's name, whether the call gave its name or its ARN."""
    return str(call.params.get("cluster") or call.params.get("clusterName") or "default").rsplit(
        "/", 1
    )[-1]
