"""Cleanup of stale resource groups and local deployments: policy, planning, providers.

Kept import-free on purpose: the Azure SDKs must load only when the ARM provider is used.
"""
