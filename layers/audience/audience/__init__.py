"""Audience Engine: real-time customer segmentation and personalization.

Layout (the README's "Layout" has the picture): ``bootstrap`` (the composition root, one module
per function), ``api`` (the read API's routers and views), ``services`` (use cases and jobs,
AWS-free behind ``ports``), ``adapters`` (boto3 implementations of the ports), ``settings``
(validated settings), the model packages ``segmentation``, ``value``, ``recommend`` and
``measure`` (leaves over ``domain``), and ``domain`` (pure models and rules, no AWS).
"""
