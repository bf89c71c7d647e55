"""scripts/bench_port_throughput.py's measuring loop on tiny stand-in models (CPU, seconds; no TAO, no workspace).

The real models come from verify's probes (``build_models``), which the hf_parity tests and verify runs cover; the
GPU numbers come from the device host (scripts/gpu-verify.sh --bench).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_port_throughput", PROJECT / "scripts" / "bench_port_throughput.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _models():
    import torch
    from torch import nn

    torch.manual_seed(0)
    linear = nn.Linear(3 * 4 * 4, 5)

    class Hf(nn.Module):  # HF style: pixel_values in, an output object with .logits out
        def __init__(self):
            super().__init__()
            self.linear = linear

        def forward(self, pixel_values):
            return SimpleNamespace(logits=self.linear(pixel_values.flatten(1)))

    class Port(nn.Module):  # TAO style: a tensor in, logits out; refuses fp16 to exercise the error row
        def __init__(self):
            super().__init__()
            self.linear = linear

        def forward(self, x):
            if torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.float16:
                raise RuntimeError("no half kernel\nsecond line")
            return self.linear(x.flatten(1))

    return Hf().eval(), Port().eval()


def test_rows_ratios_differences_and_errors(bench):
    import torch

    args = bench.parse_args(["--device", "cpu", "--batch-sizes", "2,1", "--runs", "3", "--warmup", "1",
                             "--precisions", "fp32,bf16,fp16"])
    hf, port = _models()
    rows = bench.bench_port("tiny", hf, port, {"task": "classification", "input": [3, 4, 4]}, args,
                            torch.device("cpu"))
    assert [(r["batch"], r["precision"]) for r in rows] == [(b, p) for b in (1, 2) for p in ("fp32", "bf16", "fp16")]
    for row in rows:
        if row["precision"] == "fp16":
            assert row["error"] == "RuntimeError: no half kernel" and "ratio" not in row
            continue
        assert row["ratio"] == pytest.approx(row["port_images_per_s"] / row["hf_images_per_s"], rel=1e-2)
        assert row["hf_images_per_s"] == pytest.approx(row["batch"] / (row["hf_ms"] / 1e3), rel=0.05)  # ms rounded
        assert row["diff"] == {"max_abs": 0.0}  # same weights, same input, same arithmetic
        assert row["port_vs_hf_fp32"]["max_abs"] == row["hf_vs_hf_fp32"]["max_abs"]
        assert (row["port_vs_hf_fp32"]["max_abs"] == 0.0) == (row["precision"] == "fp32")
        assert row["output_scale"] > 0
        assert "x" in bench.format_row(row)
    assert "ERROR RuntimeError" in bench.format_row(rows[2])


def test_detection_batch_cap_and_arguments(bench):
    args = bench.parse_args(["--batch-sizes", "1,64", "--ports", "rtdetr,vit"])
    assert args.ports == ["rtdetr", "vit"] and args.detection_max_batch == 8
    assert sorted({min(b, args.detection_max_batch) for b in args.batch_sizes}) == [1, 8]
    with pytest.raises(SystemExit):
        bench.parse_args(["--precisions", "int8"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--ports", "dino"])
