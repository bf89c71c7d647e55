"""New backbones: families TAO 7.3 lacks get a generated backbone_v2 module (timm subclass or HF wrapper).

Real TAO 7.3.0 packages, no mocks. Covers the plan (strategy and why), the rendered module against the timm
architecture it claims to be (every catalog variant), and generate into a workspace: the module is registered
once in backbone_v2/__init__.py, builds through BACKBONE_REGISTRY as a BackboneBase (never a PreTrainedModel),
a second generate changes nothing, and the generated L0 tests pass.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import black
import pytest

from scaffolder import catalog
from scaffolder.cli import main
from scaffolder.errors import ScaffoldError
from scaffolder.layout import BACKBONE_V2, BACKBONE_V2_INIT
from scaffolder.workspace import registered_backbones
from scaffolder.hf_inspect import inspect_model
from scaffolder.plan import PortPlan
from scaffolder.planner import plan_port
from scaffolder.render import BLACK_MODE, BLUEPRINT_ROOT
from tests.model_factory import make_model_dir

REPOS = ("tao-core", "tao-pytorch", "tao-deploy")
INIT = BACKBONE_V2_INIT
# port name -> (model folder builder, backbone, head width, image size)
PORTS = {
    "dinov2_base_cls": ("dinov2_base", "vit_base_patch14_dinov2_mlp", 768, 224),
    "deit_base_cls": ("deit", "deit_base_distilled_patch16_224", 768, 224),
    "effnet_b0_cls": ("efficientnet", "tf_efficientnet_b0", 1280, 224),
    "cvt_13_cls": ("cvt_13", "cvt_13_hf", 384, 224),
}
# backbones generated into backbone_v2 (detection's "generated" ResNet-vd lives in the port's own model/backbone.py)
GENERATED = [v for fam in catalog.FAMILIES for v in fam.variants if v.strategy in ("timm_subclass", "hf_wrapper")]


# -- model folders ---------------------------------------------------------------------------------------------
def dinov2_base(dest: Path) -> Path:
    """facebook/dinov2-base geometry (Dinov2Model, plain MLP, 768 wide, patch 14, 518 px; no label head)."""
    make_model_dir(dest, "dinov2", weights=False, full_size=True)
    config = json.loads((dest / "config.json").read_text())
    config.update(hidden_size=768, num_attention_heads=12)
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    return dest


def cvt_13(dest: Path) -> Path:
    """microsoft/cvt-13 geometry (CvtConfig defaults): neither TAO nor timm has CvT."""
    import transformers

    config = transformers.CvtConfig(id2label={0: "cat", 1: "dog"}, label2id={"cat": 0, "dog": 1})
    config.architectures = ["CvtForImageClassification"]
    config.save_pretrained(dest)
    pre = {"do_normalize": True, "do_resize": True, "image_mean": catalog.IMAGENET_MEAN, "resample": 3,
           "image_std": catalog.IMAGENET_STD, "image_processor_type": "ConvNextImageProcessor", "crop_pct": 0.875,
           "size": {"shortest_edge": 224}}
    (dest / "preprocessor_config.json").write_text(json.dumps(pre))
    return dest


def model_dir(kind: str, dest: Path) -> Path:
    if kind == "dinov2_base":
        return dinov2_base(dest)
    if kind == "cvt_13":
        return cvt_13(dest)
    return make_model_dir(dest, kind, weights=False, full_size=True)


def plan_for(kind: str, tmp_path: Path, **config_changes) -> PortPlan:
    folder = model_dir(kind, tmp_path / kind)
    if config_changes:
        config = json.loads((folder / "config.json").read_text())
        config.update(config_changes)
        (folder / "config.json").write_text(json.dumps(config))
    info = inspect_model(str(folder), include_weights_schema=False)
    return plan_port(info, "port_x", task="classification", weights=False)


# -- helpers ---------------------------------------------------------------------------------------------------
def git(repo: Path, *args: str) -> str:
    env_args = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    return subprocess.run(["git", *env_args, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def commit_all(workspace: Path, message: str) -> None:
    for repo in REPOS:
        git(workspace / repo, "add", "-A")
        git(workspace / repo, "commit", "-qm", message, "--allow-empty")


def run_python(code: str, *, cwd: Path, pythonpath: list[Path] | None = None, timeout: int = 600) -> str:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc.stdout


def render_partial(plan: PortPlan) -> str:
    """Render the backbone partial as Copier would (its Jinja environment and envops, StrictUndefined)."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(BLUEPRINT_ROOT)),
        extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"],
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    partial = {"timm_subclass": "timm_backbone", "tao_class": "tao_class_backbone"}.get(plan.backbone_strategy,
                                                                                     "hf_wrapper_backbone")
    return env.get_template(f"blueprints/_partials/backbone/{partial}.py.jinja").render(**plan.answers())


