"""Evaluation metrics (DESIGN §2.8). Each metric is a pure function; feature extraction is cached separately."""
