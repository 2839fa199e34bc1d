"""Rollouts: watching one ECS deployment to its end (watch), its phases from AWS's own
timestamps (timeline), why its tasks stopped (failures), and the release record a good one
leaves on its task definition revision (releases). Read-only, except the release tags."""
