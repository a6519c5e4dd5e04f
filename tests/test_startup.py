"""The first run and start-up: the compile notice, warmup, the compile plan, where the cache
goes, and what importing fastkm loads.

The cold runs are subprocesses with an empty NUMBA_CACHE_DIR of their own, so they compile
for real whatever the state of the test session's cache.
"""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from fastkm import compile_plan, warmup

CLI = [sys.executable, "-c", "from fastkm.cli.app import main; main()"]
NOTICE_START = "fastkm: compiling kernels for this CPU (first run only"


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(extra)
    return env


def _run(args, env, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, **kw)


def _cached_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc")]


def test_cold_run_says_so_then_matches_the_warm_run(tmp_path, small_photo):
    env = _env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    cold_out, warm_out = tmp_path / "cold.fkm", tmp_path / "warm.fkm"
    cold = _run(CLI + ["compress", str(small_photo), "-k", "16", "-o", str(cold_out)], env)
    assert cold.returncode == 0, cold.stderr
    assert cold.stderr.splitlines()[0].startswith(NOTICE_START), cold.stderr
    assert cold.stderr.count(NOTICE_START) == 1
    assert _cached_files(tmp_path / "cache"), "nothing was cached in NUMBA_CACHE_DIR"

    warm = _run(CLI + ["compress", str(small_photo), "-k", "16", "-o", str(warm_out)], env)
    assert warm.returncode == 0, warm.stderr
    assert warm.stderr == ""
    assert cold_out.read_bytes() == warm_out.read_bytes()
    assert cold.stdout.splitlines()[-1].split()[1:-1] == warm.stdout.splitlines()[-1].split()[1:-1]


def test_cold_batch_says_so_once_though_workers_compile(tmp_path):
    """Several files go to worker processes, which compile there: the notice comes from
    their compile events, once; the warm run prints none."""
    from PIL import Image

    rng = np.random.default_rng(1)
    sources = []
    for i in range(3):
        sources.append(tmp_path / f"in{i}.png")
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(sources[-1])
    out = tmp_path / "out"
    out.mkdir()
    env = _env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    args = CLI + ["compress", *map(str, sources), "-k", "8", "--out-dir", str(out),
                  "--jobs", "2", "--force"]
    cold = _run(args, env)
    assert cold.returncode == 0, cold.stderr
    assert cold.stderr.count(NOTICE_START) == 1, cold.stderr
    assert sorted(p.name for p in out.iterdir()) == ["in0.fkm", "in1.fkm", "in2.fkm"]
    warm = _run(args, env)
    assert warm.returncode == 0, warm.stderr
    assert NOTICE_START not in warm.stderr


def test_quiet_silences_the_notice(tmp_path):
    import fastkm
    from fastkm.palette import PaletteImage

    rng = np.random.default_rng(0)
    source = tmp_path / "x.fkm"
    fastkm.save(source, PaletteImage(rng.integers(0, 256, (4, 3), dtype=np.uint8),
                                     rng.integers(0, 4, (9, 7), dtype=np.uint8)))
    env = _env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    quiet = _run(CLI + ["decode", str(source), "-o", str(tmp_path / "x.png"), "--quiet"], env)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and quiet.stdout == ""
    assert _cached_files(tmp_path / "cache")  # it did compile: there was a notice to silence


def test_warmup_compiles_every_cli_path(tmp_path, small_photo):
    env = _env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    done = _run(CLI + ["warmup", "--jobs", "2"], env)
    assert done.returncode == 0, done.stderr
    assert "kernels compiled and cached" in done.stderr
    assert "the plan missed" not in done.stderr
    image = tmp_path / "grey.png"
    from PIL import Image

    with Image.open(small_photo) as im:
        im.convert("LA").save(image)  # grey + alpha: read as RGBA
    for args in (["-k", "64", "--space", "oklab", "--dither", "fs", "-o", "a.fkm"],
                 ["-k", "8", "--dither", "ordered", "-o", "b.png"]):
        for source in (small_photo, image):
            run = _run(CLI + ["compress", str(source), *args, "--force"], env, cwd=tmp_path)
            assert run.returncode == 0, run.stderr
            assert run.stderr == "", f"{args} {source.name}: {run.stderr}"


