# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ansible_collections.qoddi.paas.plugins.module_utils._buildpack import (
    INSTALL_SCRIPT,
    AppSpec,
    BuildpackError,
    dependencies_dockerfile,
    detect,
    dockerfile,
    hooks,
    needs_hooks,
    without_credentials,
)

AVAILABLE = ["3.11", "3.13", "3.14"]
DEFAULT = "3.14"

DJANGO_APP = {
    "manage.py": "#!/usr/bin/env python\n",
    "mysite/__init__.py": "",
    "mysite/wsgi.py": "",
    "requirements.txt": "Django>=5.2,<6\ngunicorn==23.0.0\ndj-database-url==2.3.0\n",
    "Procfile": "web: gunicorn mysite.wsgi\nrelease: python manage.py migrate --noinput\n",
    ".python-version": "3.13\n",
}


def make_app(root, files: dict[str, str], drop: tuple[str, ...] = ()):
    for rel, text in files.items():
        if rel in drop:
            continue
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
    return str(root)


def django_app(root, drop: tuple[str, ...] = (), **extra: str) -> str:
    return make_app(root, {**DJANGO_APP, **{k.replace("__", "/"): v for k, v in extra.items()}}, drop)


def error_of(root: str) -> str:
    with pytest.raises(BuildpackError) as caught:
        detect(root, AVAILABLE, DEFAULT)
    return str(caught.value)


# --- a valid app ---------------------------------------------------------------------------------


def test_valid_django_app(tmp_path):
    spec = detect(django_app(tmp_path), AVAILABLE, DEFAULT)
    assert spec == AppSpec(
        processes={"web": "gunicorn mysite.wsgi", "release": "python manage.py migrate --noinput"},
        python_version="3.13", python_version_source=".python-version", django=True, manage_py="manage.py",
        warnings=(), requirements_files=("requirements.txt",),
    )
    assert list(spec.processes) == ["web", "release"]


def test_plain_python_app_is_not_django(tmp_path):
    root = make_app(tmp_path, {"requirements.txt": "flask\ngunicorn\n", "Procfile": "web: gunicorn app:app\n",
                               ".python-version": "3.11\n"})
    spec = detect(root, AVAILABLE, DEFAULT)
    assert (spec.django, spec.manage_py, spec.python_version, spec.warnings) == (False, None, "3.11", ())


def test_procfile_with_crlf_comments_and_bom(tmp_path):
    root = django_app(tmp_path, Procfile="\ufeff# processes\r\n\r\nweb: gunicorn mysite.wsgi --timeout 25\r\n"
                                         "  worker:   celery -A mysite worker  \r\n")
    assert detect(root, AVAILABLE, DEFAULT).processes == {"web": "gunicorn mysite.wsgi --timeout 25",
                                                          "worker": "celery -A mysite worker"}


# --- Python version ------------------------------------------------------------------------------


def test_runtime_txt_wins_over_python_version_and_warns(tmp_path):
    root = django_app(tmp_path, **{"runtime.txt": "python-3.11\n", ".python-version": "3.14\n"})
    spec = detect(root, AVAILABLE, DEFAULT)
    assert (spec.python_version, spec.python_version_source) == ("3.11", "runtime.txt")
    assert any("runtime.txt is deprecated" in w and ".python-version" in w for w in spec.warnings)


def test_patch_version_is_dropped_with_a_warning(tmp_path):
    spec = detect(django_app(tmp_path, **{".python-version": "3.13.2\n"}), AVAILABLE, DEFAULT)
    assert spec.python_version == "3.13"
    assert any("3.13.2" in w and "minor" in w for w in spec.warnings)


def test_runtime_txt_patch_version(tmp_path):
    spec = detect(django_app(tmp_path, drop=(".python-version",), **{"runtime.txt": "python-3.14.1"}),
                  AVAILABLE, DEFAULT)
    assert (spec.python_version, spec.python_version_source) == ("3.14", "runtime.txt")
    assert len([w for w in spec.warnings if "3.14.1" in w or "deprecated" in w]) == 2


def test_python_version_ignores_comments_blank_lines_crlf_and_spaces(tmp_path):
    root = django_app(tmp_path, **{".python-version": "# pinned for prod\r\n\r\n   3.11  \r\n"})
    assert detect(root, AVAILABLE, DEFAULT).python_version == "3.11"


