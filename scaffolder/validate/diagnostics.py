"""What a check reports: one finding, where it is, and how to fix it."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, order=True)
class Diagnostic:
    file: str
    line: int
    code: str  # e.g. N101; the letter names the check (see CODES)
    message: str
    fix_hint: str
    severity: str = "error"  # "error" blocks writing/running; "warning" is reported only

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.code} {self.message} (fix: {self.fix_hint})"

    def to_json(self) -> dict[str, object]:
        return asdict(self)


CODES = {
    "E001": "a Python file does not parse or compile",
    "N101": "import of a name the project module does not define",
    "N102": "attribute of a project module that it does not define",
    "N103": "a name used but defined nowhere in its module",
    "A201": "a call passes more positional arguments than the definition takes",
    "A202": "a call passes a keyword the definition does not take",
    "A203": "a call leaves out a required argument",
    "C301": "a file or entry point of the project contract is missing",
    "C302": "an entry point does not have the contract's signature",
    "C303": "metrics.json is never written",
    "C304": "code reads a config key that config.yaml does not have",
    "C305": "config.yaml is missing or not a mapping",
    "P401": "config.yaml disagrees with scaffold.toml",
    "P402": "a constant in the code disagrees with scaffold.toml",
    "I501": "a function body is only pass, ... or a docstring",
    "I502": "raise NotImplementedError",
    "I503": "a TODO/FIXME or placeholder left in the code",
    "S601": "runs programs (subprocess, os.system, os.exec*, os.spawn*, os.popen)",
    "S602": "evaluates code (eval, exec, compile, __import__)",
    "S603": "opens network connections (socket, HTTP clients)",
    "S604": "loads native code (ctypes, cffi)",
    "S605": "unpickles data (pickle, dill, joblib load)",
    "S606": "torch.load without weights_only=True",
    "S607": "writes or deletes outside the project and its output folder",
    "S608": "trust_remote_code=True that the spec did not ask for",
}
