"""Any size of a known family (issue #10 part 2): a size no catalog variant lists gets a generated backbone.

Where TAO has the architecture but not the size (ViT-S/16, ViT-B/32 at 384 px, a 2-layer ViT, Swin at another
window or image size, ConvNeXt/ResNet depths TAO lacks), the plan generates a backbone_v2 entry that builds TAO's
own class with the model's geometry (``tao_class``); where TAO lacks the architecture (DeiT, plain-MLP DINOv2), the
timm partial's subclass takes the geometry (``timm_subclass``). Both carry it in ``PortPlan.backbone_kwargs``.

Plans are checked without torch work (config folders only, ``weights=False``), the done-when shapes included.
Proof, within the CI budget: every tiny size's module (rendered, or generated into the workspace) builds exactly
the model its mapping is derived against; ConvNeXt v1/v2, ResNet, DeiT and DINOv2 sizes reproduce HF in process
(``check_parity``); the 2-layer 192-wide ViT and a Swin at another window/image size are generated and pass the
``hf_parity`` probe (the port's own converter and build_model, HF adaptations included), all in one process.
``TAO_SCAFFOLD_ANY_SIZE_ALL=1`` adds every tiny port generated, the real ``verify --stages hf_parity``, and the
full-size done-when shapes (ViT-S/16, ViT-B/32-384).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from scaffolder import catalog
from scaffolder.errors import UnsupportedModelError
from scaffolder.hf_inspect import inspect_model
from scaffolder.layout import BACKBONE_V2, BACKBONE_V2_INIT
from scaffolder.plan import PortPlan
from scaffolder.planner import plan_port
from tests.model_factory import make_model_dir

PROBES = Path(__file__).resolve().parent.parent / "scaffolder" / "verify" / "probes"
VIT_2X192 = dict(hidden_size=192, num_hidden_layers=2, num_attention_heads=3, intermediate_size=768,
                 image_size=224, patch_size=16)

# Tiny ports, one per family and route: port name -> (factory kind, config overrides, generated backbone, strategy).
# Swin: 128 px, window 4 -> stage maps 32..4, the last equal to the window (HF does not shift there: the port's
# hf_adaptations must). ResNet: a stem of 64 (timm's), narrow stages.
TINY = {
    "any_vit": ("vit", VIT_2X192, "vit_w192_d2_h3_patch16_224", "tao_class"),
    "any_swin": ("swin", dict(image_size=128, embed_dim=8, depths=[1, 1, 2, 1], num_heads=[1, 1, 2, 2],
                              window_size=4), "swin_w8_d1x1x2x1_h1x1x2x2_patch4_window4_128", "tao_class"),
    "any_convnext": ("convnext", dict(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 2, 1], num_stages=4),
                     "convnext_w8x16x24x32_d1x1x2x1", "tao_class"),
    "any_convnextv2": ("convnextv2", dict(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 2, 1], num_stages=4),
                       "convnextv2_w8x16x24x32_d1x1x2x1", "tao_class"),
    "any_resnet": ("resnet", dict(embedding_size=64, hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1]),
                   "resnet_10_c8x16x32x64", "tao_class"),
    "any_resnet_bneck": ("resnet", dict(embedding_size=64, hidden_sizes=[32, 64, 128, 256], depths=[1, 2, 1, 1],
                                        layer_type="bottleneck"), "resnet_17_l1x2x1x1_c8x16x32x64", "tao_class"),
    "any_deit": ("deit", {}, "deit_w32_d2_h2_mlp2_distilled_patch8_32", "timm_subclass"),
    "any_dinov2": ("dinov2", {}, "vit_w32_d2_h2_patch14_dinov2_mlp_28", "timm_subclass"),
}

# Hub shapes (config only, planned without weights): kind, config overrides -> backbone, backbone_kwargs subset.
HUB_SHAPES = {
    "WinKawaks/vit-small-patch16-224": ("vit", dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                                    intermediate_size=1536, image_size=224, patch_size=16),
                                        "vit_small_patch16_224", dict(embed_dim=384, depth=12, num_heads=6)),
    "google/vit-base-patch32-384": ("vit", dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                                intermediate_size=3072, image_size=384, patch_size=32),
                                    "vit_base_patch32_384", dict(img_size=384, patch_size=32, embed_dim=768)),
    "google/vit-base-patch16-384": ("vit", dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                                intermediate_size=3072, image_size=384, patch_size=16),
                                    "vit_base_patch16_384", dict(img_size=384, patch_size=16)),
    # the non-distilled DeiT checkpoints are model_type vit
    "facebook/deit-tiny-patch16-224": ("vit", dict(hidden_size=192, num_hidden_layers=12, num_attention_heads=3,
                                                   intermediate_size=768, image_size=224, patch_size=16),
                                       "vit_tiny_patch16_224", dict(embed_dim=192, num_heads=3)),
    "facebook/deit-small-patch16-224": ("vit", dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                                    intermediate_size=1536, image_size=224, patch_size=16),
                                        "vit_small_patch16_224", dict(embed_dim=384)),
    "swin-tiny at window 12, 384 px": ("swin", dict(image_size=384, patch_size=4, embed_dim=96, depths=[2, 2, 6, 2],
                                                    num_heads=[3, 6, 12, 24], window_size=12),
                                       "swin_tiny_patch4_window12_384", dict(img_size=[384, 384], window_size=12)),
    "microsoft/resnet-26": ("resnet", dict(embedding_size=64, hidden_sizes=[256, 512, 1024, 2048],
                                           depths=[2, 2, 2, 2], layer_type="bottleneck"),
                            "resnet_26", dict(block="Bottleneck", layers=[2, 2, 2, 2])),
    "convnext v1 atto": ("convnext", dict(hidden_sizes=[40, 80, 160, 320], depths=[2, 2, 6, 2], num_stages=4),
                         "convnext_atto", dict(dims=[40, 80, 160, 320], use_grn=False, layer_scale_init_value=1e-6)),
}


def _info(kind: str, overrides: dict, dest: Path):
    return inspect_model(str(make_model_dir(dest, kind, weights=False, overrides=overrides)),
                         include_weights_schema=False)


def _plan(kind: str, overrides: dict, dest: Path, **kwargs) -> PortPlan:
    task = "classification" if kind == "dinov2" else None  # Dinov2Model has no task head
    return plan_port(_info(kind, overrides, dest), "port_x", task=task, weights=False, **kwargs)


# -- plans (no torch work) -------------------------------------------------------------------------------------
@pytest.mark.parametrize("hub_id", list(HUB_SHAPES))
def test_hub_shapes_plan_a_backbone_with_their_own_geometry(hub_id: str, tmp_path: Path):
    kind, overrides, backbone, geometry = HUB_SHAPES[hub_id]
    plan = _plan(kind, overrides, tmp_path / "m")
    assert (plan.backbone, plan.backbone_strategy, plan.timm_name) == (backbone, "tao_class", "")
    assert geometry.items() <= plan.backbone_kwargs.items(), plan.backbone_kwargs
    assert plan.strategy_reason.startswith(f"no TAO {plan.family} variant of this size (TAO registers ")
    cls = catalog.family_named(plan.family).any_size.cls.split(":")[1]
    assert f"; generating {cls} from TAO's " in plan.strategy_reason
    assert f"backbone_v2/{backbone}.py, registered as {backbone}" in plan.strategy_reason
    assert plan.hf_adaptations == list(catalog.family_named(plan.family).hf_adaptations)
    assert PortPlan.from_answers(plan.answers()) == plan  # port.yml / answers round trip


def test_listed_sizes_still_reuse_tao(tmp_path: Path):
    for kind in ("vit", "swin", "convnext", "resnet"):
        plan = plan_port(inspect_model(str(make_model_dir(tmp_path / kind, kind, weights=False, full_size=True)),
                                       include_weights_schema=False), "port_x", weights=False)
        assert plan.backbone_strategy == "reuse" and plan.backbone_kwargs == {}, (kind, plan.backbone)


def test_inspect_says_what_it_generates(tmp_path: Path, capsys):
    from scaffolder.cli import main

    folder = make_model_dir(tmp_path / "m", "vit", weights=False, overrides=VIT_2X192)
    assert main(["-q", "inspect", str(folder), "--name", "port_x", "--no-weights"]) == 0
    out = capsys.readouterr().out
    assert ("TAO backbone:   vit_w192_d2_h3_patch16_224 (tao_class: no TAO vit variant of this size" in out
            and "generating VisionTransformer from TAO's vit.py with img_size=224, patch_size=16, embed_dim=192, "
                "depth=2, num_heads=3, mlp_ratio=4.0" in out), out


def test_names_spell_every_geometry_argument():
    """Ports that share a backbone name share its module: a name must change with every argument."""
    for kind, overrides, _backbone, _strategy in TINY.values():
        family = catalog.family_for(kind)  # the factory kinds used here are HF model types
        base = {**_factory_config(kind), **overrides}
        variant = family.sized(base)
        for key, value in base.items():
            changed = _perturbed(value)
            if changed is None or key in ("architectures", "num_stages", "id2label", "label2id"):
                continue
            try:
                other = family.sized({**base, key: changed})
            except ValueError:
                continue  # the perturbed config is refused: nothing generated
            if other.backbone_kwargs != variant.backbone_kwargs:
                assert other.backbone != variant.backbone, (key, variant.backbone)


def _factory_config(kind: str) -> dict:
    from tests.model_factory import KINDS

    return dict(KINDS[kind].tiny)


def _perturbed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value * 2
    if isinstance(value, float):
        return value + 1.0
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [*value[:-1], value[-1] * 2]
    return None


@pytest.mark.parametrize("kind,overrides,why", [
    ("resnet", dict(hidden_sizes=[8, 16, 32], depths=[1, 1, 1], embedding_size=64), "TAO's ResNet has 4"),
    ("resnet", dict(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1], embedding_size=32), "stem is 64"),
    ("swin", dict(use_absolute_embeddings=True), "no absolute position embedding"),
    ("convnext", dict(hidden_sizes=[8, 16], depths=[1, 1]), "TAO's ConvNeXtV2 has 4 stages"),
])
def test_sizes_tao_cannot_build_are_refused_with_the_reason(kind, overrides, why, tmp_path: Path):
    with pytest.raises(UnsupportedModelError, match="tao-scaffold cannot generate this size: .*" + why):
        _plan(kind, overrides, tmp_path / "m")


def test_generated_sizes_are_classification_only(tmp_path: Path):
    info = _info("convnext", TINY["any_convnext"][1], tmp_path / "m")
    with pytest.raises(UnsupportedModelError, match="generates other sizes for classification ports only"):
        plan_port(info, "port_x", task="segmentation", weights=False)


def test_plan_refuses_kwargs_that_are_not_constructor_data(tmp_path: Path):
    from scaffolder.plan import PlanFieldError

    plan = _plan("vit", VIT_2X192, tmp_path / "m")
    for bad in ({"__import__": 1}, {"depth": "os.system('x')"}, {"depth": {"a": 1}}, {"depth": [1, "x"]},
                {"depth": float("nan")}):
        with pytest.raises(PlanFieldError, match="backbone_kwargs"):
            PortPlan.from_answers({**plan.answers(), "backbone_kwargs": bad})
    with pytest.raises(PlanFieldError, match="generates no backbone"):
        PortPlan.from_answers({**plan.answers(), "backbone_strategy": "reuse", "backbone": "vit_base_patch16"})


def test_answers_of_earlier_versions_get_the_catalog_geometry(tmp_path: Path):
    """Plans written before backbone_kwargs (the timm partial had per-name tables) migrate on read."""
    plan = plan_port(inspect_model(str(make_model_dir(tmp_path / "d", "deit", weights=False, full_size=True)),
                                   include_weights_schema=False), "port_x", weights=False)
    assert plan.backbone == "deit_base_distilled_patch16_224" and plan.backbone_kwargs["embed_dim"] == 768
    old = {k: v for k, v in plan.answers().items() if k != "backbone_kwargs"}
    assert PortPlan.from_answers(old).backbone_kwargs == plan.backbone_kwargs


# -- each size builds what its mapping was derived against, and reproduces HF ----------------------------------
def _target_cases(names, tmp_path: Path, *, render: bool) -> list:
    """[backbone, module file or None, mapping target, backbone_kwargs, width] per TINY size; with ``render``, its
    module rendered from the real partial (black-formatted, as generate writes it) into ``tmp_path``."""
    import black

    from scaffolder.convert.parity import backbone_target
    from scaffolder.render import BLACK_MODE
    from tests.test_new_backbones import render_partial

    cases = []
    for name in names:
        kind, overrides, backbone, _strategy = TINY[name]
        plan = _plan(kind, overrides, tmp_path / "plans" / name)
        module = None
        if render:
            source = black.format_str(render_partial(plan), mode=BLACK_MODE)
            assert max(len(line) for line in source.splitlines()) <= BLACK_MODE.line_length, backbone
            module = tmp_path / f"{backbone}.py"
            module.write_text(source)
        target = backbone_target(backbone, strategy=plan.backbone_strategy, timm_name=plan.timm_name,
                                 family=plan.family)
        cases.append([backbone, str(module) if module else None, target, plan.backbone_kwargs, plan.num_features])
    return cases


# Sizes proven in process (scaffolder.convert.parity.check_parity: the derived mapping, the generated geometry and
# HF's eps); the generated ports below prove the rest of the route (converter, build_model, HF adaptations).
IN_PROCESS = ("any_convnext", "any_convnextv2", "any_resnet", "any_resnet_bneck", "any_deit", "any_dinov2")


@pytest.mark.parametrize("name", IN_PROCESS)
def test_size_reproduces_hf_in_process(name: str):
    import transformers

    from scaffolder.convert import check_parity

    kind, overrides, backbone, _strategy = TINY[name]
    from tests.model_factory import KINDS

    config = getattr(transformers, KINDS[kind].config_class)(**{**KINDS[kind].tiny, **overrides})
    config.architectures = [KINDS[kind].model_class]
    result = check_parity(backbone, config, seed=0)
    print(result.describe())
    assert result.mapping.ok and result.mapping_exact, result.describe()
    # as TAO builds it, only HF's norm eps (which the port records in NORM_EPS and build_model applies) differs
    assert result.passed or any("norm eps differs" in f for f in result.findings), result.describe()


# -- generate + the hf_parity probe ----------------------------------------------------------------------------
STAGE_PORTS = ("any_vit", "any_swin")  # by default; with TAO_SCAFFOLD_ANY_SIZE_ALL=1: every TINY port too
# The exhaustive runs (every tiny port generated, the real verify stage, the full-size done-when shapes) take
# minutes on 2 cores, over the CI budget: opt in with TAO_SCAFFOLD_ANY_SIZE_ALL=1.
exhaustive = pytest.mark.skipif(not os.environ.get("TAO_SCAFFOLD_ANY_SIZE_ALL"),
                                reason="exhaustive any-size runs: set TAO_SCAFFOLD_ANY_SIZE_ALL=1")


def _generate(workspace: Path, models: Path, names) -> None:
    from scaffolder.cli import main

    for name in names:
        kind, overrides, _backbone, _strategy = TINY[name]
        folder = make_model_dir(models / name, kind, weights=False, overrides=overrides)
        extra = ["--task", "classification"] if kind == "dinov2" else []
        assert main(["-q", "generate", "--model", str(folder), "--name", name, "--workspace", str(workspace),
                     "--allow-dirty", *extra]) == 0, name


@pytest.fixture(scope="module")
def sized_ports(tao_workspace_template: Path, tmp_path_factory) -> Path:
    """One workspace with the STAGE_PORTS generated from config-only model folders."""
    root = tmp_path_factory.mktemp("any-size")
    shutil.copytree(tao_workspace_template, root / "ws", symlinks=True)
    _generate(root / "ws", root / "models", STAGE_PORTS)
    return root / "ws"


def _answers(workspace: Path, name: str) -> dict:
    path = workspace / f"tao-pytorch/nvidia_tao_pytorch/cv/{name}/.tao-scaffold-answers.yml"
    return yaml.safe_load(path.read_text())


def _StageContext(workspace: Path, name: str):  # noqa: N802 - what a stage's ctx offers _hf_config
    from types import SimpleNamespace

    from scaffolder.verify.port import load_port

    return SimpleNamespace(port=load_port(workspace, name), options=SimpleNamespace(model=None))


def _probe_args(workspace: Path, name: str) -> list[str]:
    """The hf_parity stage's probe arguments for port ``name`` (scaffolder.verify.stages.weights)."""
    from scaffolder.tasks import hf_auto_class_for, task_named
    from scaffolder.verify.stages.weights import _hf_config, _hf_features

    answers = _answers(workspace, name)
    auto_class = hf_auto_class_for(task_named("classification"), answers["task_params"], answers["architectures"])
    return ["--name", name, "--config-class", f"nvidia_tao_pytorch.config.{name}.default_config:ExperimentConfig",
            "--hf-config", str(_hf_config(_StageContext(workspace, name))),
            "--hf-features", _hf_features(answers["family"], "classification"), "--auto-class", auto_class,
            "--tolerance", "1e-4"]