def test_default_version_when_none_given(tmp_path):
    spec = detect(django_app(tmp_path, drop=(".python-version",)), AVAILABLE, DEFAULT)
    assert (spec.python_version, spec.python_version_source) == ("3.14", "default")
    assert any(".python-version" in w for w in spec.warnings)


@pytest.mark.parametrize("content, words", [
    ("3.13\n3.12\n", ["several", "3.13", "3.12"]),
    ("# nothing\n\n", ["no version"]),
    ("3\n", ["'3'", "3.X"]),
    ("python-3.13\n", ["'python-3.13'", "runtime.txt"]),
    ("3.13.0rc1\n", ["'3.13.0rc1'"]),
])
def test_bad_python_version_file(tmp_path, content, words):
    message = error_of(django_app(tmp_path, **{".python-version": content}))
    assert ".python-version" in message and all(word in message for word in words)


def test_unparsable_runtime_txt(tmp_path):
    message = error_of(django_app(tmp_path, **{"runtime.txt": "3.13\n"}))
    assert "runtime.txt" in message and "'3.13'" in message and "python-3.X" in message


@pytest.mark.parametrize("name", [".python_version", "python-version.txt", ".python-version.txt",
                                  "runtime.text", "Runtime.txt"])
def test_misspelled_version_file(tmp_path, name):
    message = error_of(django_app(tmp_path, drop=(".python-version",), **{name: "3.13\n"}))
    assert name in message and "rename" in message and ".python-version" in message


def test_a_package_named_like_a_misspelling_is_not_one(tmp_path):
    spec = detect(django_app(tmp_path, drop=(".python-version",), **{"runtime/__init__.py": ""}), AVAILABLE, DEFAULT)
    assert spec.python_version_source == "default"


def test_unavailable_version_names_it_and_the_alternatives(tmp_path):
    message = error_of(django_app(tmp_path, **{".python-version": "3.12\n"}))
    assert "3.12" in message and "3.11, 3.13 and 3.14" in message and "qoddi_image_source: registry" in message
    assert "Write the line `3.13` in .python-version" in message


def test_unavailable_version_from_runtime_txt_says_both_lines_to_write(tmp_path):
    message = error_of(django_app(tmp_path, drop=(".python-version",), **{"runtime.txt": "python-3.12.4"}))
    assert message.startswith("Python 3.12 (from runtime.txt) cannot be had on this platform, which offers "
                              "3.11, 3.13 and 3.14.")
    assert "`python-3.13` in runtime.txt" in message and "holding the line `3.13`" in message


def test_a_version_newer_than_every_offered_one_suggests_the_newest(tmp_path):
    message = error_of(django_app(tmp_path, **{".python-version": "3.16\n"}))
    assert "Write the line `3.14` in .python-version" in message


def test_the_caller_says_where_other_versions_are(tmp_path):
    with pytest.raises(BuildpackError, match=r"offers 3\.11, 3\.13 and 3\.14\. Write .* Ask elsewhere\.$"):
        detect(django_app(tmp_path, **{".python-version": "3.10\n"}), AVAILABLE, DEFAULT, "Ask elsewhere.")


def test_unavailable_patch_version_is_checked_against_its_minor(tmp_path):
    message = error_of(django_app(tmp_path, **{"runtime.txt": "python-3.10.4"}))
    assert "3.10" in message and "runtime.txt" in message and "cannot be had" in message


def test_the_default_says_where_it_comes_from(tmp_path):
    root = django_app(tmp_path, drop=(".python-version",))
    spec = detect(root, AVAILABLE, "3.11", default_origin="the app's previous build")
    assert any("3.11 (the app's previous build) is used" in w for w in spec.warnings)
    with pytest.raises(BuildpackError, match=r"Python 3\.12 \(the task's python_version\) cannot be had"):
        detect(root, AVAILABLE, "3.12", default_origin="the task's python_version")


def test_unavailable_default_version(tmp_path):
    with pytest.raises(BuildpackError, match=r"3\.15 \(the platform's default\).*\.python-version"):
        detect(django_app(tmp_path, drop=(".python-version",)), AVAILABLE, "3.15")


