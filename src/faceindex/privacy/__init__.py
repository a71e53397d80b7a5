"""Privacy: template encryption at rest, erasure support, anonymisation."""
