"""The model runtime (onnxruntime threads, the folder of converted models) takes its settings from the engine's
settings, read once at the top; the modules below the engine do not read the environment themselves."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from faceplus.convert import cache
from faceplus.engine import Engine
from faceplus.models import runtime
from faceplus.settings import EngineSettings, RuntimeSettings

SRC = Path(__file__).resolve().parents[2] / "src" / "faceplus"
#: Packages below the command line and the server: given their settings, never reading them.
BELOW = ("models", "convert", "attributes", "evaluation", "tools")
#: The engine's own modules (engine.py is the library's entry: Engine() reads FACEPLUS_* when given nothing).
ENGINE_MODULES = ("calibration", "chips", "crops", "detection", "embedders", "imaging", "landmarks", "results")


@pytest.fixture
def restored():
    before = runtime.current()
    yield
    runtime.configure(before)


def test_the_engine_applies_its_runtime_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restored) -> None:
    monkeypatch.setenv("FACEPLUS_CACHE_DIR", str(tmp_path / "from-the-environment"))
    monkeypatch.setenv("FACEPLUS_ORT_THREADS", "3")
    given = RuntimeSettings(ort_threads=2, cache_dir=tmp_path / "given")
    Engine(EngineSettings(runtime=given))
    assert runtime.current() == given and runtime.default_threads() == 2
    assert cache.cache_dir() == tmp_path / "given" / "models" and cache.cache_dir().is_dir()
    assert not (tmp_path / "from-the-environment").exists()


def test_the_environment_reaches_the_runtime_through_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restored
) -> None:
    monkeypatch.setenv("FACEPLUS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FACEPLUS_ORT_THREADS", "3")
    settings = EngineSettings.from_env()
    assert settings.runtime == RuntimeSettings(ort_threads=3, cache_dir=tmp_path / "cache")
    Engine(settings)
    assert cache.cache_dir() == tmp_path / "cache" / "models" and runtime.default_threads() == 3


def reads_environment(path: Path) -> list[str]:
    """``os.environ`` / ``os.getenv`` reads and ``from_env`` calls in one module (assignments to os.environ, which
    configure a library for this process, are not reads)."""
    found = []
    tree = ast.parse(path.read_text(), str(path))
    written = {id(t) for node in ast.walk(tree) if isinstance(node, ast.Assign) for t in node.targets}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "from_env"):
            parent_written = any(
                isinstance(t, ast.Subscript) and t.value is node for t in ast.walk(tree) if id(t) in written
            )
            if not parent_written:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.attr}")
    return found


def test_nothing_below_the_engine_reads_the_environment() -> None:
    modules = [path for package in BELOW for path in sorted((SRC / package).rglob("*.py"))]
    modules += [SRC / f"{name}.py" for name in ENGINE_MODULES]
    found = [hit for path in modules for hit in reads_environment(path)]
    assert not found, found
