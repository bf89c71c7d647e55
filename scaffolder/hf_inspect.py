"""The inspect step: read a HuggingFace vision model's config, preprocessing and weight schema.

``inspect_model(source)`` accepts a local folder (``config.json`` plus, optionally, ``preprocessor_config.json``
and ``*.safetensors`` / a sharded ``model.safetensors.index.json``) or a Hub id. Hub ids are resolved with
``huggingface_hub`` (small files only; weights are never downloaded here). The state-dict schema -- key ->
(shape, dtype) -- comes from safetensors headers (local files or ``get_safetensors_metadata`` online) and, when
there are no readable weights, from the model built on the ``meta`` device from its config.

Every failure is a one-line ``ModelSourceError`` / ``UnsupportedModelError`` with a hint. What counts as a vision
model and which pipeline tag an architecture has come from transformers' auto-mapping name tables, not a list
kept here.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from scaffolder import catalog
from scaffolder.errors import ModelSourceError, UnsupportedModelError

CONFIG_NAME = "config.json"
HF_TABLES = Path(__file__).resolve().parent / "data" / "hf_tables.json"
PREPROCESSOR_NAME = "preprocessor_config.json"
SAFETENSORS_SINGLE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
# Small files fetched for a Hub id: never weights.
HUB_ALLOW_PATTERNS = [CONFIG_NAME, PREPROCESSOR_NAME, "*.safetensors.index.json"]
# Seconds for any single Hub request made here, so an unreachable Hub fails fast.
HUB_TIMEOUT_S = 5.0

LOCAL_DIR_HINT = "pass a local folder instead (--model ./path/with/config.json)"

# transformers auto-mapping name tables -> pipeline tag, in priority order. Vision tables first; a model_type in
# any of them is a vision model. Table names that a transformers version lacks are skipped.
_VISION_TABLES: tuple[tuple[str, str], ...] = (
    ("MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES", "image-classification"),
    ("MODEL_FOR_ZERO_SHOT_IMAGE_CLASSIFICATION_MAPPING_NAMES", "zero-shot-image-classification"),
    ("MODEL_FOR_OBJECT_DETECTION_MAPPING_NAMES", "object-detection"),
    ("MODEL_FOR_ZERO_SHOT_OBJECT_DETECTION_MAPPING_NAMES", "zero-shot-object-detection"),
    ("MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES", "image-segmentation"),
    ("MODEL_FOR_INSTANCE_SEGMENTATION_MAPPING_NAMES", "image-segmentation"),
    ("MODEL_FOR_UNIVERSAL_SEGMENTATION_MAPPING_NAMES", "image-segmentation"),
    ("MODEL_FOR_IMAGE_SEGMENTATION_MAPPING_NAMES", "image-segmentation"),
    ("MODEL_FOR_DEPTH_ESTIMATION_MAPPING_NAMES", "depth-estimation"),
    ("MODEL_FOR_MASK_GENERATION_MAPPING_NAMES", "mask-generation"),
    ("MODEL_FOR_KEYPOINT_DETECTION_MAPPING_NAMES", "keypoint-detection"),
    ("MODEL_FOR_VIDEO_CLASSIFICATION_MAPPING_NAMES", "video-classification"),
    ("MODEL_FOR_IMAGE_TO_IMAGE_MAPPING_NAMES", "image-to-image"),
    ("MODEL_FOR_MASKED_IMAGE_MODELING_MAPPING_NAMES", "masked-image-modeling"),
    ("MODEL_FOR_CAUSAL_IMAGE_MODELING_MAPPING_NAMES", "causal-image-modeling"),
    ("MODEL_FOR_BACKBONE_MAPPING_NAMES", "feature-extraction"),
    ("MODEL_FOR_IMAGE_MAPPING_NAMES", "feature-extraction"),
)
# Non-vision tables: only used to name what a rejected model is.
_OTHER_TABLES: tuple[tuple[str, str], ...] = (
    ("MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES", "text-classification"),
    ("MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES", "token-classification"),
    ("MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES", "question-answering"),
    ("MODEL_FOR_MASKED_LM_MAPPING_NAMES", "fill-mask"),
    ("MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", "text-generation"),
    ("MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES", "text2text-generation"),
    ("MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES", "multiple-choice"),
    ("MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES", "image-text-to-text"),
    ("MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES", "automatic-speech-recognition"),
    ("MODEL_FOR_CTC_MAPPING_NAMES", "automatic-speech-recognition"),
    ("MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES", "audio-classification"),
    ("MODEL_FOR_TEXT_TO_WAVEFORM_MAPPING_NAMES", "text-to-speech"),
    ("MODEL_FOR_TEXT_TO_SPECTROGRAM_MAPPING_NAMES", "text-to-speech"),
    ("MODEL_MAPPING_NAMES", "feature-extraction"),
)

# torch dtype name -> safetensors dtype name (the vocabulary of safetensors headers and the Hub's metadata API).
_TORCH_TO_ST_DTYPE = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
    "complex64": "C64",
}


@dataclass
class ModelInfo:
    """Everything the planner needs to know about a source model."""

    source: str  # as given (hub id or path)
    local_dir: Path  # folder holding config.json (a Hub snapshot folder for hub ids)
    model_type: str
    architectures: list[str]
    pipeline_tag: str  # derived from architectures via transformers' auto mappings
    config: dict[str, Any]  # raw config.json
    image_size: int
    num_channels: int
    patch_size: int | None
    hidden_size: int | None
    num_labels: int
    id2label: dict[int, str]
    image_mean: list[float]
    image_std: list[float]
    preprocessor: dict[str, Any]  # raw preprocessor_config.json ({} when absent)
    weight_files: list[Path]  # local *.safetensors files the schema was read from
    state_dict: dict[str, tuple[tuple[int, ...], str]]  # key -> (shape, safetensors dtype such as "F32")
    schema_source: str  # "safetensors" | "meta-device" ("none" with include_weights_schema=False)
    # extras
    input_size: tuple[int, int] = (0, 0)  # (height, width) the preprocessor feeds the model
    revision: str | None = None  # resolved commit for hub ids
    remote_weight_files: list[str] = field(default_factory=list)  # Hub files the schema was read from
    notes: list[str] = field(default_factory=list)  # defaults applied and fallbacks taken, one line each
    local: bool = False  # ``source`` is a folder of this machine (not a hub id)

    @property
    def recorded_source(self) -> str:
        """What a port records as its source (SOURCE_MODEL, the answers' ``model``): the hub id, or the local
        folder's name -- never a path of this machine (those files are committed and shared)."""
        return self.local_dir.resolve().name if self.local else self.source

    @property
    def num_parameters(self) -> int:
        return sum(math.prod(shape) for shape, _ in self.state_dict.values())

    def summary_lines(self) -> list[str]:
        where = self.source if str(self.local_dir) == self.source else f"{self.source} ({self.local_dir})"
        arch = ", ".join(self.architectures) or "no architectures in config.json"
        height, width = self.input_size
        size = f"{self.image_size}" if height == width else f"{height}x{width}"
        patch = f", patch {self.patch_size}" if self.patch_size else ""
        labels = ", ".join(_quote(self.id2label[k]) for k in sorted(self.id2label)[:3])
        more = ", ..." if len(self.id2label) > 3 else ""
        lines = [
            f"model: {where}",
            f"pipeline tag: {self.pipeline_tag} ({arch})",
            f"model_type: {self.model_type}",
            f"image size: {size} ({self.num_channels} channels{patch})",
            f"hidden size: {self.hidden_size if self.hidden_size is not None else 'unknown'}",
            f"num labels: {self.num_labels}" + (f" ({labels}{more})" if labels else ""),
            f"mean/std: {_fmt_floats(self.image_mean)} / {_fmt_floats(self.image_std)}",
        ]
        if self.schema_source == "none":
            lines.append("state dict: not inspected")
        else:
            files = [p.name for p in self.weight_files] or self.remote_weight_files
            origin = f"{self.schema_source}: {', '.join(files)}" if files else self.schema_source
            lines.append(
                f"state dict: {len(self.state_dict)} keys, {self.num_parameters / 1e6:.1f}M parameters ({origin})"
            )
        lines.extend(f"note: {note}" for note in self.notes)
        return lines


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _fmt_floats(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


# -- entry point ----------------------------------------------------------------------------------------------


def inspect_model(
    source: str,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    offline: bool | None = None,
    include_weights_schema: bool = True,
) -> ModelInfo:
    """Inspect a local model folder or a Hub model id. Raises ``ModelSourceError`` / ``UnsupportedModelError``."""
    source = str(source)
    notes: list[str] = []
    remote: _RemoteWeights | None = None
    resolved_revision: str | None = None
    local = _as_local_dir(source)
    if local is not None:
        local_dir = local
        if revision:
            notes.append(f"revision {revision!r} ignored: {source} is a local folder")
        if not (local_dir / CONFIG_NAME).is_file():
            raise ModelSourceError(
                f"{local_dir} has no {CONFIG_NAME}",
                "point --model at the folder that holds config.json (a save_pretrained() folder or a Hub snapshot)",
            )
    else:
        local_dir, resolved_revision, remote = _resolve_hub(
            source, revision=revision, cache_dir=cache_dir, offline=_offline(offline), notes=notes
        )

    config = _read_json(local_dir / CONFIG_NAME)
    model_type = config.get("model_type")
    if not model_type or not isinstance(model_type, str):
        raise ModelSourceError(
            f"{local_dir / CONFIG_NAME} has no model_type",
            'add the transformers model type, e.g. "model_type": "vit" (save_pretrained() always writes it)',
        )
    architectures = [a for a in (config.get("architectures") or []) if isinstance(a, str)]
    pipeline_tag = _check_vision(model_type, architectures, source)

    preprocessor: dict[str, Any] = {}
    if (local_dir / PREPROCESSOR_NAME).is_file():
        preprocessor = _read_json(local_dir / PREPROCESSOR_NAME)
    family = catalog.family_for(model_type)
    id2label = _id2label(config, notes)  # bounded before transformers sees num_labels (it builds id2label too)
    # transformers' config object (derived widths, validation) costs a torch import: only the full inspect.
    config_obj = _config_object(local_dir, model_type) if include_weights_schema else None

    height, width = _input_size(preprocessor, config, family, notes)
    mean, std = _mean_std(preprocessor, family, notes)

    weight_files: list[Path] = []
    state_dict: dict[str, tuple[tuple[int, ...], str]] = {}
    schema_source = "none"
    remote_files: list[str] = []
    if include_weights_schema:
        weight_files, state_dict = _local_safetensors_schema(local_dir, notes, required=local is not None)
        if state_dict:
            schema_source = "safetensors"
        elif remote is not None:
            remote_files, state_dict = remote.schema(notes)
            if state_dict:
                schema_source = "safetensors"
        if not state_dict:
            state_dict = _meta_device_schema(config_obj, architectures, config, local_dir, notes)
            schema_source = "meta-device"

    return ModelInfo(
        source=source,
        local_dir=local_dir,
        model_type=model_type,
        architectures=architectures,
        pipeline_tag=pipeline_tag,
        config=config,
        image_size=max(height, width),
        num_channels=_int(config.get("num_channels")) or 3,
        patch_size=_square_int(config.get("patch_size")),
        hidden_size=_hidden_size(config, config_obj),
        num_labels=len(id2label),
        id2label=id2label,
        image_mean=mean,
        image_std=std,
        preprocessor=preprocessor,
        weight_files=weight_files,
        state_dict=state_dict,
        schema_source=schema_source,
        input_size=(height, width),
        revision=resolved_revision,
        remote_weight_files=remote_files,
        notes=notes,
        local=local is not None,
    )


# -- source resolution ----------------------------------------------------------------------------------------


def _as_local_dir(source: str) -> Path | None:
    """The local folder ``source`` names, or None when it should be treated as a Hub id."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.is_file():
        if path.name == CONFIG_NAME:
            return path.parent
        raise ModelSourceError(
            f"{source} is a file, not a model folder", "pass the folder that holds config.json"
        )
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    # "org/name" may be a hub id; anything else with path syntax is a folder that is not there
    looks_like_path = (
        source.startswith((".", "/", "~")) or source.count("/") > 1 or os.sep != "/" and os.sep in source
    )
    try:
        validate_repo_id(source)
    except HFValidationError:
        looks_like_path = True
    if looks_like_path:
        raise ModelSourceError(
            f"local folder {source} does not exist (and it is not a Hub model id)",
            "check the path; a model folder holds config.json, e.g. --model ./path/with/config.json",
        )
    return None


def _offline(offline: bool | None) -> bool:
    if offline is not None:
        return offline
    from huggingface_hub import constants

    env = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").strip().upper()
    return constants.is_offline_mode() or env in {"1", "ON", "YES", "TRUE"}


def _endpoint() -> str:
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _resolve_hub(
    repo_id: str, *, revision: str | None, cache_dir: str | Path | None, offline: bool, notes: list[str]
) -> tuple[Path, str | None, "_RemoteWeights | None"]:
    """Snapshot folder with the small files of ``repo_id``, the commit, and (online) a remote-weights reader."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    import httpx

    endpoint = _endpoint()
    cache = str(cache_dir) if cache_dir is not None else None
    where = f"revision {revision!r} of " if revision else ""
    cache_hint = f"the cache in {cache}" if cache else "the HF cache (HF_HOME / HF_HUB_CACHE)"

    def from_cache(reason: str, hint: str) -> Path:
        try:
            with _quiet_hub():
                folder = snapshot_download(
                    repo_id,
                    revision=revision,
                    cache_dir=cache,
                    allow_patterns=HUB_ALLOW_PATTERNS,
                    local_files_only=True,
                )
        except (LocalEntryNotFoundError, OSError) as exc:
            raise ModelSourceError(reason, hint) from exc
        return Path(folder)

    if offline:
        folder = from_cache(
            f"{where}{repo_id} is not in {cache_hint} and the Hub is offline (HF_HUB_OFFLINE=1 / offline mode)",
            f"{LOCAL_DIR_HINT}, or pre-populate the cache while online (hf download {repo_id}) and point HF_HOME at it",
        )
        notes.append(f"offline: resolved {repo_id} from the local HF cache")
        return folder, folder.name, None

    api = HfApi(endpoint=endpoint)
    unreachable: Exception | None = None
    try:
        with _quiet_hub():
            info = api.model_info(repo_id, revision=revision, timeout=HUB_TIMEOUT_S)
    except GatedRepoError as exc:
        raise ModelSourceError(
            f"{repo_id} is gated on the Hub and this machine has no access",
            f"accept its terms on the Hub and log in (hf auth login), or {LOCAL_DIR_HINT}",
        ) from exc
    except RepositoryNotFoundError as exc:
        raise ModelSourceError(
            f"model {repo_id} not found on the Hub ({endpoint})",
            f"check the id (org/name); for a private model log in (hf auth login); or {LOCAL_DIR_HINT}",
        ) from exc
    except RevisionNotFoundError as exc:
        raise ModelSourceError(
            f"{repo_id} has no revision {revision!r} on the Hub", "pass an existing branch, tag or commit"
        ) from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status is not None and status < 500:
            raise ModelSourceError(f"the Hub refused {repo_id}: {_first_line(exc)}", LOCAL_DIR_HINT) from exc
        unreachable = exc  # Hub down: the cache may still have it
    except (httpx.TransportError, OSError) as exc:  # OSError covers OfflineModeIsEnabled (ConnectionError)
        unreachable = exc
    if unreachable is not None:
        reason = f"{type(unreachable).__name__}: {_first_line(unreachable)}"
        folder = from_cache(
            f"cannot reach the Hugging Face Hub at {endpoint} to resolve {repo_id} ({reason}) "
            f"and it is not in {cache_hint}",
            f"check the network / HF_ENDPOINT; or work offline: {LOCAL_DIR_HINT}, "
            "or HF_HUB_OFFLINE=1 with a pre-populated HF_HOME",
        )
        notes.append(f"Hub unreachable ({reason}): used the cached snapshot of {repo_id}")
        return folder, folder.name, None

    siblings = [s.rfilename for s in (info.siblings or [])]
    if CONFIG_NAME not in siblings:
        raise ModelSourceError(
            f"Hub repo {repo_id} has no {CONFIG_NAME} (not a transformers model)",
            "tao-scaffold ports transformers vision models; pick a repo with config.json",
        )
    try:
        with _quiet_hub():
            # the revision as given (not info.sha) so the cache records refs/<revision> for later offline runs
            folder = snapshot_download(
                repo_id,
                revision=revision,
                cache_dir=cache,
                allow_patterns=HUB_ALLOW_PATTERNS,
                etag_timeout=HUB_TIMEOUT_S,
                endpoint=endpoint,
            )
    except (httpx.TransportError, HfHubHTTPError, OSError) as exc:
        raise ModelSourceError(
            f"downloading the config files of {repo_id} failed: {type(exc).__name__}: {_first_line(exc)}",
            f"retry, or {LOCAL_DIR_HINT}",
        ) from exc
    sha = Path(folder).name  # the commit the snapshot holds
    return Path(folder), sha, _RemoteWeights(api, repo_id, sha, siblings, Path(folder))


@dataclass
class _RemoteWeights:
    """Reads the safetensors headers of a Hub repo with ``get_safetensors_metadata`` (HTTP range requests)."""

    api: Any
    repo_id: str
    revision: str | None
    siblings: list[str]
    folder: Path  # snapshot folder (holds the index of a sharded repo)

    def schema(self, notes: list[str]) -> tuple[list[str], dict[str, tuple[tuple[int, ...], str]]]:
        from huggingface_hub.errors import NotASafetensorsRepoError, SafetensorsParsingError

        if SAFETENSORS_SINGLE not in self.siblings and SAFETENSORS_INDEX not in self.siblings:
            others = [
                s for s in self.siblings if s.endswith((".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack"))
            ]
            if others:
                notes.append(
                    f"weights on the Hub are not safetensors ({', '.join(others[:3])}): schema from config"
                )
            return [], {}
        try:
            with _quiet_hub():
                files_metadata = self._files_metadata()
        except NotASafetensorsRepoError:
            return [], {}
        except SafetensorsParsingError as exc:
            raise ModelSourceError(
                f"the safetensors header of {self.repo_id} on the Hub is corrupt: {_first_line(exc)}",
                "report it to the model's authors, or use a local copy with valid weights",
            ) from exc
        except Exception as exc:  # pylint: disable=broad-exception-caught  # network trouble mid-way
            notes.append(
                f"could not read weight headers from the Hub ({type(exc).__name__}): schema from config"
            )
            return [], {}
        schema: dict[str, tuple[tuple[int, ...], str]] = {}
        for name in sorted(files_metadata):
            for key, tensor in files_metadata[name].tensors.items():
                schema[key] = (tuple(int(d) for d in tensor.shape), str(tensor.dtype))
        return sorted(files_metadata), schema

    def _files_metadata(self) -> dict[str, Any]:
        """filename -> SafetensorsFileMetadata. ``get_safetensors_metadata`` for a single file; for a sharded repo
        each shard's header is parsed against the index already in the snapshot (``get_safetensors_metadata``
        would fetch the index again, into the default cache rather than ``cache_dir``)."""
        index = self.folder / SAFETENSORS_INDEX
        if SAFETENSORS_SINGLE in self.siblings or not index.is_file():
            meta = self.api.get_safetensors_metadata(
                self.repo_id, revision=self.revision, timeout=HUB_TIMEOUT_S
            )
            return dict(meta.files_metadata)
        weight_map = _read_json(index).get("weight_map") or {}
        return {
            name: self.api.parse_safetensors_file_metadata(
                self.repo_id, name, revision=self.revision, timeout=HUB_TIMEOUT_S
            )
            for name in sorted(set(map(str, weight_map.values())))
        }


@contextmanager
def _quiet_hub() -> Iterator[None]:
    """Silence huggingface_hub's warnings and progress bars (small files; our errors say it in one line)."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    bars_were_disabled = are_progress_bars_disabled()
    logger.setLevel(logging.ERROR)
    disable_progress_bars()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        if not bars_were_disabled:
            enable_progress_bars()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- config and preprocessing ---------------------------------------------------------------------------------


MAX_JSON_BYTES = 16 * 2**20  # HF configs are kilobytes; ImageNet-21k's id2label is under 1 MiB


def _read_json(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise ModelSourceError(f"{path} is larger than {MAX_JSON_BYTES // 2**20} MiB: not a HF config",
                                   "point --model at a transformers model folder")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelSourceError(
            f"cannot read {path}: {_first_line(exc)}", "check the file's permissions"
        ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelSourceError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            "fix the file by hand or download it again",
        ) from exc
    except RecursionError as exc:
        raise ModelSourceError(f"{path} is nested too deeply to be a HF config",
                               "fix the file by hand or download it again") from exc
    if not isinstance(data, dict):
        raise ModelSourceError(f"{path} is not a JSON object", "it must hold a {...} mapping of settings")
    return data


@functools.cache
def _snapshot() -> dict[str, Any]:
    """transformers' auto-mapping name tables, snapshotted by scripts/regen_hf_tables.py (importing
    transformers costs seconds; a test keeps the snapshot equal to the pinned version's tables)."""
    return json.loads(HF_TABLES.read_text(encoding="utf-8"))


@functools.cache
def _tables() -> tuple[tuple[frozenset[str], frozenset[str], str, bool], ...]:
    """(model_types, architecture names, pipeline tag, is_vision) per transformers auto-mapping name table."""
    return tuple(
        (frozenset(t["model_types"]), frozenset(t["architectures"]), t["tag"], t["vision"])
        for t in _snapshot()["tables"]
    )


def vision_model_types() -> set[str]:
    """Every model_type transformers maps to a vision head, image model or backbone."""
    return {mt for types, _, _, is_vision in _tables() if is_vision for mt in types}


def pipeline_tag_for(model_type: str, architectures: list[str]) -> str:
    """The pipeline tag the architectures imply (vision tables first), ``feature-extraction`` for a vision
    model_type with a bare ``*Model`` or no architecture, ``unknown`` when no table names the architecture."""
    for _, archs, tag, _ in _tables():
        if any(arch in archs for arch in architectures):
            return tag
    is_vision = model_type in vision_model_types() or catalog.family_for(model_type) is not None
    if is_vision and (not architectures or all(a.endswith("Model") for a in architectures)):
        return "feature-extraction"
    return "unknown"


def _check_vision(model_type: str, architectures: list[str], source: str) -> str:
    tf_version = _snapshot()["transformers_version"]
    config_model_types = set(_snapshot()["config_model_types"])

    tag = pipeline_tag_for(model_type, architectures)
    if model_type in vision_model_types() or catalog.family_for(model_type) is not None:
        return tag
    ported = ", ".join(catalog.known_model_types())
    if model_type not in config_model_types:
        raise UnsupportedModelError(
            f"model_type {model_type!r} of {source} is unknown to transformers {tf_version}",
            f"tao-scaffold ports transformers vision models (catalog: {ported}); remote-code models are not supported",
        )
    arch = ", ".join(architectures) or "no architecture"
    raise UnsupportedModelError(
        f"{source} is not a computer-vision model: model_type {model_type!r} ({arch}, pipeline tag {tag!r})",
        f"tao-scaffold ports vision models (e.g. {ported}); pick an image model",
    )


def _config_object(local_dir: Path, model_type: str) -> Any:
    """transformers' config object for the folder (derived attributes such as Swin's hidden_size)."""
    from transformers import AutoConfig

    try:
        with _quiet_transformers():
            return AutoConfig.from_pretrained(str(local_dir), local_files_only=True)
    except Exception as exc:  # pylint: disable=broad-exception-caught  # bad configs raise many types
        raise ModelSourceError(
            f"transformers cannot load {local_dir / CONFIG_NAME} as a {model_type!r} config: {_first_line(exc)}",
            "fix the value it names, or re-download config.json",
        ) from exc


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as tf_logging

    level = tf_logging.get_verbosity()
    tf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        tf_logging.set_verbosity(level)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _square_int(value: Any) -> int | None:
    """An int, or the common value of an [h, w] pair (None when absent or not square)."""
    if _int(value) is not None:
        return value
    if isinstance(value, (list, tuple)) and value and all(_int(v) is not None for v in value):
        return value[0] if len(set(value)) == 1 else None
    return None


def _hw(value: Any) -> tuple[int, int] | None:
    """(height, width) from the shapes HF preprocessors and configs use for a size; None if it names none."""
    if _int(value) is not None and value > 0:
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_int(v) for v in value):
        return int(value[0]), int(value[1])
    if isinstance(value, Mapping):
        if _int(value.get("height")) and _int(value.get("width")):
            return int(value["height"]), int(value["width"])
        for key in ("shortest_edge", "longest_edge", "max_height", "max_width"):
            if _int(value.get(key)):
                return int(value[key]), int(value[key])
    return None


def _input_size(
    pre: Mapping[str, Any], config: Mapping[str, Any], family: catalog.Family | None, notes: list[str]
) -> tuple[int, int]:
    crop = _hw(pre.get("crop_size"))
    size = _hw(pre.get("size"))
    # crop_size wins when the processor centre-crops (old feature extractors wrote crop_size without the flag)
    do_crop = pre.get("do_center_crop", crop is not None)
    if crop and do_crop:
        return crop
    if size:
        return size
    if crop:
        return crop
    from_config = _hw(config.get("image_size"))
    if from_config:
        if pre:
            notes.append("preprocessor_config.json has no size: image size from config.json")
        return from_config
    default = family.default_image_size if family else 224
    notes.append(f"no image size in preprocessor_config.json or config.json: using the default {default}")
    return default, default


def _floats(value: Any) -> list[float] | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [float(value)] * 3
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        return [float(v) for v in value]
    return None


def _mean_std(
    pre: Mapping[str, Any], family: catalog.Family | None, notes: list[str]
) -> tuple[list[float], list[float]]:
    if pre.get("do_normalize") is False:  # e.g. RTDetrImageProcessor: [0, 1] input, image_mean/std unused
        notes.append("preprocessor_config.json: do_normalize false -> mean 0 / std 1 (image_mean/std ignored)")
        return [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    mean, std = _floats(pre.get("image_mean")), _floats(pre.get("image_std"))
    if mean and std:
        return mean, std
    fam_mean = family.mean if family else catalog.IMAGENET_MEAN
    fam_std = family.std if family else catalog.IMAGENET_STD
    origin = f"the {family.name} family default" if family else "the ImageNet default"
    notes.append(f"no image_mean/image_std in preprocessor_config.json: using {origin}")
    return mean or list(fam_mean), std or list(fam_std)


def _id2label(config: Mapping[str, Any], notes: list[str]) -> dict[int, str]:
    from scaffolder.plan import MAX_CLASSES

    raw = config.get("id2label")
    if raw is not None and not isinstance(raw, Mapping):
        raise ModelSourceError(f"config.json id2label is a {type(raw).__name__}, not a mapping",
                               'write it as {"0": "cat", "1": "dog", ...}')
    count = config.get("num_labels")
    if (raw and len(raw) > MAX_CLASSES) or (_int(count) or 0) > MAX_CLASSES:
        raise ModelSourceError(f"config.json has {len(raw) if raw else count} labels (at most {MAX_CLASSES})",
                               "fix num_labels / id2label, or pass --num-classes")
    if isinstance(raw, Mapping) and raw:
        out: dict[int, str] = {}
        for key, value in raw.items():
            try:
                out[int(key)] = str(value)
            except (TypeError, ValueError) as exc:
                raise ModelSourceError(
                    f"config.json id2label has a non-integer key {key!r}",
                    'keys must be class indices ("0", "1", ...)',
                ) from exc
        return dict(sorted(out.items()))
    # transformers' PretrainedConfig default: num_labels (2 when absent) generic labels
    count = _int(config.get("num_labels")) or 2
    notes.append(
        f"config.json has no id2label: transformers' default of {count} generic labels (LABEL_0, ...)"
    )
    return {i: f"LABEL_{i}" for i in range(count)}


def _hidden_size(config: Mapping[str, Any], config_obj: Any) -> int | None:
    """Width of the final feature map / token embedding."""
    for candidate in (
        config.get("hidden_size"),
        getattr(config_obj, "hidden_size", None),
        (config.get("hidden_sizes") or [None])[-1] if isinstance(config.get("hidden_sizes"), list) else None,
        config.get("hidden_dim"),
        _hierarchical_width(config),
    ):
        if _int(candidate):
            return int(candidate)
    return None


def _hierarchical_width(config: Mapping[str, Any]) -> int | None:
    """Swin/Hiera-style stage widths double per stage: embed_dim * 2**(stages-1) (what transformers derives)."""
    depths, embed = config.get("depths"), _int(config.get("embed_dim"))
    return embed * 2 ** (len(depths) - 1) if embed and isinstance(depths, list) and depths else None


# -- weight schema --------------------------------------------------------------------------------------------


def _local_safetensors_schema(
    folder: Path, notes: list[str], *, required: bool
) -> tuple[list[Path], dict[str, tuple[tuple[int, ...], str]]]:
    """Schema from the folder's safetensors headers; ([], {}) when the folder holds no (complete) weights.

    ``required``: a local folder whose index names missing shards is an error; a Hub snapshot that only has the
    index (weights not cached) is not.
    """
    single = folder / SAFETENSORS_SINGLE
    index = folder / SAFETENSORS_INDEX
    if single.is_file():
        files = [single]
    elif index.is_file():
        weight_map = _read_json(index).get("weight_map")
        if not isinstance(weight_map, Mapping) or not weight_map:
            raise ModelSourceError(f"{index} has no weight_map", "re-download the index file")
        files = [folder / name for name in sorted(set(map(str, weight_map.values())))]
        missing = [p.name for p in files if not p.is_file()]
        if missing:
            if required:
                raise ModelSourceError(
                    f"{index} lists {len(missing)} shard(s) missing from {folder}: {', '.join(missing[:3])}",
                    "download every shard, or delete the index to inspect the config alone",
                )
            return [], {}
    else:
        others = sorted(folder.glob("*.safetensors"))
        if len(others) == 1:
            files = others
        else:
            if others:
                notes.append(
                    f"several safetensors files and no index ({', '.join(p.name for p in others[:3])})"
                )
            pickles = [p.name for p in sorted(folder.glob("*.bin"))[:3]]
            if pickles:
                notes.append(
                    f"weights are not safetensors ({', '.join(pickles)}; not read): schema from config"
                )
            return [], {}
    schema: dict[str, tuple[tuple[int, ...], str]] = {}
    for path in files:
        schema.update(read_safetensors_schema(path))
    return files, schema


def read_safetensors_schema(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """key -> (shape, dtype) from a safetensors header; no tensor data is read."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            out: dict[str, tuple[tuple[int, ...], str]] = {}
            for key in handle.keys():
                tensor = handle.get_slice(key)
                out[key] = (tuple(int(d) for d in tensor.get_shape()), str(tensor.get_dtype()))
            return out
    except (SafetensorError, OSError, ValueError) as exc:
        hint = "download the file again (it is truncated or not a safetensors file)"
        try:
            with path.open("rb") as fh:
                if fh.read(40).startswith(b"version https://git-lfs"):
                    hint = "it is a Git LFS pointer, not the weights: run `git lfs pull` in the model folder"
        except OSError:
            pass
        raise ModelSourceError(f"{path} has a corrupt safetensors header: {_first_line(exc)}", hint) from exc


def _meta_device_schema(
    config_obj: Any, architectures: list[str], config: Mapping[str, Any], local_dir: Path, notes: list[str]
) -> dict[str, tuple[tuple[int, ...], str]]:
    """Build the model on the meta device (no memory, no weights) and read its state dict under the key names its
    checkpoint files carry (``convert.hf_keys.checkpoint_view``: transformers >= 5.9 renames modules in memory)."""
    import torch
    import transformers

    model_cls = None
    for arch in architectures:
        candidate = getattr(transformers, arch, None)
        if isinstance(candidate, type) and issubclass(candidate, transformers.PreTrainedModel):
            model_cls = candidate
            break
    if model_cls is None and architectures:
        notes.append(
            f"{', '.join(architectures)} is not a transformers class: schema of the base model (AutoModel)"
        )
    dtype = getattr(torch, str(config.get("dtype") or config.get("torch_dtype") or "float32"), None)
    try:
        with _quiet_transformers(), torch.device("meta"):
            if model_cls is not None:
                model = model_cls(config_obj)
            else:
                model = transformers.AutoModel.from_config(config_obj)
        if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
            model = model.to(dtype)
    except Exception as exc:  # pylint: disable=broad-exception-caught  # modeling code, any type
        what = model_cls.__name__ if model_cls else "AutoModel"
        raise ModelSourceError(
            f"cannot build {what} from {local_dir / CONFIG_NAME} to read its state dict: {_first_line(exc)}",
            "check config.json, or add model.safetensors so the schema comes from the weights",
        ) from exc
    from scaffolder.convert.hf_keys import checkpoint_view

    schema: dict[str, tuple[tuple[int, ...], str]] = {}
    seen: set[int] = set()
    state, _ = checkpoint_view(model)
    for key, tensor in state.items():
        if id(tensor) in seen:  # tied weights are stored once, as save_pretrained does
            continue
        seen.add(id(tensor))
        dtype_name = str(tensor.dtype).removeprefix("torch.")
        schema[key] = (tuple(int(d) for d in tensor.shape), _TORCH_TO_ST_DTYPE.get(dtype_name, dtype_name))
    return schema
