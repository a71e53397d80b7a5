"""Input/output adapters: images and video frames into RGB uint8 arrays."""
