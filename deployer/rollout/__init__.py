"""Rollouts: watching one ECS deployment to its end (watch), its phases from AWS's own
timestamps (timeline), why its tasks stopped (failures), the release record a good one leaves
on its task definition revision (releases), the CloudWatch alarms ECS rolls back on (alarms)
and the service's side of [service.rollout] (settings). Read-only, except the release tags
and the alarms."""
