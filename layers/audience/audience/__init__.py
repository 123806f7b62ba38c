"""Audience Engine: real-time customer segmentation and personalization.

Layout: ``domain`` (pure models and rules, no AWS), ``services`` (use cases that the
Lambda handlers call), ``ports`` (the interfaces services need), ``adapters`` (boto3
implementations of the ports), ``config`` (validated settings).
"""
