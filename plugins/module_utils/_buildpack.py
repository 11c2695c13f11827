# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Detect a Python/Django app and write the Dockerfile that builds it.

Users bring the contract of Heroku's Python buildpack (requirements.txt, Procfile,
.python-version or runtime.txt, collectstatic for Django); the build itself is a plain
multi-stage Dockerfile for the classic builder. Standard library only, so it is tested alone.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from ansible_collections.qoddi.paas.plugins.module_utils._conventions import APP_UID, WEB_PORT, Label
from ansible_collections.qoddi.paas.plugins.module_utils._static import collect_command


class BuildpackError(Exception):
    """One readable message: what is wrong and what to do. str(exc) is shown to the user as is."""


@dataclass(frozen=True)
class AppSpec:
    processes: dict[str, str]
    python_version: str
    python_version_source: str
    django: bool
    manage_py: str | None
    warnings: tuple[str, ...]
    requirements_files: tuple[str, ...]
    # Paths pip installs from or searches (`-e .`, `./libs/x`, `--find-links wheels`), relative to
    # the root: they must be in /app before `pip install`. "." means the whole tree.
    local_paths: tuple[str, ...] = ()


PROCFILE_EXAMPLE = "web: gunicorn myproject.wsgi"
_PROCESS_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")
_COMMENT = re.compile(r"(^|\s)#.*$")
_INCLUDE = re.compile(r"^(-r|-c|--requirement|--constraint)(?:\s*=\s*|\s*)(\S.*)$")
_PATH_OPTION = re.compile(r"^(-e|--editable|-f|--find-links)(?:\s*=\s*|\s*)(\S.*)$")
_NAME = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[([^\]]*)\])?")
_EGG = re.compile(r"[#&]egg=([A-Za-z0-9._-]+)")
_PLAIN_PATH = re.compile(r"^[A-Za-z0-9_./+@-]+$")
_DOCKERFILE_VALUE = re.compile(r"^[^\s\"'\\$]+$")
_OTHER_MANAGERS = (  # what to run to get a requirements.txt, by the file that shows the tool
    ("Pipfile.lock", "pipenv requirements > requirements.txt"),
    ("Pipfile", "pipenv requirements > requirements.txt"),
    ("poetry.lock", "poetry export -f requirements.txt -o requirements.txt"),
    ("uv.lock", "uv export --format requirements-txt -o requirements.txt"),
    ("pyproject.toml", "pip freeze > requirements.txt"),
    ("setup.py", "pip freeze > requirements.txt"),
)
_VERSION_MISSPELLINGS = {".python_version", "python-version", "python_version", "python-version.txt",
                         ".python-version.txt", ".python-versions", "runtime.text", "runtime", "runtime.txt.txt"}
# Config vars reach tasks as files (Swarm secrets, see _env); bash exports them before running
# anything, through BASH_ENV (every `bash -c`: Procfile, release and console commands) and
# bash.bashrc (interactive shells). `read -d ''` keeps a value byte for byte, trailing newlines too.
ENV_SCRIPT = """\
# qoddi.paas: export the app's config vars, one file per variable under /run/secrets/qoddi-env.
for __qoddi_var in /run/secrets/qoddi-env/*; do
  [ -r "$__qoddi_var" ] || continue
  IFS= read -r -d '' "${__qoddi_var##*/}" < "$__qoddi_var"
  export "${__qoddi_var##*/}"
done
unset __qoddi_var
"""
_DATABASE_URL_READERS = {"dj-database-url", "django-heroku", "django-environ"}
_SKIP_DIRS = {"node_modules", "__pycache__", "venv", "site-packages"}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _read(path: str) -> str:
    # utf-8-sig: editors on Windows write a BOM, which would otherwise glue itself to line 1.
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        return handle.read()


