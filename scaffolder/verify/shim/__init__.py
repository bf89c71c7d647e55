"""The CPU-forcing shim (sitecustomize.py) put on the PYTHONPATH of verify's child processes."""