def test_end_of_life_version(tmp_path):
    assert "end-of-life" in error_of(django_app(tmp_path, **{".python-version": "3.8\n"}))


# --- requirements ------------------------------------------------------------------------------


def test_requirements_includes_are_followed_recursively(tmp_path):
    root = django_app(tmp_path, **{
        "requirements.txt": "-r requirements/production.txt\n",
        "requirements/production.txt": "--requirement=base.txt  # shared\ngunicorn\n-c ../constraints.txt\n",
        "requirements/base.txt": "Django[argon2]==5.2 \\\n    --hash=sha256:abc\n-rextra/more.txt\n"
                                 "-r https://example.com/remote.txt\n",
        "requirements/extra/more.txt": "dj_database_url\n-r ../base.txt\n",
        "constraints.txt": "urllib3<3\n",
    })
    spec = detect(root, AVAILABLE, DEFAULT)
    assert spec.requirements_files == ("requirements.txt", "requirements/production.txt", "requirements/base.txt",
                                       "requirements/extra/more.txt", "constraints.txt")
    assert spec.django and spec.warnings == ()


def test_missing_include_names_the_file_and_line(tmp_path):
    root = django_app(tmp_path, **{"requirements.txt": "gunicorn\n\n-r requirements/base.txt\n"})
    message = error_of(root)
    assert "requirements.txt, line 3" in message and "requirements/base.txt" in message
    assert "does not exist" in message


def test_include_outside_the_app_is_refused(tmp_path):
    app = tmp_path / "app"
    (tmp_path / "shared.txt").write_text("Django\n")
    message = error_of(django_app(app, **{"requirements.txt": "-r ../shared.txt\n"}))
    assert "outside" in message and "line 1" in message


def test_requirements_missing_with_nothing_else_lists_the_root(tmp_path):
    message = error_of(make_app(tmp_path, {"app.py": "", "README.md": "", "Procfile": "web: x"}))
    assert "requirements.txt" in message and "README.md" in message and "app.py" in message


def test_requirements_missing_in_an_empty_directory(tmp_path):
    assert "nothing at all" in error_of(str(tmp_path))


@pytest.mark.parametrize("other, command", [
    ("pyproject.toml", "pip freeze"), ("poetry.lock", "poetry export"), ("uv.lock", "uv export"),
    ("Pipfile", "pipenv requirements"), ("Pipfile.lock", "pipenv requirements"), ("setup.py", "pip freeze"),
])
def test_requirements_missing_names_the_other_package_manager(tmp_path, other, command):
    message = error_of(django_app(tmp_path, drop=("requirements.txt",), **{other: ""}))
    assert other in message and command in message and "requirements.txt only" in message


def test_other_lock_file_beside_requirements_is_a_warning(tmp_path):
    spec = detect(django_app(tmp_path, **{"poetry.lock": ""}), AVAILABLE, DEFAULT)
    assert any("poetry.lock is ignored" in w for w in spec.warnings)


@pytest.mark.parametrize("venv", ["venv", ".venv"])
def test_committed_virtualenv_is_refused(tmp_path, venv):
    message = error_of(django_app(tmp_path, **{f"{venv}/pyvenv.cfg": "home = /usr/bin\n"}))
    assert f"{venv}/" in message and ".gitignore" in message and "remove" in message


def test_local_project_install_needs_the_whole_tree(tmp_path):
    root = django_app(tmp_path, **{"requirements.txt": "-e .[web]\n./libs/util\n--find-links wheels\n"
                                                       "-e git+https://github.com/x/y.git#egg=gunicorn\n"})
    spec = detect(root, AVAILABLE, DEFAULT)
    assert spec.local_paths == (".", "libs/util", "wheels")
    text = dockerfile(spec, "b", "r")
    assert text.index("COPY app/ /app/\n") < text.index("RUN pip install")
    # Once in the build stage for pip, once in the final stage as its last step.
    assert text.count("app/ /app/\n") == 2 and text.endswith("COPY --chown=10001:10001 app/ /app/\n")