def installed_tao_backbone_dir() -> Path:
    import nvidia_tao_pytorch

    return Path(nvidia_tao_pytorch.__file__).parent / "cv" / "backbone_v2"


# -- catalog and plan ------------------------------------------------------------------------------------------
def test_catalog_generated_backbones_are_new_names_on_real_timm_architectures():
    import timm

    names = [v.backbone for v in GENERATED]
    assert len(names) == len(set(names))
    tao_names = registered_backbones(installed_tao_backbone_dir())
    assert len(tao_names) >= 120  # the scan sees TAO's own registrations
    assert not set(names) & set(tao_names)
    assert not set(names) & set(catalog.all_backbones())
    for variant in GENERATED:
        assert variant.backbone.isidentifier() and variant.backbone == variant.backbone.lower()
        if variant.strategy == "timm_subclass":
            assert variant.timm_name in timm.list_models(variant.timm_name), variant
        else:
            assert variant.strategy == "hf_wrapper" and variant.timm_name is None


def test_plan_names_strategy_reason_and_notes(tmp_path: Path):
    plan = plan_for("dinov2_base", tmp_path)
    assert (plan.backbone, plan.backbone_strategy, plan.timm_name) == (
        "vit_base_patch14_dinov2_mlp", "timm_subclass", "vit_base_patch14_dinov2")
    assert plan.num_features == 768 and plan.img_size == 224  # HF dinov2 preprocessor crops 224
    assert "no plain-MLP DINOv2" in plan.strategy_reason and "timm has vit_base_patch14_dinov2" in plan.strategy_reason
    assert "backbone_v2/vit_base_patch14_dinov2_mlp.py" in plan.strategy_reason

    deit = plan_for("deit", tmp_path)  # DeiTForImageClassificationWithTeacher: CLS + distillation heads
    assert (deit.backbone, deit.timm_name) == ("deit_base_distilled_patch16_224", "deit_base_distilled_patch16_224")
    assert "no DeiT" in deit.strategy_reason
    deit_cls = plan_for("deit", tmp_path / "cls", architectures=["DeiTForImageClassification"])
    assert (deit_cls.backbone, deit_cls.timm_name) == (
        "deit_base_distilled_patch16_224_cls", "deit_base_distilled_patch16_224")

    effnet = plan_for("efficientnet", tmp_path)
    assert (effnet.backbone, effnet.timm_name, effnet.num_features) == (
        "tf_efficientnet_b0", "tf_efficientnet_b0", 1280)
    assert effnet.std == pytest.approx([0.229, 0.224, 0.225], abs=1e-6)  # include_top divides by std twice
    assert any("divides by image_std twice" in n for n in effnet.export_notes)
    assert any("Conv2dSame" in n for n in effnet.export_notes)

    cvt = plan_for("cvt_13", tmp_path)
    assert (cvt.backbone, cvt.backbone_strategy, cvt.timm_name) == ("cvt_13_hf", "hf_wrapper", "")
    assert "timm has no CvT" in cvt.strategy_reason and "transformers is needed at runtime" in cvt.strategy_reason
    assert any("transformers must be installed" in n for n in cvt.export_notes)

    vit = plan_for("vit", tmp_path)
    assert vit.backbone_strategy == "reuse" and vit.strategy_reason.startswith("TAO backbone_v2 registers")