def test_warm_reports_every_worker_as_it_goes(monkeypatch, tmp_path):
    """Progress from every worker as it comes: read one after the other, the second
    worker's entries only showed once the first had finished (a bar stuck at half). Here
    the first worker waits until the second's two entries have been reported."""
    from fastkm import warmup

    marker = tmp_path / "seen-two"

    def fake_worker(group):
        wait = ("import os, sys, time\n"
                "end = time.time() + 20\n"
                f"while not os.path.exists({str(marker)!r}) and time.time() < end:\n"
                "    time.sleep(0.02)\n"
                f"tag = 'x' if os.path.exists({str(marker)!r}) else 'late'\n")
        quick = "tag = 'x'\n"
        script = ((wait if group[0] == 0 else quick)
                  + f"for i in {list(group)}: print('done', i, flush=True)\n"
                  + "print('failed', tag, flush=True)\n")
        return [sys.executable, "-c", script]

    def progress(n):
        seen.append(n)
        if len(seen) == 2:
            marker.touch()

    seen = []
    monkeypatch.setattr(warmup, "partition", lambda indices, jobs: [[0, 1], [2, 3]])
    monkeypatch.setattr(warmup, "_worker_command", fake_worker)
    assert warmup.warm([0, 1, 2, 3], jobs=2, progress=progress) == ["x", "x"]
    assert len(seen) == 4