def _and_list(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _version_key(version: str) -> tuple:
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


def _logical_lines(text: str):
    """(first line number, content) per requirement, joining `\\` continuations as pip does."""
    pending, first = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            first = number
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line = _COMMENT.sub("", pending + raw).strip()
        pending = ""
        if line:
            yield first, line
    if pending := _COMMENT.sub("", pending).strip():  # a last line ending with a backslash
        yield first, pending


def _inside(root: str, rel: str, where: str) -> str:
    rel = os.path.normpath(rel).replace(os.sep, "/")
    if os.path.isabs(rel) or rel == ".." or rel.startswith("../"):
        raise BuildpackError(f"{where} points outside the app's directory, which is all the build can see: "
                             "move that file into the repository and use a relative path.")
    return rel


def _read_requirements(root: str) -> tuple[list[str], dict[str, set[str]], list[str]]:
    """Every requirements file reached from requirements.txt, the packages they name, local paths."""
    files: list[str] = []
    names: dict[str, set[str]] = {}
    local: list[str] = []

    def add_local(target: str, where: str) -> None:
        target = re.sub(r"\[[^\]]*\]$", "", target.split(";")[0].strip()).rstrip("/") or "."
        rel = "." if target.startswith("file:") else _inside(root, target, where)
        if rel not in local:
            local.append(rel)

    def visit(rel: str, constraint: bool) -> None:
        if rel in files:  # includes may form cycles; pip itself would loop
            return
        files.append(rel)
        for number, line in _logical_lines(_read(os.path.join(root, rel))):
            where = f"{rel}, line {number} ({line!r})"
            include, path_option = _INCLUDE.match(line), _PATH_OPTION.match(line)
            if include:
                target = include.group(2).strip().strip("'\"")
                if "://" in target:  # pip downloads it during the install
                    continue
                # pip resolves -r/-c relative to the file that holds them, not the working directory.
                target = _inside(root, os.path.join(os.path.dirname(rel), target), where)
                if not os.path.isfile(os.path.join(root, target)):
                    raise BuildpackError(f"{where} includes {target}, which does not exist. Paths in -r and -c "
                                         f"lines are relative to the file that contains them ({rel}).")
                visit(target, constraint or include.group(1) in ("-c", "--constraint"))
            elif path_option:
                target = path_option.group(2).strip().strip("'\"")
                egg = _EGG.search(target)
                if egg and not constraint:
                    names.setdefault(_normalize(egg.group(1)), set())
                if "://" not in target or target.startswith("file:"):
                    add_local(target, where)
            elif line.startswith("-"):
                continue  # --index-url, --hash, --no-binary...: pip's business, not ours
            elif "://" in line.split()[0]:  # a bare URL: only its #egg= fragment names the package
                if (egg := _EGG.search(line)) and not constraint:
                    names.setdefault(_normalize(egg.group(1)), set())
            elif line.startswith((".", "/", "file:")) or "/" in line.split()[0]:
                add_local(line, where)
            elif (match := _NAME.match(line)) and not constraint:
                # Constraints limit versions but install nothing, so they do not make an app Django.
                extras = {_normalize(extra) for extra in (match.group(2) or "").split(",") if extra.strip()}
                names.setdefault(_normalize(match.group(1)), set()).update(extras)

    visit("requirements.txt", False)
    return files, names, local


def _check_dependency_files(root: str, entries: list[str]) -> list[str]:
    for venv in ("venv", ".venv"):
        if os.path.isdir(os.path.join(root, venv)):
            raise BuildpackError(
                f"The app's repository contains a virtualenv ({venv}/). It holds programs built for another "
                f"machine and must not be deployed: remove it from the repository (git rm -r --cached {venv}), "
                f"add {venv}/ to .gitignore, and list the dependencies in requirements.txt instead.")
    others = [name for name, unused_command in _OTHER_MANAGERS if name in entries]
    if os.path.isfile(os.path.join(root, "requirements.txt")):
        return [f"Dependencies are installed from requirements.txt; {name} is ignored. Keep requirements.txt "
                f"up to date with `{command}`." for name, command in _OTHER_MANAGERS
                if name in others and name in ("Pipfile.lock", "poetry.lock", "uv.lock")]
    if others:
        command = dict(_OTHER_MANAGERS)[others[0]]
        project = others[0] in ("pyproject.toml", "setup.py")
        raise BuildpackError(
            f"No requirements.txt at the root of the app, but found {_and_list(others)}: this platform installs "
            f"dependencies from requirements.txt only. Generate it with `{command}` and commit it"
            + (f" (or let it hold the single line `.`, which installs the project from {others[0]})." if project
               else "."))
    shown = [entry for entry in entries if entry != ".git"]
    found = ", ".join(shown[:10]) + (", ..." if len(shown) > 10 else "") if shown else "nothing at all"
    raise BuildpackError("No requirements.txt at the root of the app, so this is not recognised as a Python app "
                         f"(the root holds: {found}). Add a requirements.txt listing the app's dependencies, e.g. "
                         "with `pip freeze > requirements.txt` in its virtualenv, and commit it.")


def _wsgi_hint(root: str, entries: list[str]) -> str:
    for entry in entries:
        if os.path.isfile(os.path.join(root, entry, "wsgi.py")):
            return f"web: gunicorn {entry}.wsgi"
    return PROCFILE_EXAMPLE


def _read_procfile(root: str, entries: list[str]) -> dict[str, str]:
    if not os.path.isfile(os.path.join(root, "Procfile")):
        near = [e for e in entries if e.lower() == "procfile" and e != "Procfile" or e.lower().startswith("procfile.")]
        if near:
            raise BuildpackError(f"No Procfile at the root of the app, but found {near[0]}: rename it to exactly "
                                 "Procfile (capital P, no extension).")
        raise BuildpackError("No Procfile at the root of the app. Add a file named Procfile that says how to start "
                             f"each process, one `name: command` per line, e.g. `{_wsgi_hint(root, entries)}` "
                             "(the web process serves HTTP on $PORT).")
    processes: dict[str, str] = {}
    for number, raw in enumerate(_read(os.path.join(root, "Procfile")).splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, colon, command = line.partition(":")
        name, command = name.strip(), command.strip()
        if not colon or not _PROCESS_NAME.match(name) or not command:
            raise BuildpackError(
                f"Procfile line {number} is not `name: command` ({line!r}): the name is letters, digits, _ or -, "
                f"followed by a colon and the command, e.g. `{PROCFILE_EXAMPLE}`.")
        if name == "next":
            raise BuildpackError(f"Procfile line {number} names a process `next`, whose service would be the "
                                 "platform's own <app>--next (the new release's first tasks during a rollout): give "
                                 "it another name.")
        if name in processes:
            raise BuildpackError(f"Procfile line {number} declares the process {name!r} a second time: keep one "
                                 f"`{name}:` line.")
        processes[name] = command
    if "web" not in processes:
        declared = f"declares {_and_list(list(processes))} but " if processes else ""
        raise BuildpackError(f"The Procfile {declared}has no web process, and HTTP traffic goes to the web process: "
                             f"add a line such as `{_wsgi_hint(root, entries)}`.")
    return processes


def unavailable(version: str, source: str, available: Sequence[str], elsewhere: str,
                default_origin: str = "the platform's default") -> str:
    """One message: what was asked, what this platform offers, and the exact line to write instead."""
    offered = sorted(available, key=_version_key)
    if not offered:
        return f"Python {version} cannot be had on this platform, which offers no Python at all: {elsewhere}"
    # The nearest offered version at or above the one asked for (an upgrade is the safer guess), else the newest.
    instead = next((v for v in offered if _version_key(v) >= _version_key(version)), offered[-1])
    eol = f"Python {version} is end-of-life. " if _version_key(version) < (3, 10) else ""
    origin = default_origin if source == "default" else f"from {source}"
    if source == "runtime.txt":
        write = (f"Write the line `python-{instead}` in runtime.txt, or better, replace runtime.txt by a "
                 f".python-version file holding the line `{instead}`")
    elif source == ".python-version":
        write = f"Write the line `{instead}` in .python-version"
    else:
        write = f"Add a .python-version file holding the line `{instead}`"
    return (f"{eol}Python {version} ({origin}) cannot be had on this platform, which offers "
            f"{_and_list(offered)}. {write}. {elsewhere}").strip()


def _python_version(root: str, entries: list[str], available: Sequence[str],
                    default: str, elsewhere: str, default_origin: str) -> tuple[str, str, list[str]]:
    warnings: list[str] = []
    runtime_txt, python_version = (os.path.join(root, name) for name in ("runtime.txt", ".python-version"))
    if os.path.isfile(runtime_txt):
        source, text = "runtime.txt", _read(runtime_txt).strip()
        match = _VERSION.match(text[len("python-"):]) if text.startswith("python-") else None
        if not match:
            raise BuildpackError(f"runtime.txt holds {text!r}, which is not a Python version: write python-3.X "
                                 "(e.g. python-3.13), or better, replace runtime.txt by a .python-version file "
                                 "holding 3.13.")
        ignored = " (.python-version is ignored while runtime.txt exists)" if os.path.isfile(python_version) else ""
        warnings.append(f"runtime.txt is deprecated{ignored}: replace it by a .python-version file holding "
                        f"{match.group(1)}.{match.group(2)}.")
    elif os.path.isfile(python_version):
        source = ".python-version"
        lines = [line.strip() for line in _read(python_version).splitlines()]
        lines = [line for line in lines if line and not line.startswith("#")]
        if len(lines) != 1:
            found = f"several versions ({', '.join(lines)})" if lines else "no version"
            raise BuildpackError(f".python-version holds {found}: write exactly one line with the version to "
                                 "build with, e.g. 3.13.")
        text, match = lines[0], _VERSION.match(lines[0])
        if not match:
            hint = " (the python- prefix belongs to runtime.txt)" if text.startswith("python-") else ""
            raise BuildpackError(f".python-version holds {text!r}, which is not a Python version{hint}: write "
                                 "3.X, e.g. 3.13.")
    else:
        for entry in entries:
            lower = entry.lower()
            misspelled = lower in _VERSION_MISSPELLINGS or lower in (".python-version", "runtime.txt")
            if misspelled and os.path.isfile(os.path.join(root, entry)):  # a package may be named runtime/
                raise BuildpackError(f"Found {entry}, but the Python version is read only from a file named "
                                     f"exactly .python-version: rename {entry} to .python-version, holding one "
                                     "line such as 3.13.")
        source, text, match = "default", default, None
        warnings.append(f"No Python version is given, so {default} ({default_origin}) is used. Pin it with a "
                        f".python-version file holding {default}, so that the app does not depend on that.")
    version = f"{match.group(1)}.{match.group(2)}" if match else default
    if version not in available:  # the caller picks the builder image by this version: it must exist
        raise BuildpackError(unavailable(version, source, available, elsewhere, default_origin))
    if match and match.group(3) is not None:
        warnings.append(f"{source} asks for {text.removeprefix('python-')}: only the minor version is used, so "
                        f"the app is built with the Python {version} release the platform's image holds.")
    return version, source, warnings


def _find_manage_py(root: str) -> str | None:
    """The shallowest manage.py, as Heroku finds it (`find . -maxdepth 3`: the root and two levels down)."""
    found: list[tuple[int, str]] = []
    for current, dirs, files in os.walk(root):
        rel = os.path.relpath(current, root).replace(os.sep, "/")
        depth = 0 if rel == "." else rel.count("/") + 1
        # A name with a line break could not be written into the Dockerfile; no real project has one.
        dirs[:] = [d for d in dirs if depth < 2 and not d.startswith(".") and d not in _SKIP_DIRS and d.isprintable()]
        if "manage.py" in files:
            found.append((depth, "manage.py" if rel == "." else f"{rel}/manage.py"))
    return min(found)[1] if found else None


def detect(root: str, available_versions: Sequence[str], default_version: str,
           elsewhere: str = "Setting qoddi_image_source: registry on the platform builds from the official python "
                            "images, which provide other versions.",
           default_origin: str = "the platform's default") -> AppSpec:
    """Read the app in ``root``; raise BuildpackError with one actionable message if it cannot be built.

    ``available_versions`` are the Pythons the platform has or can provide; ``elsewhere`` ends the
    message for any other version (where the versions not offered here can be had);
    ``default_origin`` says where ``default_version`` comes from, for apps that name none.
    """
    if not os.path.isdir(root):
        raise BuildpackError(f"The app's source directory {root} does not exist or is not a directory.")
    entries = sorted(os.listdir(root))
    warnings = _check_dependency_files(root, entries)
    files, names, local = _read_requirements(root)
    processes = _read_procfile(root, entries)
    version, source, version_warnings = _python_version(root, entries, available_versions, default_version,
                                                        elsewhere, default_origin)
    manage_py = _find_manage_py(root)
    django = manage_py is not None and "django" in names
    web = processes["web"].split()
    if web[:1] == ["gunicorn"] or web[:3] == ["python", "-m", "gunicorn"]:
        if "gunicorn" not in names:
            warnings.append("The web process starts gunicorn, but gunicorn is missing from requirements.txt: add "
                            "it, or the web process will not start.")
    if manage_py and not django:
        warnings.append(f"{manage_py} found, but no requirements file names Django, so static files are not "
                        "collected: add Django to requirements.txt if the app uses it.")
    if django and not (_DATABASE_URL_READERS & names.keys() or "django" in names.get("environs", ())):
        warnings.append("None of dj-database-url, django-environ or django-heroku is in requirements.txt: the "
                        "DATABASE_URL given to the app is ignored unless its settings read it, and an app that "
                        "falls back to SQLite loses its data at every restart.")
    if "." in local:
        warnings.append("requirements.txt installs the app's own directory, so dependencies are reinstalled "
                        "whenever the code changes.")
    return AppSpec(processes=processes, python_version=version, python_version_source=source, django=django,
                   manage_py=manage_py, warnings=tuple(version_warnings + warnings),
                   requirements_files=tuple(files), local_paths=tuple(local))


# The build context holds the app under app/ (_build.APP_PREFIX) and the generated files under .qoddi/.
_APP = "app/"


def _copy(path: str) -> str:
    if _PLAIN_PATH.match(path):
        return f"COPY {_APP}{path} /app/{path}"
    return "COPY " + json.dumps([_APP + path, f"/app/{path}"])


def without_credentials(url: str) -> str:
    """``url`` without its user and password (https://user:token@host/simple -> https://host/simple)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _check_words(**values: str) -> None:
    for option, value in values.items():
        if not _DOCKERFILE_VALUE.match(value):
            raise BuildpackError(f"{option} {value!r} cannot be written into a Dockerfile: it must be one word "
                                 "without quotes, backslashes or $.")


def _header(spec: AppSpec) -> list[str]:
    kind = f"Django app ({spec.manage_py})" if spec.django else "Python app"
    return [
        "# Generated by qoddi.paas from the app's requirements.txt, Procfile and Python version.",
        f"# {kind}, Python {spec.python_version} (from {spec.python_version_source}); "
        f"processes: {', '.join(spec.processes)}.",
        "# Classic builder: no BuildKit features, so any Docker engine can build it.",
        "",
    ]


def _dependencies_stage(spec: AppSpec, builder_image: str, ca_bundle: bool, pip_index_url: str) -> list[str]:
    """The build stage up to `pip install`: the builder, pip's settings, the virtualenv, the files pip reads."""
    lines = [
        "# Build stage: compilers and headers, so packages without wheels (psycopg2...) build from source.",
        f"FROM {builder_image} AS build",
        "WORKDIR /app",
    ]
    if ca_bundle:
        lines += ["# Extra CA (corporate proxy, private index): trusted by pip in this stage only.",
                  "COPY .qoddi/ca-bundle.crt /etc/qoddi/ca-bundle.crt",
                  "ENV PIP_CERT=/etc/qoddi/ca-bundle.crt GIT_SSL_CAINFO=/etc/qoddi/ca-bundle.crt"]
    if pip_index_url:
        lines.append(f"ENV PIP_INDEX_URL={pip_index_url}")
    lines += [
        "ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1",
        "# The virtualenv lives apart from the app's files, so the runtime stage can take each as a whole.",
        "RUN python -m venv /opt/venv",
        "ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv",
    ]
    if "." in spec.local_paths:
        lines += ["# requirements.txt installs the app's own directory, so the whole tree is needed first.",
                  f"COPY {_APP} /app/"]
    else:
        lines.append("# Requirements first: Docker reuses the installed dependencies while only code changes.")
        lines += [_copy(path) for path in spec.requirements_files + spec.local_paths]
    return lines


def dependencies_dockerfile(spec: AppSpec, builder_image: str, *, ca_bundle: bool = False) -> str:
    """The build stage up to `pip install`, for an index whose credentials must stay out of every layer.

    `pip install` then runs in a container of this image with the index URL in its process's
    environment only (see _build.run_hooks), and the result is committed as the dependencies
    image that dockerfile(deps_image=...) starts from.
    """
    _check_words(builder_image=builder_image)
    return "\n".join(_header(spec) + _dependencies_stage(spec, builder_image, ca_bundle, "")) + "\n"


# What installs the dependencies in a container of dependencies_dockerfile()'s image.
INSTALL_SCRIPT = "set -e\ncd /app\npip install -r requirements.txt\n"


def dockerfile(spec: AppSpec, builder_image: str, runtime_image: str, *, ca_bundle: bool = False,
               pip_index_url: str = "", deps_image: str = "") -> str:
    """The multi-stage Dockerfile for ``spec``: same inputs, byte-identical output.

    It holds no config var: the build hooks (collectstatic, bin/post_compile) run afterwards in a
    container of the built image that receives the values outside its configuration (see hooks()).
    ``deps_image``, when given, has the dependencies installed already (an index with credentials,
    see dependencies_dockerfile()); the build stage starts from it instead of installing them.
    """
    # The optional values may be empty (not written at all).
    _check_words(builder_image=builder_image, runtime_image=runtime_image, pip_index_url=pip_index_url or "-",
                 deps_image=deps_image or "-")
    if pip_index_url != without_credentials(pip_index_url):
        raise BuildpackError("pip_index_url holds credentials, which a Dockerfile would keep in the image: "
                             "give them through dependencies_dockerfile() instead.")
    lines = _header(spec)
    if deps_image:
        lines += ["# Build stage: the dependencies were installed in this image outside the Dockerfile, so",
                  "# that the index's credentials are in no layer.",
                  f"FROM {deps_image} AS build"]
    else:
        lines += _dependencies_stage(spec, builder_image, ca_bundle, pip_index_url)
        lines.append("RUN pip install -r requirements.txt")
    # The app's code is not in the build stage (but for `-e .`): it goes straight into the final stage, as
    # its last step, so a code-only change rebuilds one layer and every step before it comes from the
    # cache. The generated files (.qoddi/: this Dockerfile, the CA bundle) are beside the app in the
    # context, not in it: no image takes them, collectstatic cannot publish them.
    lines += [
        "",
        "# Runtime stage: the same Python without compilers; only the virtualenv and the app come along.",
        f"FROM {runtime_image}",
        "# The app's config vars: exported by every bash the platform starts (see ENV_SCRIPT in _buildpack).",
        "COPY .qoddi/env.sh /etc/qoddi/env.sh",
        "# The runtime image may lack useradd; USER takes the numeric id either way.",
        f"RUN (useradd --system --uid {APP_UID} --home /app app || true) \\",
        "  && echo '. /etc/qoddi/env.sh' >> /etc/bash.bashrc",
        "# gunicorn reads these without flags: bind 0.0.0.0:$PORT, trust the router's X-Forwarded-*, log requests.",
        "ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv PYTHONUNBUFFERED=1 PYTHONPATH=/app LANG=C.UTF-8 "
        f"PORT={WEB_PORT} FORWARDED_ALLOW_IPS=* GUNICORN_CMD_ARGS=--access-logfile=-",
        "ENV HOME=/app BASH_ENV=/etc/qoddi/env.sh",
        "COPY --from=build /opt/venv /opt/venv",
        "# What pip read or wrote under /app (requirements files, local packages and their egg-info).",
        "# The app may write to its directory, as on Heroku (lost at every restart), but not to its packages.",
        f"COPY --from=build --chown={APP_UID}:{APP_UID} /app /app",
        "WORKDIR /app",
        "# org.qoddi.image overrides the label inherited from the python image: this is an app, not a base.",
        f"LABEL {Label.IMAGE}=\"app\" {Label.PYTHON}={json.dumps(spec.python_version)} "
        f"{Label.DJANGO}={json.dumps('true' if spec.django else 'false')}",
        f"USER {APP_UID}",
        f"EXPOSE {WEB_PORT}",
        "# The platform starts each process as bash -c \"<Procfile command>\".",
        'CMD ["bash"]',
        "# The code last: everything above is the same from one code change to the next.",
        f"COPY --chown={APP_UID}:{APP_UID} {_APP} /app/",
        "",
    ]
    return "\n".join(lines)


def needs_hooks(spec: AppSpec, root: str) -> bool:
    """Whether the build has a step that runs the app's code with its config vars."""
    return spec.django or os.path.isfile(os.path.join(root, "bin", "post_compile"))


def hooks(spec: AppSpec) -> str:
    """The bash script of the build hooks, run in /app: collectstatic for Django, then bin/post_compile.

    Heroku's buildpack runs them with the app's config vars; here they run after the image is built,
    in a container whose process alone gets the values (docker exec's environment), so that no
    layer, image config or build cache holds them.
    """
    steps = ["set -e"]
    if spec.django:
        manage_py = spec.manage_py or "manage.py"
        steps += [
            'if [ "${DISABLE_COLLECTSTATIC:-0}" = 0 ]; then',
            f"  echo qoddi: running {shlex.quote(manage_py)} collectstatic --noinput",
            # As `python manage.py collectstatic --noinput`, noting the files it opens (see _static).
            "  " + collect_command(os.path.dirname(f"/app/{manage_py}")) + " || {",
            '    echo "qoddi: collectstatic failed: fix the error above, or set DISABLE_COLLECTSTATIC=1 to skip it"',
            '    if [ "${DEBUG_COLLECTSTATIC:-0}" != 0 ]; then echo "qoddi: variables set (values hidden):"; '
            "env | cut -d= -f1 | sort; fi",
            "    exit 1",
            "  }",
            "else",
            '  echo "qoddi: DISABLE_COLLECTSTATIC is set, so collectstatic was not run"',
            "fi",
        ]
    steps += [
        "if [ -f bin/post_compile ] && [ -x bin/post_compile ]; then",
        '  echo "qoddi: running bin/post_compile"',
        '  bin/post_compile || { echo "qoddi: bin/post_compile failed: fix the error above"; exit 1; }',
        "elif [ -f bin/post_compile ]; then",
        '  echo "qoddi: bin/post_compile is not executable, so it was not run (git update-index --chmod=+x it)"',
        "fi",
    ]
    return "\n".join(steps) + "\n"
