"""inspect step: real transformers / huggingface_hub / safetensors code on local folders and a local HF cache.

Models come from ``tests.model_factory`` (transformers config classes, seeded random weights). The Hub is never
contacted: hub ids resolve from a cache folder laid out as huggingface_hub lays it out, offline mode is real
``local_files_only`` resolution, and "unreachable" is ``HF_ENDPOINT`` pointing at a closed localhost port.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from scaffolder import catalog
from scaffolder.errors import ModelSourceError, ScaffoldError, UnsupportedModelError
from scaffolder.hf_inspect import ModelInfo, inspect_model
from tests.model_factory import KINDS, imagenet_labels, make_model_dir, populate_hub_cache

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "google-vit-base-patch16-224"


def _one_line(exc: ScaffoldError) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text, text
    assert " -- " in text, f"no hint: {text}"
    return text


ST_DTYPES = {"torch.float32": "F32", "torch.float16": "F16", "torch.int64": "I64", "torch.bool": "BOOL"}


def _file_schema(folder: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """The schema as the tensors themselves give it (loads the weights; tiny models only)."""
    out = {}
    for path in sorted(folder.glob("*.safetensors")):
        for key, tensor in load_file(str(path)).items():
            out[key] = (tuple(tensor.shape), ST_DTYPES[str(tensor.dtype)])
    return out


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("vit") / "vit", "vit")


# -- local folders ----------------------------------------------------------------------------------------------


def test_local_dir_with_weights(vit_dir: Path) -> None:
    info = inspect_model(str(vit_dir))
    assert isinstance(info, ModelInfo)
    assert info.source == str(vit_dir) and info.local_dir == vit_dir
    assert (info.model_type, info.architectures, info.pipeline_tag) == (
        "vit",
        ["ViTForImageClassification"],
        "image-classification",
    )
    assert info.schema_source == "safetensors"
    assert info.weight_files == [vit_dir / "model.safetensors"]
    assert info.state_dict == _file_schema(vit_dir)
    assert info.state_dict["classifier.weight"] == ((3, 32), "F32")
    assert (info.hidden_size, info.patch_size, info.num_channels) == (32, 8, 3)
    assert info.image_size == 32 and info.input_size == (32, 32)  # tiny preprocessor scaled to image_size
    assert info.image_mean == [0.5, 0.5, 0.5] and info.image_std == [0.5, 0.5, 0.5]
    assert info.num_labels == 3 and info.id2label == {0: "cat", 1: "dog", 2: "bird"}
    assert (
        info.config["model_type"] == "vit"
        and info.preprocessor["feature_extractor_type"] == "ViTFeatureExtractor"
    )
    summary = "\n".join(info.summary_lines())
    for text in (
        "image-classification",
        "model_type: vit",
        "image size: 32",
        "hidden size: 32",
        "num labels: 3",
        f"{len(info.state_dict)} keys",
        "[0.5, 0.5, 0.5]",
    ):
        assert text in summary, (text, summary)
    assert all("\n" not in line for line in info.summary_lines())


@pytest.mark.parametrize("kind", ["vit", "swin", "hiera", "segformer", "efficientnet", "dinov2", "resnet"])
def test_meta_device_schema_matches_real_state_dict(tmp_path: Path, kind: str) -> None:
    real = make_model_dir(tmp_path / "real", kind)
    bare = make_model_dir(tmp_path / "bare", kind, weights=False)
    assert not list(bare.glob("*.safetensors"))
    info = inspect_model(str(bare))
    assert info.schema_source == "meta-device" and info.weight_files == []
    assert info.state_dict == _file_schema(real)  # same keys, shapes and dtypes as the saved model


def test_sharded_index(tmp_path: Path) -> None:
    single = make_model_dir(tmp_path / "single", "vit")
    sharded = make_model_dir(tmp_path / "sharded", "vit", max_shard_size="20KB")
    shards = sorted(sharded.glob("model-*.safetensors"))
    assert (sharded / "model.safetensors.index.json").is_file() and len(shards) > 1
    info = inspect_model(str(sharded))
    assert info.schema_source == "safetensors"
    assert info.weight_files == shards
    assert info.state_dict == inspect_model(str(single)).state_dict

    shards[-1].unlink()
    with pytest.raises(ModelSourceError) as err:
        inspect_model(str(sharded))
    assert shards[-1].name in _one_line(err.value) and "missing" in str(err.value)


def test_config_json_path_is_accepted(vit_dir: Path) -> None:
    assert inspect_model(str(vit_dir / "config.json")).local_dir == vit_dir


def test_dinov2_is_feature_extraction(tmp_path: Path) -> None:
    info = inspect_model(str(make_model_dir(tmp_path / "d", "dinov2", weights=False)))
    assert info.architectures == ["Dinov2Model"]
    assert info.pipeline_tag == "feature-extraction"
    assert info.hidden_size == 32 and info.patch_size == 14


def test_hostile_labels_come_back_verbatim(tmp_path: Path) -> None:
    labels = {
        0: "x'); import os #",
        1: "{{ 7*7 }}",
        2: 'quote " and \\ backslash',
        3: "line\nbreak",
        4: "ünïcödé",
    }
    info = inspect_model(str(make_model_dir(tmp_path / "h", "vit", weights=False, id2label=labels)))
    assert info.id2label == labels
    assert info.num_labels == 5
    assert all("\n" not in line for line in info.summary_lines())


def test_full_size_vit_with_weights(tmp_path: Path) -> None:
    start = time.monotonic()
    folder = make_model_dir(tmp_path / "vitb", "vit", full_size=True)
    made = time.monotonic() - start
    info = inspect_model(str(folder))
    assert made < 30, made
    assert info.schema_source == "safetensors" and len(info.state_dict) == 200
    assert info.state_dict["vit.embeddings.position_embeddings"] == ((1, 197, 768), "F32")
    assert info.id2label == dict(enumerate(imagenet_labels()))
    assert catalog.family_for("vit").match(info.config).backbone == "vit_base_patch16"
    assert 86e6 < info.num_parameters < 87e6


EXPECTED_VARIANT = {
    "vit": "vit_base_patch16",
    "swin": "swin_tiny_patch4_window7_224",
    "convnext": "convnext_tiny",
    "convnextv2": "convnextv2_tiny",
    "resnet": "resnet_50",
    "hiera": "hiera_tiny_224",
    "segformer": "mit_b0",
}


@pytest.mark.parametrize("kind", sorted(EXPECTED_VARIANT))
def test_full_size_factory_matches_catalog(tmp_path: Path, kind: str) -> None:
    info = inspect_model(str(make_model_dir(tmp_path / kind, kind, full_size=True, weights=False)))
    variant = catalog.family_for(info.model_type).match(info.config)
    assert variant is not None and variant.backbone == EXPECTED_VARIANT[kind]
    assert info.hidden_size == variant.num_features
    assert info.num_labels == 1000 and info.pipeline_tag == "image-classification"
    expected_mean = [0.5] * 3 if kind == "vit" else list(catalog.IMAGENET_MEAN)
    assert info.image_mean == expected_mean


def test_factory_knows_every_kind() -> None:
    assert set(KINDS) >= {
        "vit",
        "swin",
        "convnext",
        "convnextv2",
        "resnet",
        "hiera",
        "segformer",
        "dinov2",
        "deit",
        "efficientnet",
        "bert",
    }


# -- preprocessing ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pre", "expected"),
    [
        ({"size": 384}, (384, 384)),
        ({"size": {"height": 256, "width": 320}}, (256, 320)),
        ({"size": {"shortest_edge": 288}}, (288, 288)),
        ({"size": [240, 240]}, (240, 240)),
        (
            {
                "size": {"shortest_edge": 256},
                "crop_size": {"height": 224, "width": 224},
                "do_center_crop": True,
            },
            (224, 224),
        ),
        ({"size": 256, "crop_size": 224}, (224, 224)),  # legacy extractor: crop_size without the flag
        (
            {
                "size": {"height": 224, "width": 224},
                "crop_size": {"height": 289, "width": 289},
                "do_center_crop": False,
            },
            (224, 224),
        ),
        ({}, (32, 32)),  # no size: config.json image_size
    ],
)
def test_preprocessor_size_shapes(tmp_path: Path, pre: dict, expected: tuple[int, int]) -> None:
    folder = make_model_dir(tmp_path / "p", "vit", weights=False)
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.1] * 3, "image_std": [0.2] * 3, **pre})
    )
    info = inspect_model(str(folder))
    assert info.input_size == expected and info.image_size == max(expected)
    assert info.image_mean == [0.1] * 3 and info.image_std == [0.2] * 3


def test_defaults_without_preprocessor(tmp_path: Path) -> None:
    folder = make_model_dir(tmp_path / "c", "convnext", weights=False)
    (folder / "preprocessor_config.json").unlink()
    config = json.loads((folder / "config.json").read_text())
    config.pop("image_size", None)
    (folder / "config.json").write_text(json.dumps(config))
    info = inspect_model(str(folder))
    family = catalog.family_for("convnext")
    assert info.preprocessor == {}
    assert info.image_size == family.default_image_size
    assert info.image_mean == list(family.mean) and info.image_std == list(family.std)
    assert any("default" in note for note in info.notes)


# -- errors -------------------------------------------------------------------------------------------------------


def test_bert_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError) as err:
        inspect_model(str(make_model_dir(tmp_path / "bert", "bert")))
    text = _one_line(err.value)
    for part in ("'bert'", "BertForMaskedLM", "fill-mask", "vision"):
        assert part in text, text


def test_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError) as err:
        inspect_model(str(tmp_path))
    assert "config.json" in _one_line(err.value)


def test_missing_local_path(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError) as err:
        inspect_model(str(tmp_path / "no" / "such" / "model"))
    assert "does not exist" in _one_line(err.value)


def test_malformed_config_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{\n  "model_type": "vit",\n  "hidden_size": 768,,\n}\n')
    with pytest.raises(ModelSourceError) as err:
        inspect_model(str(tmp_path))
    text = _one_line(err.value)
    assert "not valid JSON" in text and "line 3 column 22" in text, text


def test_config_without_model_type(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["ViTForImageClassification"]}))
    with pytest.raises(ModelSourceError) as err:
        inspect_model(str(tmp_path))
    assert "model_type" in _one_line(err.value)


@pytest.mark.parametrize(
    ("payload", "hint"),
    [
        (b"\xff" * 8 + b"not a header", "download the file again"),
        ((10_000).to_bytes(8, "little") + b'{"a": {"dtype": "F32"', "download the file again"),  # truncated
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n", "git lfs pull"),
    ],
)
def test_corrupt_safetensors_header(tmp_path: Path, payload: bytes, hint: str) -> None:
    folder = make_model_dir(tmp_path / "v", "vit", weights=False)
    (folder / "model.safetensors").write_bytes(payload)
    with pytest.raises(ModelSourceError) as err:
        inspect_model(str(folder))
    text = _one_line(err.value)
    assert "corrupt safetensors header" in text and hint in text, text


# -- hub ids ------------------------------------------------------------------------------------------------------


def test_hub_id_from_cache_offline(tmp_path: Path, vit_dir: Path) -> None:
    cache = tmp_path / "hub"
    snapshot = populate_hub_cache(cache, "acme/vit-tiny", vit_dir)
    info = inspect_model("acme/vit-tiny", cache_dir=cache, offline=True)
    assert info.source == "acme/vit-tiny"
    assert info.local_dir == snapshot and info.revision == snapshot.name
    assert info.schema_source == "safetensors"  # weights are cached: headers read locally
    assert info.state_dict == _file_schema(vit_dir)
    assert info.id2label == {0: "cat", 1: "dog", 2: "bird"}


def test_hub_id_cached_without_weights_uses_meta_device(tmp_path: Path, vit_dir: Path, monkeypatch) -> None:
    cache = tmp_path / "hub"
    populate_hub_cache(cache, "acme/vit-cfg", vit_dir, files=["config.json", "preprocessor_config.json"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline=None reads the environment
    info = inspect_model("acme/vit-cfg", cache_dir=cache)
    assert info.schema_source == "meta-device"
    assert info.state_dict == _file_schema(vit_dir)


def test_hub_id_not_cached_offline(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError) as err:
        inspect_model("acme/not-there", cache_dir=tmp_path / "empty", offline=True)
    text = _one_line(err.value)
    assert "offline" in text and "local folder" in text and "--model" in text, text


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_hub_fails_fast(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    start = time.monotonic()
    with pytest.raises(ModelSourceError) as err:
        inspect_model("acme/vit-tiny", cache_dir=tmp_path / "empty", offline=False)
    assert time.monotonic() - start < 10
    text = _one_line(err.value)
    assert "cannot reach" in text and "127.0.0.1" in text and "--model" in text, text


def test_unreachable_hub_falls_back_to_cache(tmp_path: Path, vit_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    cache = tmp_path / "hub"
    snapshot = populate_hub_cache(cache, "acme/vit-tiny", vit_dir)
    info = inspect_model("acme/vit-tiny", cache_dir=cache, offline=False)
    assert info.local_dir == snapshot and info.schema_source == "safetensors"
    assert any("unreachable" in note for note in info.notes)


# -- bundled example ----------------------------------------------------------------------------------------------


def test_bundled_vit_example() -> None:
    info = inspect_model(str(EXAMPLE))
    assert info.architectures == ["ViTForImageClassification"] and info.pipeline_tag == "image-classification"
    assert (
        info.num_labels == 1000
        and info.id2label[0] == "tench, Tinca tinca"
        and info.id2label[999].startswith("toilet tissue")
    )
    assert info.image_size == 224 and info.image_mean == [0.5, 0.5, 0.5]
    assert info.schema_source == "meta-device" and len(info.state_dict) == 200
    assert catalog.family_for("vit").match(info.config).backbone == "vit_base_patch16"