def test_local_path_requirement_is_copied_before_install(tmp_path):
    spec = detect(django_app(tmp_path, **{"requirements.txt": "Django\ngunicorn\n./vendor/pkg-1.0.whl\n"}),
                  AVAILABLE, DEFAULT)
    text = dockerfile(spec, "b", "r")
    assert text.index("COPY app/vendor/pkg-1.0.whl /app/vendor/pkg-1.0.whl") < text.index("RUN pip install")
    assert text.index("RUN pip install") < text.index("COPY --chown=10001:10001 app/ /app/")


# --- Procfile ------------------------------------------------------------------------------------


def test_procfile_missing_explains_the_form(tmp_path):
    message = error_of(django_app(tmp_path, drop=("Procfile",)))
    assert "No Procfile" in message and "web: gunicorn mysite.wsgi" in message


@pytest.mark.parametrize("name", ["procfile", "Procfile.txt", "PROCFILE"])
def test_procfile_misspelled_gets_a_hint(tmp_path, name):
    message = error_of(django_app(tmp_path, drop=("Procfile",), **{name: "web: gunicorn mysite.wsgi\n"}))
    assert name in message and "rename" in message


@pytest.mark.parametrize("content, words", [
    ("web: gunicorn mysite.wsgi\nworker celery -A mysite\n", ["line 2", "'worker celery -A mysite'",
                                                              "name: command"]),
    ("# comment\nweb:\n", ["line 2"]),
    ("web app: gunicorn mysite.wsgi\n", ["line 1"]),
    ("web: gunicorn a.wsgi\nweb: gunicorn b.wsgi\n", ["line 2", "'web'", "second time"]),
    ("worker: celery -A mysite worker\n", ["worker", "no web process"]),
    ("\n# nothing yet\n", ["no web process"]),
])
def test_bad_procfile(tmp_path, content, words):
    message = error_of(django_app(tmp_path, Procfile=content))
    assert "Procfile" in message and all(word in message for word in words)


# --- Django detection and warnings ----------------------------------------------------------------


def test_manage_py_one_level_down(tmp_path):
    root = django_app(tmp_path, drop=("manage.py",), **{"src/manage.py": "", "src/mysite/wsgi.py": ""})
    spec = detect(root, AVAILABLE, DEFAULT)
    assert (spec.django, spec.manage_py) == (True, "src/manage.py")


def test_shallowest_manage_py_wins_and_search_stops_at_heroku_depth(tmp_path):
    root = django_app(tmp_path, drop=("manage.py",), **{"b/c/manage.py": "", "a/b/c/d/manage.py": "",
                                                        "z/manage.py": ""})
    assert detect(root, AVAILABLE, DEFAULT).manage_py == "z/manage.py"
    os.remove(tmp_path / "z/manage.py")
    assert detect(root, AVAILABLE, DEFAULT).manage_py == "b/c/manage.py"
    os.remove(tmp_path / "b/c/manage.py")
    spec = detect(root, AVAILABLE, DEFAULT)
    assert (spec.django, spec.manage_py) == (False, None)


def test_django_needs_a_requirement_naming_it(tmp_path):
    root = django_app(tmp_path, **{"requirements.txt": "django-environ\ngunicorn\n-c constraints.txt\n",
                                   "constraints.txt": "Django==5.2\n"})
    spec = detect(root, AVAILABLE, DEFAULT)
    assert (spec.django, spec.manage_py) == (False, "manage.py")
    assert any("Django" in w and "static files" in w for w in spec.warnings)


def test_lowercase_django_pin_is_django(tmp_path):
    spec = detect(django_app(tmp_path, **{"requirements.txt": "django==6.0\ngunicorn\ndjango-environ\n"}),
                  AVAILABLE, DEFAULT)
    assert spec.django and spec.warnings == ()


def test_missing_gunicorn_is_a_warning(tmp_path):
    spec = detect(django_app(tmp_path, **{"requirements.txt": "Django\ndj-database-url\n"}), AVAILABLE, DEFAULT)
    assert [w for w in spec.warnings if "gunicorn is missing from requirements.txt" in w]


def test_database_url_warning(tmp_path):
    spec = detect(django_app(tmp_path, **{"requirements.txt": "Django\ngunicorn\npsycopg[binary]\n"}),
                  AVAILABLE, DEFAULT)
    assert [w for w in spec.warnings if "DATABASE_URL" in w and "dj-database-url" in w]