def test_warmup_rejects_bad_jobs():
    from fastkm.cli.app import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["warmup", "--jobs", "0"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --jobs must be at least 1, got 0"


# ------------------------------------------------------------------------------ the plan

def test_plan_names_real_kernels_and_signatures():
    from numba.core import types
    from numba.core.dispatcher import Dispatcher

    assert set(compile_plan.SCENARIOS) == set(warmup.SCENARIOS)
    for module, name, text, seconds in compile_plan.KERNELS:
        kernel = getattr(importlib.import_module(module), name)
        kernel = getattr(kernel, "kernel", kernel)
        assert isinstance(kernel, Dispatcher), (module, name)
        signature = eval(text, {"__builtins__": {}}, vars(types))
        n_params = len(inspect.signature(kernel.py_func).parameters)
        assert len(signature) == n_params, f"{module}.{name}{text}: regenerate the plan"
        assert seconds > 0
    for name, indices in compile_plan.SCENARIOS.items():
        assert indices == sorted(set(indices)), name
        assert all(0 <= i < len(compile_plan.KERNELS) for i in indices)
        assert bool(indices) == (name != "png"), name  # PNG output is Pillow's: no kernel


@pytest.mark.parametrize("scenario", ["rgb-k16-rgb-none", "rgba-k64-oklab-ordered", "fkm"])
def test_plan_lists_exactly_what_a_scenario_loads(scenario):
    """A fresh process runs the scenario on the session's (warm) cache and reports which
    kernels it loaded: the plan must list exactly those (else: bench/compile_plan.py)."""
    script = f"""
import sys
from numba.core.dispatcher import Dispatcher
from fastkm import warmup
warmup.run_scenario({scenario!r})
warmup.run_scenario({scenario!r})
for name, module in list(sys.modules.items()):
    if name.startswith("fastkm") and module is not None:
        for attr, value in vars(module).items():
            value = getattr(value, "kernel", value)
            if isinstance(value, Dispatcher) and value.py_func.__module__ == name:
                for sig in value.signatures:
                    print(name, attr, repr(tuple(sig)), sep="|")
"""
    run = _run([sys.executable, "-c", script], _env())
    assert run.returncode == 0, run.stderr
    used = {tuple(line.split("|")) for line in run.stdout.splitlines()}
    planned = {tuple(compile_plan.KERNELS[i][:3]) for i in compile_plan.SCENARIOS[scenario]}
    assert used == planned


def test_partition_balances_and_keeps_a_kernels_signatures_together():
    indices = warmup.kernels_for(warmup.SCENARIOS)
    groups = warmup.partition(indices, 2)
    assert sorted(i for g in groups for i in g) == indices
    owner = {}
    for g, group in enumerate(groups):
        for i in group:
            key = compile_plan.KERNELS[i][:2]
            assert owner.setdefault(key, g) == g, key
    loads = [sum(compile_plan.KERNELS[i][3] for i in g) for g in groups]
    biggest = max(k[3] for k in compile_plan.KERNELS)
    assert abs(loads[0] - loads[1]) <= biggest


def test_compile_kernels_reports_stale_entries(monkeypatch):
    stale = [("fastkm.kernels", "assign", "(int64,)", 0.1),
             ("fastkm.kernels", "no_such_kernel", "()", 0.1)]
    monkeypatch.setattr(compile_plan, "KERNELS", stale)
    seen = []
    failed = warmup.compile_kernels([0, 1], seen.append)
    assert seen == [0, 1]
    assert len(failed) == 2
    assert failed[1].startswith("fastkm.kernels.no_such_kernel(): AttributeError")


# ------------------------------------------------------------------------------ the hook

def test_on_compile_reports_fastkm_kernels_once_per_compilation():
    from numba import njit

    from fastkm.jit import on_compile

    def helper(x):
        return x + 1

    helper.__module__ = "fastkm.test_only"
    helper_jit = njit(helper)

    def kernel(x):
        return helper_jit(x) * 2

    kernel.__module__ = "fastkm.test_only"
    started, finished = [], []
    remove = on_compile(started.append, finished.append)
    try:
        assert njit(kernel)(3) == 8
        njit(lambda x: x)(1)  # not a fastkm function: ignored
    finally:
        remove()
    name = f"fastkm.test_only.{kernel.__qualname__}"
    assert started == finished == [name]
    njit(kernel)(4.0)
    assert started == [name]  # removed: no longer called


# ------------------------------------------------------------------------------ the cache

def _as_nobody() -> list[str] | None:
    """A command prefix that runs as user nobody, or None where that is not possible."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.mark.parametrize("home_writable", [True, False])
def test_read_only_install_caches_under_the_users_cache_folder(tmp_path, home_writable):
    """A package folder nobody may write to (an install by root, run by another user):
    Numba's cache goes to the user's cache folder, and the second run compiles nothing.
    With no writable home either (Docker's USER nobody), Numba refused every kernel at
    import ("no locator available"): the cache goes to the temporary folder instead."""
    import fastkm

    script = """
import numpy as np
from numba.core import event
from fastkm import codec
from fastkm.palette import PaletteImage
compiled = []
class L(event.Listener):
    def on_start(self, ev): compiled.append(1)
    def on_end(self, ev): pass
event.register("numba:compile", L())
rng = np.random.default_rng(0)
p = PaletteImage(rng.integers(0, 256, (4, 3), dtype=np.uint8),
                 rng.integers(0, 4, (9, 7), dtype=np.uint8))
assert (codec.decode(codec.encode(p)).indices == p.indices).all()
print("compiled" if compiled else "cached")
"""
    prefix = _as_nobody()
    home = Path(tempfile.mkdtemp(prefix="fastkm-home-"))
    temp = Path(tempfile.mkdtemp(prefix="fastkm-tmp-"))
    try:
        if prefix is not None:
            os.chown(home, 65534, 65534)
            os.chown(temp, 65534, 65534)
            package_root = None
            env = _env(HOME=str(home), XDG_CACHE_HOME=str(home / "cache"), TMPDIR=str(temp))
        else:  # not root: a read-only copy of the package stands for the install
            package_root = home / "site"
            shutil.copytree(Path(fastkm.__file__).parent, package_root / "fastkm",
                            ignore=shutil.ignore_patterns("__pycache__"))
            for path in package_root.rglob("*"):
                path.chmod(0o555 if path.is_dir() else 0o444)
            (package_root / "fastkm").chmod(0o555)
            env = _env(HOME=str(home), XDG_CACHE_HOME=str(home / "cache"),
                       PYTHONPATH=str(package_root), TMPDIR=str(temp))
            prefix = []
        if not home_writable:
            home.chmod(0o555)
        # Can that user run this Python at all (no kernel is loaded by these imports)?
        probe = _run(prefix + [sys.executable, "-c", "import fastkm, numba"], env)
        if probe.returncode != 0:
            pytest.skip(f"cannot run this Python as another user here: {probe.stderr[-200:]}")
        first = _run(prefix + [sys.executable, "-c", script], env)
        assert first.returncode == 0, first.stderr
        second = _run(prefix + [sys.executable, "-c", script], env)
        assert second.returncode == 0, second.stderr
        assert (first.stdout.strip(), second.stdout.strip()) == ("compiled", "cached")
        if home_writable:
            cached = _cached_files(home / "cache")
            assert cached and all("numba" in p.parts for p in cached)
        else:
            assert not (home / "cache").exists()
            assert [p.name for p in temp.iterdir()] == [
                f"fastkm-numba-cache-{65534 if prefix else os.getuid()}"]
            assert _cached_files(temp)
    finally:
        home.chmod(0o755)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(temp, ignore_errors=True)


# ------------------------------------------------------------------------------ imports

def test_import_fastkm_loads_no_numba_and_names_resolve():
    script = """
import sys
import fastkm
assert "numba" not in sys.modules, "import fastkm loaded numba"
from fastkm.palette import PaletteImage
assert "numba" not in sys.modules
import fastkm.quantize
assert callable(fastkm.quantize) and fastkm.quantize.__name__ == "quantize"
assert fastkm.dither.__name__ == "fastkm.dither"
for name in fastkm.__all__:
    getattr(fastkm, name)
print("ok")
"""
    run = _run([sys.executable, "-c", script], _env())
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def test_unknown_attribute_is_an_attribute_error():
    import fastkm

    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        fastkm.nope  # noqa: B018


def test_cli_help_imports_no_numba():
    script = """
import sys
from fastkm.cli.app import app
from typer.testing import CliRunner
r = CliRunner().invoke(app, ["compress", "--help"])
assert r.exit_code == 0, r.output
assert "numba" not in sys.modules, "the CLI's help loaded numba"
print("ok")
"""
    run = _run([sys.executable, "-c", script], _env())
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def test_cli_defaults_are_the_librarys():
    from fastkm.cli.app import FIT

    from fastkm.quantize import quantize

    params = inspect.signature(quantize).parameters
    assert FIT == {name: params[name].default for name in FIT}
    assert set(FIT) == {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY}


_LEAN_SCRIPT = """
import os
import sys
import numpy as np
from fastkm import jit
assert jit.lean_cache_loads() and jit.lean_cache_loads()  # once, and again harmlessly
REFRESH_ONLY = "numba.misc.gdb_hook"  # imported by Numba's target refresh, and only there
from fastkm.codec.coder import table_bits
from fastkm.kernels import inertia
got = [table_bits(k, p) for k in (2, 16, 17, 256) for p in (1, 1000, 10**7)]
want = [table_bits.py_func(k, p) for k in (2, 16, 17, 256) for p in (1, 1000, 10**7)]
assert got == want, (got, want)
rng = np.random.default_rng(0)
X, w, C = rng.random((5000, 3)), rng.random(5000), rng.random((4, 3))
labels = rng.integers(0, 4, 5000).astype(np.int32)
ref = float((w * ((X - C[labels]) ** 2).sum(axis=1)).sum())
assert abs(inertia(X, w, C, labels) - ref) <= 1e-9 * ref  # a parallel kernel
print("refreshed" if REFRESH_ONLY in sys.modules else "lean")
from numba.core.environment import Environment
def helper_envs():  # environments of Numba's helpers inlined in the kernels
    return [e for e in list(Environment._memo.values())
            if e.globals.get("__name__", "").startswith("numba.np.")]
envs = helper_envs()
assert envs
print("placeholders" if all(len(e.globals) == 1 for e in envs) else "modules")
if os.environ.get("FILL_BY") == "compile":
    from numba import njit
    assert njit(lambda x: x + 1)(1) == 2  # a compilation: Numba refreshes first
else:
    import usermod  # someone else's cached kernel: Numba's own load, refresh and all
    assert usermod.twice(6.0) == 12.0
print(REFRESH_ONLY in sys.modules)
assert all(set(e.globals) >= set(vars(sys.modules[e.globals["__name__"]]))
           for e in envs), "a placeholder was not filled"
"""

_USER_MODULE = """
from numba import njit

@njit(cache=True)
def twice(x):
    return x * 2.0
"""


def test_lean_cache_loads_skip_the_refresh_only_for_cached_fastkm_kernels(tmp_path):
    (tmp_path / "usermod.py").write_text(_USER_MODULE)
    env = _env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    cold = _run([sys.executable, "-c", _LEAN_SCRIPT], env)
    assert cold.returncode == 0, cold.stderr
    assert cold.stdout.split() == ["refreshed", "modules", "True"]  # compiled: refreshed
    warm = _run([sys.executable, "-c", _LEAN_SCRIPT], env)
    assert warm.returncode == 0, warm.stderr
    # fastkm's kernels load from the cache without Numba's lowering modules (their helpers'
    # environments hold placeholders); another module's cached kernel still gets them, and
    # the placeholders their modules' globals.
    assert warm.stdout.split() == ["lean", "placeholders", "True"]
    env["FILL_BY"] = "compile"
    compiling = _run([sys.executable, "-c", _LEAN_SCRIPT], env)
    assert compiling.returncode == 0, compiling.stderr
    assert compiling.stdout.split() == ["lean", "placeholders", "True"]
