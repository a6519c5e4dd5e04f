"""How fastkm's kernels are compiled: shared ``@njit`` options and a hook on compilation.

Numba compiles a kernel the first time it is called with new argument types and caches the
machine code on disk (beside the sources, or under the user's cache folder when the install
is read-only, or in ``NUMBA_CACHE_DIR``). The library never prints; :func:`on_compile` lets
a program (the CLI) say so while that happens.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import threading
from typing import Callable


def _locator_found() -> bool:
    """Whether Numba can cache this package's kernels anywhere: NUMBA_CACHE_DIR, beside the
    sources, or the user's cache folder (its own rules, asked of its locator classes)."""
    try:
        from numba.core.caching import CacheImpl
    except ImportError:  # another Numba layout: leave the choice to Numba
        return True
    return any(cls.from_function(_locator_found, __file__) is not None
               for cls in CacheImpl._locator_classes)


def _ensure_cache_location() -> None:
    """A read-only install run by a user whose home is not writable either (Docker's
    ``USER nobody``): Numba then refuses every ``cache=True`` kernel at import ("no locator
    available"). Cache in a private folder of the temporary directory instead."""
    if _locator_found():
        return
    from numba.core import config

    user = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    folder = os.path.join(tempfile.gettempdir(), f"fastkm-numba-cache-{user}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    config.CACHE_DIR = folder


_ensure_cache_location()


def prange_only() -> dict:
    """``parallel=`` options that parallelise the explicit ``prange`` loops and nothing else.

    With ``parallel=True`` Numba also turns array expressions, allocations and reductions
    into parallel loops of their own, each compiled as a separate gufunc; the kernels here do
    their heavy work in ``prange`` loops, so those cost compile time and buy nothing. A fresh
    dict each call: Numba consumes it. Numba keys its cache on each kernel's own source
    file, so after changing these options, clear the ``__pycache__`` folders.
    """
    return dict(prange=True, comprehension=False, reduction=False, inplace_binop=False,
                setitem=False, numpy=False, stencil=False, fusion=False)


def _fastkm_module(func) -> str | None:
    """The module of ``func`` if it is one of fastkm's, else None."""
    module = getattr(func, "__module__", "") or ""
    return module if module == "fastkm" or module.startswith("fastkm.") else None


def on_compile(started: Callable[[str], None],
               finished: Callable[[str], None] | None = None) -> Callable[[], None]:
    """Call ``started(name)`` when Numba begins compiling a fastkm kernel (a cache miss) and
    ``finished(name)`` when that compilation ends; helpers compiled inside a kernel do not
    count. Returns a function that removes the hook. Importing this hook imports Numba.

    The hook fires in the process that set it only: a worker forked from it inherits the
    listener, and reports through a hook of its own if it has one."""
    from numba.core import event

    depth = threading.local()
    owner = os.getpid()

    def name_of(ev) -> str | None:
        dispatcher = ev.data.get("dispatcher") if isinstance(ev.data, dict) else None
        func = getattr(dispatcher, "py_func", None)
        module = _fastkm_module(func)
        return None if module is None else f"{module}.{func.__qualname__}"

    class _Listener(event.Listener):
        def on_start(self, ev):
            if os.getpid() != owner:
                return
            level = getattr(depth, "n", 0)
            depth.n = level + 1
            name = name_of(ev)
            if level == 0 and name is not None:
                started(name)

        def on_end(self, ev):
            if os.getpid() != owner:
                return
            depth.n = getattr(depth, "n", 1) - 1
            name = name_of(ev)
            if depth.n == 0 and name is not None and finished is not None:
                finished(name)

    listener = _Listener()
    event.register("numba:compile", listener)
    return lambda: event.unregister("numba:compile", listener)


def lean_cache_loads() -> bool:
    """For a program that only runs fastkm's kernels (the CLI): a fastkm kernel found in
    Numba's cache is loaded without Numba's target refresh, which imports and registers
    every lowering and typing module Numba has and its extensions' entry points (~0.1 s
    of a warm ``fastkm compress``); loading fastkm's kernels needs none of them, only the
    runtime (NRT) their code links against, which is initialised as before. Any other
    function's cache load, and every compilation, still refreshes first (typing a cfunc,
    for one, relies on what the refresh registers). Applies to the whole process and
    returns True; False, with nothing changed, on a Numba without the methods it relies
    on.

    Such a load also rebuilds the environment of each Numba helper inlined in the kernel
    (``np.empty``'s, ``np.sqrt``'s), importing the helper's module for its globals: ~35 ms
    for numba.np.arrayobj and company. Only object-mode code reads those globals, and
    fastkm has none, so a module not yet imported gets a placeholder dict, filled with a
    copy of the module's globals the next time Numba refreshes (before any compilation)."""
    try:
        from numba.core import base, environment
        from numba.core.caching import Cache
        from numba.core.runtime import rtsys
    except ImportError:
        return False
    original = Cache.load_overload
    if getattr(original, "lean", False):
        return True
    if not (hasattr(Cache, "_load_overload")
            and hasattr(Cache, "_guard_against_spurious_io_errors")
            and hasattr(environment, "_rebuild_env")
            and hasattr(base.BaseContext, "refresh")):
        return False
    loading = threading.local()
    placeholders: list[tuple[str, dict]] = []
    rebuild_env = environment._rebuild_env
    refresh = base.BaseContext.refresh

    def lean_rebuild_env(*args, **kwargs):
        if kwargs or len(args) != 3:  # another Numba's arguments: its own function decides
            return rebuild_env(*args, **kwargs)
        modname, consts, env_name = args
        if (not getattr(loading, "active", False) or modname in sys.modules
                or not str(modname).startswith("numba.")
                or environment.lookup_environment(env_name) is not None):
            return rebuild_env(modname, consts, env_name)
        globals_ = {"__name__": modname}
        placeholders.append((modname, globals_))
        env = environment.Environment(globals_)
        env.consts[:] = consts
        env.env_name = env_name
        environment.Environment._memo[env_name] = env
        return env

    def filling_refresh(self):
        refresh(self)
        while True:
            try:
                modname, globals_ = placeholders.pop()
            except IndexError:
                break
            globals_.update(importlib.import_module(modname).__dict__)

    def load_overload(self, sig, target_context):
        if _fastkm_module(getattr(self, "_py_func", None)) is None:
            return original(self, sig, target_context)
        rtsys.initialize(target_context)
        previous, loading.active = getattr(loading, "active", False), True
        try:
            with self._guard_against_spurious_io_errors():
                return self._load_overload(sig, target_context)
        except Exception:  # noqa: BLE001 -- Numba's own path, refresh included, decides
            loading.active = previous  # before, not after, Numba's own load
            return original(self, sig, target_context)
        finally:
            loading.active = previous

    load_overload.lean = True
    # Environments pickle as a call to numba.core.environment._rebuild_env, by name: keep
    # that name, so that what this process caches loads anywhere.
    lean_rebuild_env.__module__ = rebuild_env.__module__
    lean_rebuild_env.__qualname__ = rebuild_env.__qualname__
    environment._rebuild_env = lean_rebuild_env
    base.BaseContext.refresh = filling_refresh
    Cache.load_overload = load_overload
    return True