# -- every catalog variant against timm ------------------------------------------------------------------------
def test_rendered_timm_backbones_are_exactly_their_timm_architectures(tmp_path: Path):
    """Every generated variant renders; each timm_subclass module has timm.create_model(timm_name)'s state dict
    (meta device), and the small ones compute exactly what the timm model computes."""
    modules = tmp_path / "generated"
    modules.mkdir()
    cases = []
    for variant in GENERATED:
        fam = next(f for f in catalog.FAMILIES if variant in f.variants)
        plan = PortPlan(name="port_x", task="classification", family=fam.name, model_type=fam.model_types[0],
                        backbone=variant.backbone, backbone_strategy=variant.strategy,
                        timm_name=variant.timm_name or "", num_features=variant.num_features,
                        backbone_kwargs=dict(variant.backbone_kwargs))
        source = black.format_str(render_partial(plan), mode=BLACK_MODE)  # as generate formats it
        assert max(len(line) for line in source.splitlines()) <= BLACK_MODE.line_length, variant.backbone
        assert "PreTrainedModel)" not in source and f"def {variant.backbone}(**kwargs):" in source
        if variant.strategy == "timm_subclass":
            (modules / f"{variant.backbone}.py").write_text(source)
            cases.append([variant.backbone, variant.timm_name, variant.num_features])
    out = run_python(f"""
        import importlib.util, json, torch, timm
        from nvidia_tao_pytorch.cv.backbone_v2 import BACKBONE_REGISTRY
        from nvidia_tao_pytorch.cv.backbone_v2.backbone_base import BackboneBase
        NUMERIC = {{"vit_small_patch14_dinov2_mlp", "deit_tiny_distilled_patch16_224",
                    "deit_tiny_distilled_patch16_224_cls", "tf_efficientnet_b0"}}
        import time
        for backbone, timm_name, width in {json.dumps(cases)}:
            started = time.time()
            spec = importlib.util.spec_from_file_location(backbone, "{modules}/" + backbone + ".py")
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
            factory = BACKBONE_REGISTRY.get(backbone)
            extra = {{}} if "efficientnet" in timm_name else {{"dynamic_img_size": True}}
            with torch.device("meta"):
                ours = factory(num_classes=3)
                ref = timm.create_model(timm_name, pretrained=False, num_classes=3, **extra)
            assert isinstance(ours, BackboneBase) and isinstance(ours, type(ref)), backbone
            assert ours.num_features == width, (backbone, ours.num_features)
            ref_shapes = {{k: tuple(v.shape) for k, v in ref.state_dict().items()}}
            if backbone.endswith("_cls"):  # one classifier (CLS token): no distillation head
                ref_shapes = {{k: s for k, s in ref_shapes.items() if not k.startswith("head_dist.")}}
            ours_shapes = {{k: tuple(v.shape) for k, v in ours.state_dict().items()}}
            assert ours_shapes == ref_shapes, (backbone, set(ours_shapes) ^ set(ref_shapes))
            print("meta", backbone, round(time.time() - started, 2))
            if backbone not in NUMERIC:
                continue
            torch.manual_seed(0)
            ref = timm.create_model(timm_name, pretrained=False, num_classes=3, **extra).eval()
            ours = factory(num_classes=3).eval()
            ours.load_state_dict({{k: v for k, v in ref.state_dict().items() if k in ours_shapes}}, strict=True)
            size = ref.pretrained_cfg["input_size"][-1]
            x = torch.randn(1, 3, size, size)
            with torch.no_grad():
                tokens = ref.forward_features(x)
                if backbone.endswith("_cls"):
                    want_pre, want = tokens[:, 0], ref.head(tokens[:, 0])
                else:
                    want_pre, want = ref.forward_head(tokens, pre_logits=True), ref.forward_head(tokens)
                assert torch.equal(ours.forward_pre_logits(x), want_pre), backbone
                assert torch.equal(ours(x), want), backbone
            print("numeric", backbone, round(time.time() - started, 2))
        print("checked", len({json.dumps(cases)}))
    """, cwd=tmp_path)
    assert f"checked {len(cases)}" in out and out.count("numeric ") == 4, out


# -- generate into a workspace ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ported(tao_workspace_template: Path, tmp_path_factory) -> Path:
    """One workspace with the four ports generated (and committed)."""
    root = tmp_path_factory.mktemp("new-backbones")
    workspace = root / "tao-workspace"
    shutil.copytree(tao_workspace_template, workspace, symlinks=True)
    for name, (kind, _backbone, _width, _size) in PORTS.items():
        folder = model_dir(kind, root / "models" / kind)
        assert main(["-q", "generate", "--model", str(folder), "--name", name, "--task", "classification",
                     "--workspace", str(workspace)]) == 0
        commit_all(workspace, f"port {name}")
    return workspace


def test_generate_writes_and_registers_each_backbone_once(ported: Path, capsys):
    init = (ported / INIT).read_text()
    for name, (kind, backbone, _width, _size) in PORTS.items():
        module = (ported / BACKBONE_V2 / f"{backbone}.py").read_text()
        assert "@BACKBONE_REGISTRY.register()" in module and f"def {backbone}(**kwargs):" in module
        assert "PreTrainedModel" not in module
        assert init.count(f"from nvidia_tao_pytorch.cv.backbone_v2.{backbone} import") == 1
        assert init.count(f'"{backbone}",') == 1  # __all__
        mapping = (ported / f"tao-pytorch/nvidia_tao_pytorch/config/{name}/model_params_mapping.py").read_text()
        assert f'"{backbone}":' in mapping  # model_params_mapping / backbone option list derive from the plan
    assert "`transformers` must be installed" in (ported / BACKBONE_V2 / "cvt_13_hf.py").read_text()

    # A second generate of every port: nothing changes, nothing is registered twice.
    for name, (kind, backbone, _width, _size) in PORTS.items():
        folder = ported.parent / "models" / kind  # the same source: the plan (model path included) is unchanged
        assert main(["generate", "--model", str(folder), "--name", name, "--task", "classification",
                     "--workspace", str(ported)]) == 0
        assert f"{INIT}:" not in capsys.readouterr().out  # no registry edit reported the second time
    for repo in REPOS:
        assert git(ported / repo, "status", "--porcelain") == "", repo
    assert (ported / INIT).read_text() == init