@pytest.mark.parametrize("reader", ["dj-database-url", "dj_database_url", "django-heroku", "django-environ",
                                    "environs[django]"])
def test_database_url_readers_silence_the_warning(tmp_path, reader):
    spec = detect(django_app(tmp_path, **{"requirements.txt": f"Django\ngunicorn\n{reader}\n"}), AVAILABLE, DEFAULT)
    assert spec.warnings == ()


def test_missing_root(tmp_path):
    assert "does not exist" in error_of(str(tmp_path / "nope"))


# --- dockerfile() --------------------------------------------------------------------------------


def spec_of(tmp_path, **extra) -> AppSpec:
    return detect(django_app(tmp_path, **extra), AVAILABLE, DEFAULT)


def final_stage(text: str) -> str:
    return text[text.rindex("\nFROM "):]


def test_dockerfile_is_deterministic(tmp_path):
    spec = spec_of(tmp_path)
    again = detect(str(tmp_path), AVAILABLE, DEFAULT)
    options = dict(ca_bundle=True, pip_index_url="https://pypi.example/simple")
    assert dockerfile(spec, "qoddi/build:3.13", "qoddi/run:3.13", **options) == \
        dockerfile(again, "qoddi/build:3.13", "qoddi/run:3.13", **options)


def test_dockerfile_stages_and_dependency_layer(tmp_path):
    spec = spec_of(tmp_path, **{"requirements.txt": "-r requirements/base.txt\ngunicorn\n",
                                "requirements/base.txt": "Django\ndj-database-url\n"})
    text = dockerfile(spec, "qoddi/build:3.13", "qoddi/run:3.13")
    assert text.startswith("# ") and 'CMD ["bash"]\n' in text
    # The code is the last step: a code-only change reuses every step before it.
    assert text.endswith('CMD ["bash"]\n# The code last: everything above is the same from one code change to the '
                         'next.\nCOPY --chown=10001:10001 app/ /app/\n')
    assert text.count("app/ /app/") == 1
    assert "FROM qoddi/build:3.13 AS build\n" in text and "\nFROM qoddi/run:3.13\n" in text
    copies = [text.index("COPY app/requirements.txt /app/requirements.txt"),
              text.index("COPY app/requirements/base.txt /app/requirements/base.txt")]
    assert max(copies) < text.index("RUN pip install -r requirements.txt") < text.index("app/ /app/")
    assert text.index("RUN python -m venv /opt/venv") < min(copies)
    assert "ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv\n" in text
    assert "ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1\n" in text
    for forbidden in ("--mount", "<<", "# syntax="):
        assert forbidden not in text
    runtime = final_stage(text)
    assert "COPY --from=build /opt/venv /opt/venv" in runtime and "/app /app" in runtime
    assert "RUN (useradd --system --uid 10001 --home /app app || true)" in runtime
    assert "ENV HOME=/app BASH_ENV=/etc/qoddi/env.sh\n" in runtime
    assert "USER 10001\n" in runtime and "EXPOSE 5000\n" in runtime
    assert ("ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv PYTHONUNBUFFERED=1 PYTHONPATH=/app LANG=C.UTF-8 "
            "PORT=5000 FORWARDED_ALLOW_IPS=* GUNICORN_CMD_ARGS=--access-logfile=-\n") in runtime
    assert 'LABEL org.qoddi.image="app" org.qoddi.python="3.13" org.qoddi.django="true"' in runtime


def test_collectstatic_only_for_django(tmp_path):
    django = spec_of(tmp_path / "dj")
    django_hooks = hooks(django)
    assert "collectstatic --noinput" in django_hooks and "qoddi: collectstatic failed" in django_hooks
    assert "DISABLE_COLLECTSTATIC" in django_hooks and "(cd /app && " in django_hooks
    assert needs_hooks(django, str(tmp_path / "dj"))
    plain_root = make_app(tmp_path / "flask", {"requirements.txt": "flask\ngunicorn\n",
                                               "Procfile": "web: gunicorn app:app\n"})
    plain = detect(plain_root, AVAILABLE, DEFAULT)
    assert "collectstatic" not in hooks(plain) and "bin/post_compile" in hooks(plain)
    assert 'org.qoddi.django="false"' in dockerfile(plain, "b", "r")
    # Neither Django nor bin/post_compile: no hook, so no container after the build.
    assert not needs_hooks(plain, plain_root)
    os.makedirs(os.path.join(plain_root, "bin"))
    with open(os.path.join(plain_root, "bin", "post_compile"), "w", encoding="utf-8") as handle:
        handle.write("#!/bin/sh\n")
    assert needs_hooks(plain, plain_root)


