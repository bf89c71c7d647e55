"""The shim (sitecustomize.py: CPU forcing for --device cpu, tao_scaffold_msda.py: MSDA without its CUDA .so) put on
the PYTHONPATH of verify's child processes."""
