"""reenact: one-shot face reenactment with the Progressive Warping Module (BMVC 2022)."""

__version__ = "0.1.0"
