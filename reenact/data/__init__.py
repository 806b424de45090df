"""Preprocessed training data: layout, preprocessing, pair dataset."""
