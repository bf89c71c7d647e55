"""LibCST patch step: console_scripts in setup.py and backbone_v2/__init__.py registration."""

from __future__ import annotations

import pytest
from libcst.codemod import CodemodTest

from scaffolder.errors import NameError_, WorkspaceError
from scaffolder.patches import (
    AddConsoleScript,
    RegisterBackboneModule,
    add_console_script,
    read_console_scripts,
    register_backbone_module,
)

PYT_NAME, PYT_TARGET = (
    "vit_imagenet100",
    "nvidia_tao_pytorch.cv.vit_imagenet100.entrypoint.vit_imagenet100:main",
)

# Shape of tao-pytorch setup.py (7.0.1): setuptools.setup(...), inline entry_points dict, comment lines
# inside the list, trailing comma, other lists/dicts around it.
PYTORCH_SETUP = '''\
# SPDX-License-Identifier: Apache-2.0

"""Setup script to build the TLT launcher package."""

import setuptools

from release.python.utils import utils

version_locals = utils.get_version_details()

setuptools.setup(
    name=version_locals['__package_name__'],
    classifiers=[
        'Environment :: Console',
        # Pick your license as you wish (should match "license" above)
        'License :: OSI Approved :: Apache Software License',
    ],
    package_data={
        '': ['*.pyc', "*.yaml", "*.so", "*.pdf"]
    },
    entry_points={
        'console_scripts': [
            # CV entry points
            'segformer=nvidia_tao_pytorch.cv.segformer.entrypoint.segformer:main',
            'classification_pyt=nvidia_tao_pytorch.cv.classification_pyt.entrypoint.classification:main',

            # SDG entry point
            'stylegan_xl=nvidia_tao_pytorch.sdg.stylegan_xl.entrypoint.stylegan_xl:main',
            # Multimodal entry point
            'radio=nvidia_tao_pytorch.multimodal.radio.entrypoint.radio:main',
        ]
    },
    ext_modules=[
        utils.make_cuda_ext(
            name='voxel_generator_cuda',
            sources=['src/voxel_generator.cpp'],
        ),
    ],
)

utils.cleanup()
'''

# Shape of tao-deploy setup_l4t.py: same call, but no trailing comma after the last entry.
DEPLOY_L4T_SETUP = """\
import setuptools

setuptools.setup(
    zip_safe=False,
    entry_points={
        'console_scripts': [
            'dssd=nvidia_tao_deploy.cv.ssd.entrypoint.ssd:main',
            'ssd=nvidia_tao_deploy.cv.ssd.entrypoint.ssd:main',
            'mae=nvidia_tao_deploy.cv.mae.entrypoint.mae:main'
        ]
    }
)
"""


