"""The paper's losses (supplementary §1), one module each; :mod:`objective` weights them in one place."""