def _check_ports(workspace: Path, names, tmp_path: Path, rendered=()) -> None:
    """In one process (TAO and torch imported once):

    * every size (the ports ``names``, registered in ``workspace``, and the ``rendered`` modules, executed) builds
      through BACKBONE_REGISTRY as a BackboneBase with exactly the state dict of the model its weight mapping is
      derived against (``scaffolder.convert.parity.build_tao_model`` of its target and kwargs);
    * the hf_parity probe (HF model, random weights -> the port's converter -> the port's build_model, HF
      adaptations included) for every port in ``names``.
    """
    init = (workspace / BACKBONE_V2_INIT).read_text()
    for name in names:
        _kind, _overrides, backbone, strategy = TINY[name]
        plan = PortPlan.from_answers({k: v for k, v in _answers(workspace, name).items() if not k.startswith("_")})
        assert (plan.backbone, plan.backbone_strategy) == (backbone, strategy), name
        module = (workspace / BACKBONE_V2 / f"{backbone}.py").read_text()
        assert "BACKBONE_KWARGS = {" in module and f"def {backbone}(**kwargs):" in module
        assert init.count(f"from nvidia_tao_pytorch.cv.backbone_v2.{backbone} import") == 1
    targets = _target_cases(names, tmp_path, render=False) + _target_cases(rendered, tmp_path, render=True)
    probes = {name: _probe_args(workspace, name) + ["--out", str(tmp_path / f"{name}.json")] for name in names}
    code = textwrap.dedent(f"""
        import importlib.util, json, sys
        sys.path.insert(0, {str(PROBES)!r})
        from nvidia_tao_pytorch.cv.backbone_v2 import BACKBONE_REGISTRY
        from nvidia_tao_pytorch.cv.backbone_v2.backbone_base import BackboneBase
        from scaffolder.convert.parity import build_tao_model
        import hf_parity

        def shapes(model):
            return {{k: tuple(v.shape) for k, v in model.state_dict().items()}}

        for backbone, module, target, kwargs, width in {targets!r}:
            if module:
                spec = importlib.util.spec_from_file_location(backbone, module)
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            ours = BACKBONE_REGISTRY.get(backbone)(num_classes=3)  # tiny: real tensors (Swin's init calls .item())
            ref = build_tao_model(target, 3, kwargs)
            assert isinstance(ours, BackboneBase) and isinstance(ours, type(ref)), (backbone, type(ref))
            assert ours.num_features == width, (backbone, ours.num_features)
            assert shapes(ours) == shapes(ref), (backbone, set(shapes(ours)) ^ set(shapes(ref)))
            print("built", backbone)
        results = {{}}
        for name, argv in {probes!r}.items():
            sys.argv = ["hf_parity.py", *argv]
            results[name] = hf_parity.main()
        print("RESULTS " + json.dumps(results))
    """)
    path = [*filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)), str(workspace / "tao-core"),
            str(workspace / "tao-pytorch"), str(Path(__file__).resolve().parent.parent)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert proc.stdout.count("built ") == len(targets), proc.stdout
    results = json.loads(proc.stdout.split("RESULTS ", 1)[1])
    for name, result in results.items():
        print(name, TINY[name][2], result.get("max_abs_features"), result.get("max_abs_logits"))
        assert result["ok"] and not result["messages"], (name, result)
        assert result["max_abs_features"] <= 1e-4, (name, result)
        if TINY[name][0] != "dinov2":  # Dinov2Model has no classifier: its pooler_output is compared
            assert result["max_abs_logits"] <= 1e-4, (name, result)


