"""Safety: code that calls out of a training project's lane is an error.

A screen, not a sandbox (the smoke run is still isolated): it catches the calls a generator has no business
writing, by their qualified names after import aliases are resolved.
"""

from __future__ import annotations

import ast

from scaffolder.validate.diagnostics import Diagnostic
from scaffolder.validate.project import Module, Project, dotted, first_argument, string

# Modules whose import alone is out of lane: code -> modules.
FORBIDDEN_MODULES = {
    "S601": ("subprocess", "pty"),
    "S603": (
        "socket",
        "requests",
        "httpx",
        "urllib.request",
        "urllib3",
        "http.client",
        "aiohttp",
        "ftplib",
        "smtplib",
        "telnetlib",
        "paramiko",
        "pycurl",
        "websocket",
        "websockets",
    ),
    "S604": ("ctypes", "cffi"),
}
# Calls out of lane: code -> qualified names (a trailing * matches a prefix).
FORBIDDEN_CALLS = {
    "S601": ("os.system", "os.popen", "os.exec*", "os.spawn*", "os.posix_spawn*", "os.fork*"),
    "S602": ("eval", "exec", "compile", "__import__", "importlib.import_module", "builtins.eval", "builtins.exec"),
    "S605": (
        "pickle.load",
        "pickle.loads",
        "dill.load",
        "dill.loads",
        "joblib.load",
        "cloudpickle.load",
        "cloudpickle.loads",
        "pandas.read_pickle",
    ),
}
# Calls that write or delete what their first argument names.
WRITERS = {
    "shutil.rmtree",
    "shutil.move",
    "os.remove",
    "os.unlink",
    "os.rmdir",
    "os.removedirs",
    "os.rename",
    "os.replace",
    "open",
    "io.open",
    "os.makedirs",
    "os.mkdir",
}
PATH_WRITERS = {"write_text", "write_bytes", "unlink", "rmdir", "mkdir", "touch", "rename", "replace", "open"}
HINTS = {
    "S601": "a training project runs no other programs; remove it",
    "S602": "do not evaluate code built at run time; write the code itself",
    "S603": "the project must not open network connections; load models with from_pretrained",
    "S604": "do not load native code; use torch",
    "S605": "unpickling runs arbitrary code; use safetensors, json or torch.load(weights_only=True)",
}


def check(project: Project, allow_remote_code: bool = False) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for module in project.parsed():
        names = qualified_names(module)
        found += _imports(module)
        for call in module.nodes(ast.Call):
            found += _call(module, call, names, allow_remote_code)
    return found


def qualified_names(module: Module) -> dict[str, str]:
    """Local name -> what it refers to: `sp` -> `subprocess`, `system` -> `os.system`."""
    return {imp.local: imp.module if imp.name is None else f"{imp.module}.{imp.name}" for imp in module.imports}


def qualify(name: str | None, names: dict[str, str]) -> str | None:
    """A dotted name (`sp.run`) with its head resolved through the imports (`subprocess.run`)."""
    if name is None:
        return None
    head, _, rest = name.partition(".")
    head = names.get(head, head)
    return f"{head}.{rest}" if rest else head


def forbidden_code(qualified: str) -> str | None:
    for code, patterns in FORBIDDEN_CALLS.items():
        for pattern in patterns:
            if qualified == pattern or (pattern.endswith("*") and qualified.startswith(pattern[:-1])):
                return code
    for code, modules in FORBIDDEN_MODULES.items():
        if any(qualified == m or qualified.startswith(m + ".") for m in modules):
            return code
    return None


def _imports(module: Module) -> list[Diagnostic]:
    found = []
    for imp in module.imports:
        full = imp.module if imp.name is None else f"{imp.module}.{imp.name}"
        for code, modules in FORBIDDEN_MODULES.items():
            if any(full == m or full.startswith(m + ".") or imp.module == m for m in modules):
                found.append(Diagnostic(module.path, module.line(imp.node), code, f"imports {full}", HINTS[code]))
                break
    return found


def _call(module: Module, call: ast.Call, names: dict[str, str], allow_remote_code: bool) -> list[Diagnostic]:
    found = []
    qualified = qualify(dotted(call.func), names)
    code = forbidden_code(qualified) if qualified else None
    if code is not None:
        found.append(Diagnostic(module.path, module.line(call), code, f"calls {qualified}()", HINTS[code]))
    if qualified == "torch.load" and not _keyword_is_true(call, "weights_only"):
        found.append(
            Diagnostic(
                module.path,
                module.line(call),
                "S606",
                "torch.load without weights_only=True",
                "pass weights_only=True (scaffold check --fix adds it)",
            )
        )
    if _keyword_is_true(call, "trust_remote_code") and not allow_remote_code:
        found.append(
            Diagnostic(
                module.path,
                module.line(call),
                "S608",
                "trust_remote_code=True runs code from the model repo",
                "use trust_remote_code=cfg.trust_remote_code (false unless the spec asks)",
            )
        )
    escaping = _escaping_write(call, qualified)
    if escaping:
        found.append(
            Diagnostic(
                module.path,
                module.line(call),
                "S607",
                f"writes or deletes {escaping}, outside the project",
                "write under cfg.output_dir or the project folder",
            )
        )
    return found


def _keyword_is_true(call: ast.Call, keyword: str) -> bool:
    return any(
        arg.arg == keyword and isinstance(arg.value, ast.Constant) and arg.value.value is True for arg in call.keywords
    )


def _escaping_write(call: ast.Call, qualified: str | None) -> str | None:
    """The out-of-project location a write/delete call names by a literal, else None."""
    target = first_argument(call)
    if qualified in WRITERS and target is not None:
        if qualified in ("open", "io.open") and not _opens_for_writing(call):
            return None
        return _outside(target)
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in PATH_WRITERS and isinstance(func.value, ast.Call):
        inner = func.value
        if dotted(inner.func) in ("Path", "pathlib.Path") and (path := first_argument(inner)) is not None:
            return _outside(path)
    return None


def _opens_for_writing(call: ast.Call) -> bool:
    mode = call.args[1] if len(call.args) > 1 else next((a.value for a in call.keywords if a.arg == "mode"), None)
    return any(c in (string(mode) or "") for c in "wax+")


def _outside(node: ast.expr) -> str | None:
    value = string(node)
    if value is not None and (value.startswith(("/", "~")) or ".." in value.split("/")):
        return value
    if isinstance(node, ast.Call) and dotted(node.func) in ("Path.home", "pathlib.Path.home", "os.path.expanduser"):
        return "the home folder"
    return None
