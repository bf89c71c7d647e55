"""``tao-scaffold verify``: run a generated port end to end and enforce parity gates."""