def test_generate_reports_the_registration(tao_workspace: Path, tmp_path: Path):
    from scaffolder.generate import generate

    plan = plan_for("efficientnet", tmp_path)
    result = generate(plan, tao_workspace, dry_run=True)
    assert any(edit.startswith(f"{INIT}: ") and "tf_efficientnet_b0" in edit for edit in result.registry_edits)
    assert {c.relpath for c in result.written} >= {INIT, f"{BACKBONE_V2}/tf_efficientnet_b0.py"}
    # a plan whose backbone would overwrite a TAO module or reuse a TAO registry name is refused, nothing written
    for bad in ("vit", "resnet_50"):
        plan.backbone = bad
        with pytest.raises(ScaffoldError, match="overwrite|already registers"):
            generate(plan, tao_workspace)
    for repo in REPOS:
        assert git(tao_workspace / repo, "status", "--porcelain") == ""


def test_generated_backbones_build_through_the_tao_registry(ported: Path):
    cases = [[backbone, width, size] for _kind, backbone, width, size in PORTS.values()]
    out = run_python(f"""
        import torch
        from nvidia_tao_pytorch.cv.backbone_v2 import BACKBONE_REGISTRY
        from nvidia_tao_pytorch.cv.backbone_v2.backbone_base import BackboneBase
        from transformers import PreTrainedModel
        import nvidia_tao_pytorch
        assert nvidia_tao_pytorch.__file__.startswith("{ported}"), nvidia_tao_pytorch.__file__
        for backbone, width, size in {cases}:
            torch.manual_seed(0)
            model = BACKBONE_REGISTRY.get(backbone)(num_classes=3).eval()
            assert isinstance(model, BackboneBase) and not isinstance(model, PreTrainedModel), type(model).__mro__
            assert not any(isinstance(m, PreTrainedModel) for m in type(model).__mro__)
            x = torch.randn(1, 3, size, size)
            with torch.no_grad():
                logits = model(x)
                assert logits.shape == (1, 3), logits.shape
                assert model.forward_pre_logits(x).shape == (1, width)
                maps = model.forward_feature_pyramid(x)
                assert isinstance(maps, list) and maps and all(m.dim() == 4 and m.shape[0] == 1 for m in maps), maps
                # export=True (frozen BN, as TAO's export builds it) computes the same function
                exported = BACKBONE_REGISTRY.get(backbone)(num_classes=3, export=True).eval()
                exported.load_state_dict(model.state_dict())
                assert torch.allclose(exported(x), logits, atol=1e-5), (backbone, (exported(x) - logits).abs().max())
            # TAO's classification build with freeze_backbone: freeze_at="all", then the head is unfrozen
            frozen = BACKBONE_REGISTRY.get(backbone)(num_classes=3, freeze_at="all")
            for p in frozen.get_classifier().parameters():
                p.requires_grad = True
            trainable = {{n for n, p in frozen.named_parameters() if p.requires_grad}}
            assert trainable and all(n.startswith(("head", "classifier")) for n in trainable), trainable
            print("ok", backbone, [tuple(m.shape[1:]) for m in maps][-1])
    """, cwd=ported, pythonpath=[ported / "tao-core", ported / "tao-pytorch"])
    assert out.count("ok ") == len(PORTS), out


def run_l0(workspace: Path, names: list[str], keyword: str | None = None, timeout: int = 1500) -> str:
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore",
            *[f"tests/cv_unit_test/{n}" for n in names]]
    if keyword:
        args += ["-k", keyword]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(workspace / "tao-core"), str(workspace / "tao-pytorch")]))
    proc = subprocess.run(args, cwd=workspace / "tao-pytorch", env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return proc.stdout


def test_generated_l0_config_and_build(ported: Path):
    out = run_l0(ported, list(PORTS), "config_defaults or build_model_forward")
    assert f"{2 * len(PORTS)} passed" in out, out


@pytest.mark.slow
def test_generated_l0_train_and_export(ported: Path):
    """fast_dev_run and ONNX export (ORT-checked) of every port: ~3 min on 2 CPU cores."""
    out = run_l0(ported, list(PORTS), "fast_dev_run or export_onnx")
    assert f"{2 * len(PORTS)} passed" in out, out
