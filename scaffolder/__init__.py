"""tao-scaffold: port a HuggingFace computer-vision model into NVIDIA TAO Toolkit."""

__version__ = "0.1.0"