def test_sizes_build_their_mapping_targets_and_ports_reproduce_hf(sized_ports: Path, tmp_path: Path):
    _check_ports(sized_ports, STAGE_PORTS, tmp_path, rendered=[n for n in TINY if n not in STAGE_PORTS])


@pytest.mark.slow
@exhaustive
def test_every_tiny_size_generates_and_reproduces_hf(tao_workspace: Path, tmp_path: Path):
    names = [n for n in TINY if n not in STAGE_PORTS]
    _generate(tao_workspace, tmp_path / "models", names)
    _check_ports(tao_workspace, names, tmp_path)


@pytest.mark.slow
@exhaustive
def test_verify_hf_parity_stage_passes_for_the_2_layer_vit(sized_ports: Path, tmp_path: Path):
    from scaffolder.cli import main

    report = tmp_path / "report"
    code = main(["-q", "verify", "--workspace", str(sized_ports), "--name", "any_vit", "--runner", "local",
                 "--device", "cpu", "--stages", "hf_parity", "--report", str(report)])
    stage = {s["name"]: s for s in json.loads((report / "report.json").read_text())["stages"]}["hf_parity"]
    print(stage["metrics"])
    assert code == 0 and stage["status"] == "passed", stage
    assert stage["metrics"]["max_abs_features"] <= 1e-4 and stage["metrics"]["max_abs_logits"] <= 1e-4


