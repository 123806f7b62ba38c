"""Segmentation models: features from profiles, RFM scores, learned segments, drift, reports.

``spec`` scores one profile from a model's JSON spec in plain Python (the stream function
imports it); the rest needs numpy, scipy and scikit-learn, which only the retrain function has
(the ML layer).
"""
