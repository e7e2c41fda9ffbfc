"""The house's structure, checked from the code itself: no import cycle between faceplus modules, and an API
package that reaches models, SQL drivers and storage backends only through the engine and the store interface.

Every ``import`` counts, including those inside functions and under ``TYPE_CHECKING``: a cycle hidden behind a
lazy import is still two modules that cannot be understood one without the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "faceplus"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules ``name`` imports (faceplus ones resolved to the module, others by their top-level name)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            if target.split(".")[0] != PACKAGE:
                found.add(target.split(".")[0])
                continue
            while target and target not in known:  # "faceplus.api.errors.ApiError" -> the module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    edges = {name: imported(name, path, known) for name, path in mods.items()}
    # A package's __init__ re-exporting its own modules is not a design dependency of those modules on it.
    return {
        name: {t for t in targets if t in known and not name.startswith(t + ".")} for name, targets in edges.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_faceplus_modules() -> None:
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


FORBIDDEN_IN_API = (
    "faceplus.models",
    "faceplus.store.sqlite",
    "faceplus.store.postgres",
    "faceplus.store.vector_index",  # search is the store's (store.facesets.search)
    "faceplus.detection",
)
FORBIDDEN_DRIVERS = {"sqlite3", "psycopg", "psycopg_pool", "dlib", "onnxruntime", "faiss", "cv2", "tflite2onnx"}


def test_the_api_package_imports_no_model_driver_or_backend() -> None:
    mods = modules()
    known = set(mods)
    offences = []
    for name, path in mods.items():
        if not name.startswith("faceplus.api"):
            continue
        for target in imported(name, path, known):
            if target in FORBIDDEN_DRIVERS or target.startswith(FORBIDDEN_IN_API):
                offences.append(f"{name} imports {target}")
    assert not offences, "\n".join(offences)


#: The store modules the api may import: the interfaces, the records, the factory and the erasure rules.
STORE_INTERFACE = {
    "faceplus.store",
    "faceplus.store.interfaces",
    "faceplus.store.records",
    "faceplus.store.factory",
    "faceplus.store.erasure",
}


def test_the_api_reaches_the_store_only_through_its_interface() -> None:
    mods = modules()
    known = set(mods)
    offences = [
        f"{name} imports {target}"
        for name, path in mods.items()
        if name.startswith("faceplus.api")
        for target in imported(name, path, known)
        if target.startswith("faceplus.store") and target not in STORE_INTERFACE
    ]
    assert not offences, "\n".join(offences)


def test_the_api_never_branches_on_the_backend() -> None:
    """Search, rate limits, task leases and scrubbing are store operations: no ``store.shared`` in the API."""
    offences = []
    for name, path in modules().items():
        if not name.startswith("faceplus.api"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr == "shared":
                offences.append(f"{name}:{node.lineno} reads .shared")
    assert not offences, "\n".join(offences)


def test_store_facets_are_small_and_composed() -> None:
    """Each facet interface has a dozen methods or fewer; each backend class implements one facet (its only base:
    no mixin chains), and a backend store is a ``Store`` composed of them."""
    import importlib
    import inspect
    import pkgutil

    from faceplus.store import interfaces
    from faceplus.store.interfaces import Store

    facets = {
        cls
        for cls in vars(interfaces).values()
        if inspect.isclass(cls) and cls.__module__ == interfaces.__name__ and cls is not Store
    }
    assert len(facets) >= 8
    for facet in facets:
        public = [m for m in vars(facet) if not m.startswith("_") and callable(getattr(facet, m))]
        assert len(public) <= 12, f"{facet.__name__} has {len(public)} methods"
        # a method named like a builtin type shadows it in the class's own annotations (``-> list[str]``)
        assert not set(public) & {"list", "dict", "set", "tuple", "str", "int", "float", "bytes", "type"}, facet
    for package in ("faceplus.store.sqlite", "faceplus.store.postgres"):
        implemented = set()
        for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
            module = importlib.import_module(f"{package}.{info.name}")
            for cls in vars(module).values():
                if inspect.isclass(cls) and cls.__module__ == module.__name__ and set(cls.__mro__) & facets:
                    assert len(cls.__bases__) == 1 and cls.__bases__[0] in facets | {Store}, cls
                    implemented |= set(cls.__mro__) & facets
        assert implemented == facets, f"{package} lacks {facets - implemented}"


#: The longest function and class in faceplus (lines from ``def``/``class`` to the last line, decorators
#: not counted): a longer one does several jobs and is split into named steps.
MAX_FUNCTION_LINES = 60
MAX_CLASS_LINES = 300


def oversized(path: Path, max_function: int = MAX_FUNCTION_LINES, max_class: int = MAX_CLASS_LINES) -> list[str]:
    """The functions and classes of ``path`` longer than the limits, as ``name (lines)``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            limit = max_class if isinstance(node, ast.ClassDef) else max_function
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > limit:
                found.append(f"{node.name} ({lines} lines)")
    return found