@pytest.mark.slow
@exhaustive
@pytest.mark.parametrize("hub_id", ["WinKawaks/vit-small-patch16-224", "google/vit-base-patch32-384"])
def test_full_size_done_when_shapes_pass_hf_parity(hub_id: str, tao_workspace: Path, tmp_path: Path):
    from scaffolder.cli import main

    kind, overrides, backbone, _geometry = HUB_SHAPES[hub_id]
    folder = make_model_dir(tmp_path / "m", kind, weights=False, full_size=True, overrides=overrides)
    assert main(["-q", "generate", "--model", str(folder), "--name", "full_vit", "--workspace",
                 str(tao_workspace)]) == 0
    assert (tao_workspace / BACKBONE_V2 / f"{backbone}.py").is_file()
    report = tmp_path / "report"
    code = main(["-q", "verify", "--workspace", str(tao_workspace), "--name", "full_vit", "--runner", "local",
                 "--device", "cpu", "--stages", "hf_parity", "--report", str(report)])
    stage = {s["name"]: s for s in json.loads((report / "report.json").read_text())["stages"]}["hf_parity"]
    print(stage["metrics"])
    assert code == 0 and stage["status"] == "passed", stage
    assert stage["metrics"]["max_abs_features"] <= 1e-4 and stage["metrics"]["max_abs_logits"] <= 1e-4
