"""Privacy cloak: perturb a photo so that face recognisers no longer link its faces.

Needs the ``torch`` extra; importing this package imports nothing heavy.
"""