def _inserted_lines(before: str, after: str) -> list[str]:
    """The lines ``after`` adds to ``before``, asserting nothing else changed."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    i = 0
    while i < len(old) and old[i] == new[i]:
        i += 1
    tail = len(old) - i
    assert new[len(new) - tail :] == old[i:], "lines other than the insertion changed"
    return new[i : len(new) - tail]


class TestAddConsoleScript(CodemodTest):
    TRANSFORM = AddConsoleScript

    def test_pytorch_shape(self) -> None:
        after = PYTORCH_SETUP.replace(
            "radio:main',\n",
            f"radio:main',\n            '{PYT_NAME}={PYT_TARGET}',\n",
        )
        self.assertCodemod(PYTORCH_SETUP, after, name=PYT_NAME, target=PYT_TARGET)

    def test_no_trailing_comma_is_kept_that_way(self) -> None:
        after = DEPLOY_L4T_SETUP.replace(
            "mae:main'\n", "mae:main',\n            'vit=nvidia_tao_deploy.cv.vit.entrypoint.vit:main'\n"
        )
        self.assertCodemod(
            DEPLOY_L4T_SETUP, after, name="vit", target="nvidia_tao_deploy.cv.vit.entrypoint.vit:main"
        )

    def test_existing_entry_is_a_no_op(self) -> None:
        self.assertCodemod(
            PYTORCH_SETUP,
            PYTORCH_SETUP,
            name="segformer",
            target="nvidia_tao_pytorch.cv.segformer.entrypoint.segformer:main",
        )

    def test_double_quotes_spaces_and_comments_around_last_entry(self) -> None:
        before = """
            from setuptools import setup
            setup(
                entry_points={
                    "console_scripts": [
                        "a = pkg.a:main",
                        "b = pkg.b:main",  # keep me on b
                        # keep me before the bracket
                    ],
                },
            )
        """
        after = """
            from setuptools import setup
            setup(
                entry_points={
                    "console_scripts": [
                        "a = pkg.a:main",
                        "b = pkg.b:main",  # keep me on b
                        "c = pkg.c:main",
                        # keep me before the bracket
                    ],
                },
            )
        """
        self.assertCodemod(before, after, name="c", target="pkg.c:main")

    def test_module_level_list_variable(self) -> None:
        before = """
            CONSOLE_SCRIPTS = ['a=pkg.a:main']
            setup(entry_points={'console_scripts': CONSOLE_SCRIPTS})
        """
        after = """
            CONSOLE_SCRIPTS = ['a=pkg.a:main', 'b=pkg.b:main']
            setup(entry_points={'console_scripts': CONSOLE_SCRIPTS})
        """
        self.assertCodemod(before, after, name="b", target="pkg.b:main")

    def test_module_level_entry_points_dict_and_dict_call(self) -> None:
        before = """
            ENTRY_POINTS = {
                'console_scripts': [
                    'a=pkg.a:main',
                ],
            }
            setup(entry_points=ENTRY_POINTS)
        """
        after = """
            ENTRY_POINTS = {
                'console_scripts': [
                    'a=pkg.a:main',
                    'b=pkg.b:main',
                ],
            }
            setup(entry_points=ENTRY_POINTS)
        """
        self.assertCodemod(before, after, name="b", target="pkg.b:main")
        self.assertCodemod(
            "setup(entry_points=dict(console_scripts=[]))\n",
            "setup(entry_points=dict(console_scripts=['b=pkg.b:main']))\n",
            name="b",
            target="pkg.b:main",
        )

    def test_collision_raises_from_the_codemod(self) -> None:
        with pytest.raises(NameError_):
            self.assertCodemod(DEPLOY_L4T_SETUP, DEPLOY_L4T_SETUP, name="mae", target="pkg.mae:main")


def test_read_console_scripts_pytorch_and_deploy_shapes() -> None:
    pyt = read_console_scripts(PYTORCH_SETUP)
    assert list(pyt) == ["segformer", "classification_pyt", "stylegan_xl", "radio"]
    assert (
        pyt["classification_pyt"] == "nvidia_tao_pytorch.cv.classification_pyt.entrypoint.classification:main"
    )
    deploy = read_console_scripts(DEPLOY_L4T_SETUP)
    assert deploy["dssd"] == deploy["ssd"] == "nvidia_tao_deploy.cv.ssd.entrypoint.ssd:main"
    assert read_console_scripts("setup(entry_points={'console_scripts': ['a = pkg.a:main']})") == {
        "a": "pkg.a:main"
    }


def test_add_console_script_only_inserts_one_line() -> None:
    out = add_console_script(PYTORCH_SETUP, PYT_NAME, PYT_TARGET)
    assert _inserted_lines(PYTORCH_SETUP, out) == [f"            '{PYT_NAME}={PYT_TARGET}',\n"]


@pytest.mark.parametrize("source", [PYTORCH_SETUP, DEPLOY_L4T_SETUP], ids=["pytorch", "deploy_l4t"])
def test_add_console_script_compiles_and_is_idempotent(source: str) -> None:
    out = add_console_script(source, PYT_NAME, PYT_TARGET)
    compile(out, "setup.py", "exec")
    assert read_console_scripts(out) == {**read_console_scripts(source), PYT_NAME: PYT_TARGET}
    assert add_console_script(out, PYT_NAME, PYT_TARGET) == out


def test_collision_with_a_different_target_is_one_line_name_error() -> None:
    with pytest.raises(NameError_) as err:
        add_console_script(PYTORCH_SETUP, "segformer", PYT_TARGET, filename="tao-pytorch/setup.py")
    message = str(err.value)
    assert "\n" not in message
    assert "'segformer'" in message and "tao-pytorch/setup.py" in message
    assert "nvidia_tao_pytorch.cv.segformer.entrypoint.segformer:main" in message and PYT_TARGET in message


def test_missing_console_scripts_is_workspace_error_naming_the_file() -> None:
    source = "import setuptools\nsetuptools.setup(name='x', entry_points={'gui_scripts': []})\n"
    for call in (
        lambda: add_console_script(source, "a", "pkg.a:main", filename="ws/setup.py"),
        lambda: read_console_scripts(source, filename="ws/setup.py"),
    ):
        with pytest.raises(WorkspaceError, match="ws/setup.py"):
            call()


@pytest.mark.parametrize(
    "source",
    [
        "setup(entry_points={'console_scripts': SCRIPTS + ['a=b:c']})\n",  # not a literal list
        "setup(entry_points={'console_scripts': UNDEFINED})\n",
        "setup(\n",  # syntax error
    ],
)
def test_unpatchable_setup_py_is_workspace_error(source: str) -> None:
    with pytest.raises(WorkspaceError):
        add_console_script(source, "a", "pkg.a:main")


@pytest.mark.parametrize("name,target", [("bad name", "pkg.a:main"), ("a", "pkg.a"), ("a", "pkg.a:main'")])
def test_invalid_name_or_target_is_name_error(name: str, target: str) -> None:
    with pytest.raises(NameError_):
        add_console_script(PYTORCH_SETUP, name, target)


# --- backbone_v2/__init__.py ------------------------------------------------------------------------

# Shape of nvidia_tao_pytorch/cv/backbone_v2/__init__.py (7.3.0): absolute imports, parenthesised one
# name per line, registry import first, __all__ list of double-quoted names.
BACKBONE_INIT = '''\
# SPDX-License-Identifier: Apache-2.0

"""Backbone module."""
from nvidia_tao_pytorch.cv.backbone_v2.registry import BACKBONE_REGISTRY

from nvidia_tao_pytorch.cv.backbone_v2.resnet import (
    resnet_18,
    resnet_34,
)
from nvidia_tao_pytorch.cv.backbone_v2.vit_codetr import (
    vit_large_codetr,
)

__all__ = [
    "BACKBONE_REGISTRY",
    "resnet_18",
    "resnet_34",
    "vit_large_codetr",
]
'''

NEW_IMPORT = """\
from nvidia_tao_pytorch.cv.backbone_v2.vit_imagenet100 import (
    vit_imagenet100_base,
    vit_imagenet100_large,
)
"""

NEW_NAMES = ["vit_imagenet100_base", "vit_imagenet100_large"]


class TestRegisterBackboneModule(CodemodTest):
    TRANSFORM = RegisterBackboneModule

    def test_real_init_shape(self) -> None:
        after = BACKBONE_INIT.replace(
            "    vit_large_codetr,\n)\n", "    vit_large_codetr,\n)\n" + NEW_IMPORT
        ).replace(
            '    "vit_large_codetr",\n',
            '    "vit_large_codetr",\n    "vit_imagenet100_base",\n    "vit_imagenet100_large",\n',
        )
        self.assertCodemod(BACKBONE_INIT, after, module="vit_imagenet100", names=NEW_NAMES)

    def test_already_registered_is_a_no_op(self) -> None:
        self.assertCodemod(BACKBONE_INIT, BACKBONE_INIT, module="resnet", names=["resnet_34", "resnet_18"])

    def test_extends_the_existing_import_of_the_module(self) -> None:
        after = BACKBONE_INIT.replace("    resnet_34,\n)", "    resnet_34,\n    resnet_50,\n)").replace(
            '    "vit_large_codetr",\n', '    "vit_large_codetr",\n    "resnet_50",\n'
        )
        self.assertCodemod(BACKBONE_INIT, after, module="resnet", names=["resnet_18", "resnet_50"])

    def test_relative_single_line_style_and_tuple_all(self) -> None:
        before = """
            from .registry import BACKBONE_REGISTRY
            from .resnet import resnet_18  # the classic

            __all__ = ("BACKBONE_REGISTRY", "resnet_18")
        """
        after = """
            from .registry import BACKBONE_REGISTRY
            from .resnet import resnet_18  # the classic
            from .vit_imagenet100 import vit_imagenet100_base, vit_imagenet100_large

            __all__ = ("BACKBONE_REGISTRY", "resnet_18", "vit_imagenet100_base", "vit_imagenet100_large")
        """
        self.assertCodemod(before, after, module="vit_imagenet100", names=NEW_NAMES)

    def test_name_imported_from_another_module_raises(self) -> None:
        with pytest.raises(NameError_):
            self.assertCodemod(BACKBONE_INIT, BACKBONE_INIT, module="my_resnet", names=["resnet_18"])


def test_register_backbone_module_is_idempotent_and_compiles() -> None:
    once = register_backbone_module(BACKBONE_INIT, "vit_imagenet100", NEW_NAMES + NEW_NAMES[:1])
    assert once.count("vit_imagenet100_base") == 2  # one import, one __all__ entry, despite the duplicate arg
    assert register_backbone_module(once, "vit_imagenet100", NEW_NAMES) == once
    assert register_backbone_module(once, "vit_imagenet100", NEW_NAMES[::-1]) == once
    compile(once, "__init__.py", "exec")
    assert "# SPDX-License-Identifier: Apache-2.0\n\n" in once and '"""Backbone module."""\n' in once


def test_backbone_collision_message_is_one_line_and_names_the_file() -> None:
    with pytest.raises(NameError_) as err:
        register_backbone_module(
            BACKBONE_INIT, "my_resnet", ["resnet_18"], filename="backbone_v2/__init__.py"
        )
    message = str(err.value)
    assert "\n" not in message and "'resnet_18'" in message and "'resnet'" in message
    assert "backbone_v2/__init__.py" in message


@pytest.mark.parametrize("module,names", [("vit-x", ["a"]), ("vit", []), ("vit", ["class"])])
def test_backbone_invalid_identifiers_are_name_errors(module: str, names: list[str]) -> None:
    with pytest.raises(NameError_):
        register_backbone_module(BACKBONE_INIT, module, names)


def test_backbone_file_without_imports_or_all() -> None:
    out = register_backbone_module('"""Backbones."""\n', "vit_x", ["vit_x_base"])
    assert out == '"""Backbones."""\nfrom nvidia_tao_pytorch.cv.backbone_v2.vit_x import vit_x_base\n'
    assert register_backbone_module(out, "vit_x", ["vit_x_base"]) == out
