"""Delivery: preparing jobs, batching, uploading with the error policy, pace and manifests."""
