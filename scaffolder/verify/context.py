"""Everything a stage needs: the port, its task support, the runner, the work/report folders, the options,
the shared dataset, the artifacts earlier stages produced, and whether TensorRT is usable."""

from __future__ import annotations

import json
import shlex
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from scaffolder.verify.port import Port
from scaffolder.verify.runner import Runner
from scaffolder.verify.tasks.base import Dataset, TaskSupport

MARKER = ".tao-scaffold-verify"  # a report folder verify may wipe carries this file


@dataclass
class Options:
    runner: str = "local"
    device: str = "cpu"
    stages: list[str] = field(default_factory=list)
    data: Path | None = None
    timeout: float = 3600.0
    export_tolerance: float = 1e-4
    preprocess_tolerance: float = 1e-4
    trt_fp32_tolerance: float = 1e-3
    trt_fp16_cosine: float = 0.999
    trt_precisions: list[str] = field(default_factory=list)  # empty: the gen_trt_engine spec's data_type
    trt_required: bool = False
    strict: bool = False
    verbose: bool = False
    jobs: int = 2
    python: str | None = None
    model: str | None = None  # the port's source model (folder or hub id) when its recorded name is not enough
    argv_for_rerun: list[str] = field(default_factory=list)  # the verify command line, minus --stages


@dataclass
class TrtStatus:
    available: bool
    reason: str
    versions: dict[str, str] = field(default_factory=dict)


class VerifyContext:
    def __init__(self, port: Port, task: TaskSupport, runner: Runner, options: Options, report_dir: Path,
                 work_dir: Path, on_line: Callable[[str, str], None] | None = None):
        self.port = port
        self.task = task
        self.runner = runner
        self.options = options
        self.report_dir = report_dir
        self.work_dir = work_dir
        self.logs_dir = report_dir / "logs"
        self.on_line = on_line or (lambda stage, line: None)
        self.cancel = threading.Event()
        self.artifacts: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._dataset: Dataset | None = None
        self._dataset_error: Exception | None = None
        self._trt: TrtStatus | None = None
        self.environment: dict[str, Any] = {}

    # -- folders ----------------------------------------------------------------------------------------
    @property
    def results_dir(self) -> Path:
        return self.work_dir / "results"

    @property
    def deploy_results_dir(self) -> Path:
        return self.work_dir / "deploy"

    @property
    def probe_dir(self) -> Path:
        return self.work_dir / "probe"

    def fresh_dir(self, path: Path) -> Path:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def write_json(self, name: str, data: Any) -> Path:
        path = self.probe_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return path

    def target(self, path: Path) -> str:
        return self.runner.target(path)

    def rel(self, path: Path | str) -> str:
        path = Path(path)
        for base in (self.report_dir, self.port.root):
            try:
                return str(path.relative_to(base))
            except ValueError:
                continue
        return str(path)

    # -- shared data ---------------------------------------------------------------------------------------
    def img_size(self) -> int:
        from scaffolder.verify import specs as S

        try:
            value = S.get(S.load_yaml(self.port.train_spec), self.task.img_size_key, None) \
                if self.task.img_size_key else None
        except S.SpecError:
            value = None
        return int(value or self.port.answers.get("img_size") or 224)

    def dataset(self) -> Dataset:
        """The verification dataset (synthetic, or the bounded view of ``--data``), made once per run."""
        with self._lock:
            if self._dataset is None and self._dataset_error is None:
                dest = self.fresh_dir(self.work_dir / "data")
                try:
                    if self.options.data:
                        self._dataset = self.task.user_dataset(self.port, Path(self.options.data), dest)
                    else:
                        self._dataset = self.task.synthetic_dataset(self.port, dest, self.img_size())
                except Exception as exc:  # noqa: BLE001 - re-raised to every stage that needs the data
                    self._dataset_error = exc
            if self._dataset_error is not None:
                raise self._dataset_error
            assert self._dataset is not None
            return self._dataset

    def set_artifact(self, key: str, value: Any) -> None:
        with self._lock:
            self.artifacts[key] = value

    def artifact(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self.artifacts.get(key, default)

    # -- TensorRT ------------------------------------------------------------------------------------------
    def trt(self) -> TrtStatus:
        """Is TensorRT (and pycuda) importable in the tao-deploy environment? Probed once."""
        with self._lock:
            if self._trt is not None:
                return self._trt
        status = self._probe_trt()
        with self._lock:
            self._trt = status
        return status

    def _probe_trt(self) -> TrtStatus:
        where = "the tao-deploy container" if self.runner.kind == "docker" else f"{self.runner.python}"
        out = self.probe_dir / "trt_check.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        log = self.logs_dir / "trt_check.log"
        try:
            result = self.runner.run(
                ["python", self.runner.probe_script("trt_check.py"), "--out", self.target(out)],
                repo="tao-deploy", log_path=log, timeout=300,
            )
        except Exception as exc:  # noqa: BLE001 - e.g. the deploy container could not start
            return TrtStatus(False, f"could not probe TensorRT in {where}: {exc}")
        data = _read_json(out)
        if data.get("ok"):
            if self.options.device == "cpu":
                return TrtStatus(False, "--device cpu: TensorRT engines need a GPU", data.get("versions", {}))
            return TrtStatus(True, "", data.get("versions", {}))
        error = data.get("error") or f"probe {result.describe()}"
        return TrtStatus(False, f"TensorRT not importable in {where} ({error})")

    # -- rerun -------------------------------------------------------------------------------------------
    def rerun_line(self, stage: str) -> str:
        return shlex.join([*self.options.argv_for_rerun, "--stages", stage])


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
