"""Lightning's and PyTorch's private names stay fenced in core/_lightning.py; the plugin imports no app stack."""

import ast
import subprocess
import sys
from pathlib import Path

import lightning_adapruner

PACKAGE = Path(lightning_adapruner.__file__).resolve().parent
FENCE = PACKAGE / "core" / "_lightning.py"
FOREIGN = ("lightning", "pytorch_lightning", "torch", "torchmetrics", "lightning_fabric")
LOOP_INTERNALS = {"fit_loop", "epoch_loop", "batch_progress", "epoch_progress"}  # undocumented loop state
FENCE_ALLOWED = {  # every private name the fence may touch: keep this list short, and say why in the fence
    "_data_source",  # the fit loop's training-data source: handing Lightning each epoch's loader
    "_DataLoaderSource",  # its class
    "_update_dataloader",  # Lightning's re-instantiation of a user's DataLoader around another sampler
    *LOOP_INTERNALS,  # training batches fetched, epochs completed
}
PUBLIC_UNDERSCORE = {"_replace", "_asdict", "_fields", "_target_"}  # NamedTuple's API and Hydra's key


def private_uses(path: Path) -> list[str]:
    """Private names a module touches: imports of a ``_``-prefixed module or name from a foreign package, a
    ``_``-prefixed attribute of anything but ``self``/``cls``, and the loops' internal state."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in FOREIGN:
            parts = node.module.split(".")
            names = [a.name for a in node.names]
            if any(p.startswith("_") for p in parts) or any(n.startswith("_") for n in names):
                found += [n for n in names if n.startswith("_")] or [node.module]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in FOREIGN and "._" in f".{a.name}"]
        elif isinstance(node, ast.Attribute):
            name, owner = node.attr, node.value
            own = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
            own |= isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super"
            private = name.startswith("_") and not name.startswith("__") and name not in PUBLIC_UNDERSCORE
            if (private and not own) or name in LOOP_INTERNALS:
                found.append(name)
    return found


def test_no_module_but_the_fence_touches_a_private_name():
    offenders = {
        str(path.relative_to(PACKAGE)): uses
        for path in PACKAGE.rglob("*.py")
        if path != FENCE and (uses := private_uses(path))
    }
    assert offenders == {}


def test_the_fence_touches_only_its_allow_list():
    touched = set(private_uses(FENCE))
    assert touched and touched <= FENCE_ALLOWED, touched - FENCE_ALLOWED  # (the check can fail: it finds some)


def test_the_fence_imports_lightning_internals_only_when_called():
    tree = ast.parse(FENCE.read_text())
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not [n for n in top_level if getattr(n, "module", "") and n.module.startswith("lightning")]


def test_importing_the_plugin_loads_no_app_stack():
    """Beyond what Lightning itself loads (it may pull matplotlib and torchvision in through torchmetrics)."""
    code = (
        "import sys, lightning.pytorch, torchmetrics\n"
        "before = set(sys.modules)\n"
        "import lightning_adapruner\n"
        "new = set(sys.modules) - before\n"
        "print(sorted(m for m in new if m.split('.')[0] in ('hydra', 'omegaconf', 'matplotlib', 'torchvision')),\n"
        "      sorted(m for m in new if m.startswith('lightning_adapruner.app')), 'lightning_adapruner.core' in new)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] [] True"


def test_no_core_module_imports_torchvision_or_the_app():
    for path in (PACKAGE / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            )
            for module in modules:
                assert not module.startswith(
                    ("torchvision", "hydra", "omegaconf", "matplotlib", "lightning_adapruner.app")
                ), (path, module)


def test_every_type_ignore_in_the_core_says_why():
    """mypy runs on the core in CI (make lint); an ignore carries its reason on its line or the line above."""
    unexplained = []
    for path in (PACKAGE / "core").rglob("*.py"):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if "type: ignore" not in line:
                continue
            after = line.split("type: ignore", 1)[1].split("]", 1)[-1]
            above = lines[number - 1].strip() if number else ""
            if "#" not in after and not above.startswith("#"):
                unexplained.append(f"{path.relative_to(PACKAGE)}:{number + 1}")
    assert unexplained == []