def test_the_size_checker_finds_a_long_function_and_class(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("class C:\n    def f(self):\n        a = 1\n        return a\n\n\ndef g():\n    return 1\n")
    assert oversized(source, max_function=2, max_class=3) == ["C (4 lines)", "f (3 lines)"]
    assert oversized(source, max_function=3, max_class=4) == []


def test_no_function_or_class_is_too_long() -> None:
    offences = [f"{name}: {what}" for name, path in modules().items() for what in oversized(path)]
    assert not offences, "split into named steps:\n" + "\n".join(offences)


#: The longest module of the API's services and of the jobs: a service module holds one domain's rules, a job
#: module one kind of engine work; a longer one holds several jobs and is split into a package.
MAX_SERVICE_MODULE_LINES = 250


def test_service_and_job_modules_are_small() -> None:
    layers = ("faceplus.api.services", "faceplus.jobs")
    offences = [
        f"{name} ({lines} lines)"
        for name, path in modules().items()
        if name.startswith(layers) and (lines := len(path.read_text().splitlines())) > MAX_SERVICE_MODULE_LINES
    ]
    assert not offences, f"over {MAX_SERVICE_MODULE_LINES} lines, split by job:\n" + "\n".join(offences)


WEB_FRAMEWORKS = {"fastapi", "starlette"}
STORE_BACKENDS = (
    "faceplus.store.sqlite",
    "faceplus.store.postgres",
    "faceplus.store.vector_index",
)
MODELS = ("faceplus.models", "faceplus.detection", "faceplus.embedders", "faceplus.landmarks")


def offences_of(layer: str, forbidden: tuple[str, ...] | set[str]) -> list[str]:
    """``<module> imports <target>`` for each module of ``layer`` importing a forbidden module (or below it)."""
    mods = modules()
    known = set(mods)
    return [
        f"{name} imports {target}"
        for name, path in mods.items()
        if name == layer or name.startswith(layer + ".")
        for target in sorted(imported(name, path, known))
        if any(target == f or target.startswith(f + ".") for f in forbidden)
    ]


def test_the_checker_sees_a_layer_break() -> None:
    """The layer checks find a real import: the app module imports FastAPI and its routes."""
    assert "faceplus.api.app imports fastapi" in offences_of("faceplus.api.app", WEB_FRAMEWORKS)
    assert offences_of("faceplus.api.app", ("faceplus.api.routes",))


def test_routes_reach_no_store_backend_no_model_and_no_job() -> None:
    """Routes parse, call a service and reply: storage goes through the store interface, engine work through the
    services' jobs."""
    offences = offences_of("faceplus.api.routes", (*STORE_BACKENDS, *MODELS, "faceplus.jobs"))
    assert not offences, "\n".join(offences)


HTTP_LAYER = (
    "faceplus.api.routes",
    "faceplus.api.deps",
    "faceplus.api.forms",
    "faceplus.api.parsing",
    "faceplus.api.app",
)


def test_services_reach_no_web_framework_and_no_route() -> None:
    """Face++'s rules are plain Python: nothing a service imports, however indirectly, is FastAPI or Starlette or the
    HTTP layer above them (routes parse the form and reply; services take values and raise ``ApiError``)."""
    offences = offences_of("faceplus.api.services", (*WEB_FRAMEWORKS, *HTTP_LAYER, "faceplus.api.responses"))
    edges = graph()
    mods = modules()
    known = set(mods)
    for name in sorted(n for n in mods if n.startswith("faceplus.api.services")):
        for module in sorted(reachable(name, edges)):
            if any(module == h or module.startswith(h + ".") for h in (*HTTP_LAYER, "faceplus.api.responses")):
                offences.append(f"{name} reaches {module}")
            for target in imported(module, mods[module], known) & WEB_FRAMEWORKS:
                offences.append(f"{name} reaches {target} through {module}")
    assert not offences, "\n".join(offences)


def reachable(start: str, edges: dict[str, set[str]]) -> set[str]:
    """Every faceplus module ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_jobs_reach_neither_the_api_nor_a_web_framework() -> None:
    """Jobs run in worker processes: nothing they import, however indirectly, is the API or FastAPI/Starlette, and
    their errors (faceplus.errors) carry no HTTP status."""
    edges = graph()
    mods = modules()
    known = set(mods)
    offences = []
    for name in sorted(n for n in mods if n.startswith("faceplus.jobs")):
        for module in sorted({name} | reachable(name, edges)):
            if module.startswith("faceplus.api"):
                offences.append(f"{name} reaches {module}")
            for target in imported(module, mods[module], known) & WEB_FRAMEWORKS:
                offences.append(f"{name} reaches {target} through {module}")
    assert not offences, "\n".join(offences)


#: The engine side: the pipeline, its models and attributes, and the jobs that run it in worker processes.
ENGINE_SIDE = (
    "faceplus.engine",
    "faceplus.face_request",
    "faceplus.crops",
    "faceplus.results",
    "faceplus.detection",
    "faceplus.landmarks",
    "faceplus.embedders",
    "faceplus.chips",
    "faceplus.calibration",
    "faceplus.imaging",
    "faceplus.models",
    "faceplus.attributes",
    "faceplus.jobs",
)


def test_the_engine_side_reaches_no_store() -> None:
    """Storage sits above the engine: the store keeps what the engine makes (a face's crop is a result type), so
    nothing the engine or a job imports, however indirectly, is the store."""
    edges = graph()
    offences = [
        f"{name} reaches {module}"
        for name in sorted(n for n in modules() if any(n == s or n.startswith(s + ".") for s in ENGINE_SIDE))
        for module in sorted(reachable(name, edges))
        if module.startswith("faceplus.store")
    ]
    assert not offences, "\n".join(offences)
