"""What Spaces reads from space/ before the app starts: the README header, and requirements that the
header's Python can install, with one Gradio version everywhere."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from space_support import SPACE_DIR

CARD = SPACE_DIR / "README.md"
REQUIREMENTS = (REPO / "requirements.txt", SPACE_DIR / "requirements.txt")
# A release's CPU build: the same library without the GPU kernels.
CPU_BUILDS = {"tensorflow-cpu": "tensorflow"}
EMBED_SCRIPT = re.compile(r"gradio\.s3-us-west-2\.amazonaws\.com/([^/\"]+)/gradio\.js")


def header() -> dict:
    return yaml.safe_load(CARD.read_text(encoding="utf-8").split("---\n")[1])


def pins(path: Path) -> list[Requirement]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def distribution(name: str) -> importlib.metadata.Distribution:
    """The installed distribution `name`; for a CPU build that is not installed, the full build's (the tests run it)."""
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        if name not in CPU_BUILDS:
            raise
        return importlib.metadata.distribution(CPU_BUILDS[name])


def requires_python(name: str, version: str) -> SpecifierSet:
    """The Requires-Python of the installed distribution `name`, which must be `version`."""
    dist = distribution(name)
    assert dist.version == version, f"{name} {dist.version} is installed, not {version}: install the requirements"
    return SpecifierSet(dist.metadata["Requires-Python"] or "")


def test_header_python_can_install_every_requirement() -> None:
    # Quoted: unquoted, YAML reads 3.10 as the number 3.1.
    assert re.search(r'^python_version: "3\.1[12]"$', CARD.read_text(encoding="utf-8"), re.MULTILINE)
    python = Version(header()["python_version"])
    for requirement in pins(SPACE_DIR / "requirements.txt"):
        (pin,) = requirement.specifier
        assert pin.operator == "==", f"{requirement} is not pinned"
        assert requires_python(requirement.name, pin.version).contains(python), requirement
        # What an extra (gradio[mcp]) pulls in must install too: checked at the installed versions.
        dist = distribution(requirement.name)
        for extra in requirement.extras:
            for needed in map(Requirement, dist.requires or []):
                if needed.marker and needed.marker.evaluate({"extra": extra}):
                    installed = importlib.metadata.version(needed.name)
                    assert needed.specifier.contains(installed), f"{needed} but {installed} is installed"
                    assert requires_python(needed.name, installed).contains(python), needed


@pytest.mark.parametrize("platform, machine", [("linux", "x86_64"), ("linux", "aarch64"), ("darwin", "arm64"),
                                               ("win32", "AMD64")])
def test_every_platform_gets_one_tensorflow_of_the_projects_version(platform: str, machine: str) -> None:
    (project,) = [r for r in pins(REPO / "requirements.txt") if r.name == "tensorflow"]
    where = {"sys_platform": platform, "platform_machine": machine}
    (chosen,) = [r for r in pins(SPACE_DIR / "requirements.txt")
                 if r.name.startswith("tensorflow") and (r.marker is None or r.marker.evaluate(where))]
    assert chosen.specifier == project.specifier
    assert chosen.name == ("tensorflow-cpu" if (platform, machine) == ("linux", "x86_64") else "tensorflow")


def test_one_gradio_version_everywhere() -> None:
    version = header()["sdk_version"]
    assert importlib.metadata.version("gradio") == version
    for path in REQUIREMENTS:
        (gradio,) = [r for r in pins(path) if r.name == "gradio"]
        assert str(gradio.specifier) == f"=={version}" and gradio.extras == {"mcp"}, path
    pages = [REPO / "README.md", *(REPO / "training").glob("*.md"), *SPACE_DIR.rglob("*.md")]
    embeds = [found for path in pages for found in EMBED_SCRIPT.findall(path.read_text())]
    assert embeds and set(embeds) == {version}


def test_header_fields_spaces_show() -> None:
    card = header()
    assert card["sdk"] == "gradio" and card["app_file"] == "app.py"
    assert 0 < len(card["short_description"]) <= 60
    assert card["datasets"] == ["stanfordnlp/imdb"] and "mcp-server" in card["tags"]


def test_the_space_holds_the_same_quiet_tf_as_training() -> None:
    """The Space is uploaded without training/, so it keeps a copy of the file, which must not drift."""
    assert (SPACE_DIR / "quiet_tf.py").read_bytes() == (REPO / "training" / "quiet_tf.py").read_bytes()
