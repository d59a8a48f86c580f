"""Structure checks for Apptainer definition files (``containers/*.def``), run without Apptainer.

What a definition must have here: a header with ``Bootstrap:`` and ``From:`` (a pinned tag or digest,
never ``latest``; ``{{ ARG }}`` templates must have a default in ``%arguments``), known section names
each used once, ``%labels`` with title/source/licenses, ``%post``, ``%environment``, ``%runscript``,
``%test`` and ``%help``; ``%files`` sources that exist in the build context (the repository root); and
no secrets (tokens, keys, passwords) anywhere. Problems come back as ``file:line: message`` strings.
"""

from __future__ import annotations

import re
from pathlib import Path

SECTIONS = {
    "setup",
    "files",
    "environment",
    "post",
    "runscript",
    "startscript",
    "test",
    "labels",
    "help",
    "arguments",
    "appinstall",
    "appenv",
    "appfiles",
    "apphelp",
    "applabels",
    "apprun",
    "appstart",
    "apptest",
}
REQUIRED = ("labels", "post", "environment", "runscript", "test", "help")
REQUIRED_LABELS = (
    "org.opencontainers.image.title",
    "org.opencontainers.image.source",
    "org.opencontainers.image.licenses",
)
BOOTSTRAPS = {
    "docker",
    "library",
    "localimage",
    "oras",
    "shub",
    "debootstrap",
    "yum",
    "zypper",
    "scratch",
    "docker-daemon",
    "docker-archive",
    "oci",
    "oci-archive",
}
SECRETS = [
    (re.compile(r"\bhf_[A-Za-z0-9]{30,}"), "a Hugging Face token"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"), "an OpenAI-style API key"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"), "a GitHub token"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (
        re.compile(
            r"\b(WANDB_API_KEY|HF_TOKEN|HUGGING_FACE_HUB_TOKEN|OPENAI_API_KEY|NGC_API_KEY)\s*=\s*['\"]?[^\s'\"$]{8,}"
        ),
        "a credential assigned in the image",
    ),
    (re.compile(r"(?i)\bpassword\s*[=:]\s*\S+"), "a password"),
]


def check_def(path: str | Path, context: str | Path | None = None) -> list[str]:
    """Problems in one definition file (empty list = fine).

    Args:
        path: the ``.def`` file.
        context: build context for ``%files`` sources (default: the parent of the file's folder, i.e. the
            repository root for ``containers/*.def``).
    """
    path = Path(path)
    ctx = Path(context) if context else path.resolve().parent.parent
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as e:
        return [f"{path}: cannot read: {e}"]
    out: list[str] = []

    def bad(line: int, msg: str) -> None:
        out.append(f"{path}:{line}: {msg}")

    header: dict[str, tuple[int, str]] = {}
    sections: dict[str, tuple[int, list[tuple[int, str]]]] = {}
    current: str | None = None
    for i, raw in enumerate(lines, 1):
        for rx, what in SECRETS:
            if rx.search(raw):
                bad(i, f"looks like {what}; images must not contain credentials (pass them at run time)")
        s = raw.strip()
        if s.startswith("%"):
            name = s[1:].split()[0].lower() if len(s) > 1 else ""
            if name not in SECTIONS:
                bad(i, f"unknown section %{name} (known: {', '.join(sorted(SECTIONS))})")
            elif name in sections and not name.startswith("app"):
                bad(i, f"section %{name} appears twice (first at line {sections[name][0]})")
            sections.setdefault(name, (i, []))
            current = name
            continue
        if current is None:
            if not s or s.startswith("#"):
                continue
            key, sep, value = s.partition(":")
            if not sep:
                bad(i, f"header line is not 'Key: value': {s!r}")
                continue
            header[key.strip().lower()] = (i, value.strip())
        elif s and not s.startswith("#"):
            sections[current][1].append((i, s))

    if "bootstrap" not in header:
        bad(1, "missing 'Bootstrap:' header (e.g. Bootstrap: docker)")
    elif header["bootstrap"][1].lower() not in BOOTSTRAPS:
        bad(header["bootstrap"][0], f"unknown bootstrap agent {header['bootstrap'][1]!r}")
    if "from" not in header:
        bad(1, "missing 'From:' header (the base image)")
    else:
        line, image = header["from"]
        args = {k.strip() for _, a in sections.get("arguments", (0, []))[1] for k in [a.split("=", 1)[0]] if "=" in a}
        for ref in re.findall(r"\{\{\s*(\w+)\s*\}\}", image):
            if ref not in args:
                bad(line, f"From uses {{{{ {ref} }}}} but %arguments gives it no default")
        resolved = re.sub(r"\{\{\s*\w+\s*\}\}", "X", image)
        if "@sha256:" not in resolved and (":" not in resolved.rsplit("/", 1)[-1] or resolved.endswith(":latest")):
            bad(line, f"base image {image!r} is not pinned (use an explicit tag or @sha256 digest, never latest)")
    for name in REQUIRED:
        if name not in sections:
            bad(len(lines), f"missing section %{name}")
        elif not sections[name][1]:
            bad(sections[name][0], f"section %{name} is empty")
    if "labels" in sections:
        keys = {s.split()[0] for _, s in sections["labels"][1]}
        for k in REQUIRED_LABELS:
            if k not in keys:
                bad(sections["labels"][0], f"%labels lacks {k}")
    for line, entry in sections.get("files", (0, []))[1]:
        src = entry.split()[0]
        if not (ctx / src).exists():
            bad(line, f"%files source {src!r} does not exist in the build context {ctx}")
    return out
