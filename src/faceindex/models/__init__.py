"""Where packaged model weights are found, and how they are turned into runnable sessions."""