def test_collectstatic_runs_in_the_manage_py_directory(tmp_path):
    spec = spec_of(tmp_path, drop=("manage.py",), **{"src/manage.py": ""})
    script = hooks(spec)
    assert "(cd /app/src && PYTHONPATH=/app python - <<'QODDI_COLLECTSTATIC'\n" in script
    assert 'sys.argv = ["manage.py", "collectstatic", "--noinput"]' in script


def test_ca_bundle_and_index_only_when_asked(tmp_path):
    spec = spec_of(tmp_path)
    plain = dockerfile(spec, "b", "r")
    assert "PIP_CERT" not in plain and "ca-bundle" not in plain and "PIP_INDEX_URL" not in plain
    text = dockerfile(spec, "b", "r", ca_bundle=True, pip_index_url="https://pypi.example/simple")
    assert "COPY .qoddi/ca-bundle.crt /etc/qoddi/ca-bundle.crt\n" in text
    assert "ENV PIP_CERT=/etc/qoddi/ca-bundle.crt" in text
    assert "ENV PIP_INDEX_URL=https://pypi.example/simple\n" in text
    assert text.index("PIP_CERT") < text.index("RUN pip install")
    assert "PIP_CERT" not in final_stage(text) and "PIP_INDEX_URL" not in final_stage(text)


@pytest.mark.parametrize("url, public", [
    ("https://u:t0k@pypi.example/simple", "https://pypi.example/simple"),
    ("https://token@pypi.example:8443/simple/", "https://pypi.example:8443/simple/"),
    ("https://pypi.example/simple", "https://pypi.example/simple"),
    ("", ""),
])
def test_without_credentials(url, public):
    assert without_credentials(url) == public


def test_index_credentials_stay_out_of_the_dockerfile(tmp_path):
    # Issue 13: `ENV PIP_INDEX_URL=https://user:token@...` kept the token in the image config, the
    # build log and `docker history`. The credentials go to pip through a container instead.
    spec = spec_of(tmp_path)
    with pytest.raises(BuildpackError, match="holds credentials"):
        dockerfile(spec, "b", "r", pip_index_url="https://u:t0k@pypi.example/simple")
    deps = dependencies_dockerfile(spec, "b", ca_bundle=True)
    assert "PIP_INDEX_URL" not in deps and "RUN pip install" not in deps
    assert deps.rstrip().endswith("COPY app/requirements.txt /app/requirements.txt")
    assert "ENV PIP_CERT=/etc/qoddi/ca-bundle.crt" in deps
    text = dockerfile(spec, "b", "r", deps_image="sha256:0123abcd")
    assert "FROM sha256:0123abcd AS build\n\n" in text and text.count("app/ /app/") == 1
    assert "pip install" not in text and "PIP_INDEX_URL" not in text and "FROM b " not in text
    assert "cd /app" in INSTALL_SCRIPT and "pip install -r requirements.txt" in INSTALL_SCRIPT


def test_dockerfile_holds_no_config_var_and_runs_no_hook(tmp_path):
    # Issue 13: every RUN step and every COPY of the Dockerfile becomes a layer or build-cache image,
    # so the config vars (and the hooks that need them) stay out of it; hooks() runs them afterwards.
    spec = spec_of(tmp_path, **{"bin/post_compile": "#!/bin/sh\n"})
    for ca_bundle in (False, True):
        text = dockerfile(spec, "b", "r", ca_bundle=ca_bundle)
        for absent in ("build.env", "set -a", "collectstatic", "post_compile", "ARG "):
            assert absent not in text
        # The code goes in once, as the last step; no step runs after it.
        assert text.index("\nFROM r\n") < text.index("COPY --chown=10001:10001 app/ /app/\n")
        assert text.count("app/ /app/") == 1 and "RUN " not in text.split("app/ /app/")[1]


