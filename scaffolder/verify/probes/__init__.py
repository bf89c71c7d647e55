"""Probes: standalone scripts verify copies into its work dir and runs in the target environment."""