@pytest.mark.parametrize("options", [{}, {"ca_bundle": True}])
def test_final_stage_has_no_qoddi_directory(tmp_path, options):
    text = dockerfile(spec_of(tmp_path), "b", "r", **options)
    runtime = final_stage(text).replace("org.qoddi.", "")  # label names are not the directory
    # The only file the final stage takes from .qoddi is the config-vars script, outside /app.
    assert "COPY .qoddi/env.sh /etc/qoddi/env.sh\n" in runtime
    runtime = runtime.replace("COPY .qoddi/env.sh /etc/qoddi/env.sh\n", "")
    assert ".qoddi" not in runtime and "build.env" not in runtime and "ca-bundle" not in runtime
    # The generated files are beside the app in the context (.qoddi/), the app's code under app/: the
    # final stage copies app/ only, so no image holds them and nothing needs deleting.
    assert "COPY --chown=10001:10001 app/ /app/\n" in runtime and "COPY . " not in text


@pytest.mark.parametrize("option", [{"builder_image": "bad image"}, {"runtime_image": ""},
                                    {"pip_index_url": "https://x/simple\nRUN evil"}])
def test_values_that_would_break_the_dockerfile_are_refused(tmp_path, option):
    args = {"builder_image": "b", "runtime_image": "r", **option}
    with pytest.raises(BuildpackError):
        dockerfile(spec_of(tmp_path), args.pop("builder_image"), args.pop("runtime_image"), **args)


# --- the build hooks' script, run for real with a stand-in python ----------------------------------


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("config, python_exit, expected_rc, expected", [
    ({}, 0, 0, "collectstatic ran"),
    ({}, 3, 1, "qoddi: collectstatic failed"),
    ({"DISABLE_COLLECTSTATIC": "1"}, 3, 0, "collectstatic was not run"),
    ({"DISABLE_COLLECTSTATIC": "0"}, 0, 0, "collectstatic ran"),
])
def test_hooks_script(tmp_path, config, python_exit, expected_rc, expected):
    app = tmp_path / "app"
    (app / "bin").mkdir(parents=True)
    (app / "bin/post_compile").write_text('#!/bin/sh\necho "post_compile sees $SECRET_KEY"\n')
    (app / "bin/post_compile").chmod(0o755)
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "python").write_text(f'#!/bin/sh\necho "collectstatic ran in $PWD with $PYTHONPATH"\nexit {python_exit}\n')
    (tools / "python").chmod(0o755)
    script = hooks(spec_of(tmp_path / "src")).replace("/app", str(app))
    # The config vars come as the process's environment, as run_hooks gives them through docker exec.
    env = {"PATH": f"{tools}:{os.environ['PATH']}", "SECRET_KEY": "s3cr3t value", **config}
    result = subprocess.run(["bash", "-c", script], cwd=app, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == expected_rc, result.stdout + result.stderr
    assert expected in result.stdout
    if expected_rc == 0:
        assert "post_compile sees s3cr3t value" in result.stdout
    if python_exit == 0:
        assert f"collectstatic ran in {app} with {app}" in result.stdout


def test_env_script_exports_each_file_byte_for_byte(tmp_path):
    from ansible_collections.qoddi.paas.plugins.module_utils._buildpack import ENV_SCRIPT

    (tmp_path / "SECRET").write_text("two\nlines\n\n")
    (tmp_path / "SPACES").write_text("  padded  ")
    script = ENV_SCRIPT.replace("/run/secrets/qoddi-env", str(tmp_path))
    out = subprocess.run(["bash", "-c", script + 'printf "[%s][%s]" "$SECRET" "$SPACES"; env | grep -c ^SPACES='],
                         capture_output=True, text=True, check=True).stdout
    assert out == "[two\nlines\n\n][  padded  ]1\n"
    # No variables (no secrets mounted): nothing happens, nothing is printed.
    empty = ENV_SCRIPT.replace("/run/secrets/qoddi-env", str(tmp_path / "none"))
    quiet = subprocess.run(["bash", "-c", empty + "echo ok"], capture_output=True, text=True, check=True)
    assert quiet.stdout == "ok\n"
