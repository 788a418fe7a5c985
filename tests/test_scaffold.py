"""``ltipro plugins new``: the generated plugin installs, passes the conformance suite as
generated, and the suite fails a plugin that breaks its contracts.

A generated plugin is "installed" for a pytest run in a subprocess: its folder goes on
``PYTHONPATH`` with a ``.dist-info`` folder holding the entry point its pyproject.toml
declares, which is what an install makes importlib.metadata see. The project's
virtualenv is never changed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from ltipro import scaffold
from ltipro.cli import main

KIT_FAILURES = re.compile(r"^FAILED \S+::Test\w+::(test_\w+)", re.M)


def install_for_subprocess(plugin: Path, site: Path) -> dict[str, str]:
    """An environment in which ``plugin`` is installed: its entry point and its package."""
    project = tomllib.loads((plugin / "pyproject.toml").read_text())["project"]
    dist = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    points = project["entry-points"]["ltipro"]
    (dist / "entry_points.txt").write_text(
        "[ltipro]\n" + "".join(f"{k} = {v}\n" for k, v in points.items())
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(plugin)])
    return env


def run_tests(plugin: Path, site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The plugin's own test suite, run from its folder as its author runs it."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", *args],
        cwd=plugin,
        env=install_for_subprocess(plugin, site),
        capture_output=True,
        text=True,
        timeout=300,
    )


def new(tmp_path: Path, name: str, *extra: str) -> Path:
    target = tmp_path / f"ltipro-{name}"
    assert main(["plugins", "new", name, "--dir", str(target), *extra]) == 0
    return target


def test_a_new_plugin_passes_the_conformance_suite_and_its_own_tests_as_generated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = new(tmp_path, "acme_lms", "--title", "Acme LMS", "--family-code", "AcmeLearn")
    assert "Created ltipro-acme_lms" in capsys.readouterr().out
    result = run_tests(plugin, tmp_path / "site", "-rA")
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.fullmatch(r"\d+ passed in .*", summary), summary
    # The conformance suite and the plugin's own tests both ran.
    passed = re.findall(r"^PASSED ([^:\s]+)::", result.stdout, re.M)
    assert passed.count("tests/test_acme_lms_conformance.py") >= 25
    assert passed.count("tests/test_acme_lms_plugin.py") == 3


def test_the_generated_distribution_declares_its_entry_point_package_and_ci(
    tmp_path: Path,
) -> None:
    plugin = new(tmp_path, "acme_lms", "--title", "Acme LMS", "--family-code", "AcmeLearn")
    pyproject = tomllib.loads((plugin / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert project["name"] == "ltipro-acme_lms"
    assert project["entry-points"] == {"ltipro": {"acme_lms": "ltipro_acme_lms"}}
    assert any(d.startswith("ltipro") for d in project["dependencies"])
    assert pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [
        "ltipro_acme_lms"
    ]
    source = (plugin / "ltipro_acme_lms" / "__init__.py").read_text()
    assert 'TITLE = "Acme LMS"' in source and 'FAMILY_CODES = ("AcmeLearn",)' in source
    for hook in ("identify_lms", "launch_context", "course_identifiers", "example_launches"):
        assert f"def {hook}(" in source
    workflow = (plugin / ".github" / "workflows" / "tests.yml").read_text()
    assert "python -m pytest" in workflow and "LTIPRO_TEST_DATABASE_URL" in workflow
    assert "${{ matrix.python-version }}" in workflow
    assert "pip install ltipro-acme_lms" in (plugin / "README.md").read_text()
    assert sorted(p.relative_to(plugin).as_posix() for p in plugin.rglob("*") if p.is_file()) == (
        sorted(path.format(name="acme_lms") for path in scaffold.FILES)
    )


def test_without_dir_the_plugin_goes_into_ltipro_name_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["plugins", "new", "schoolhub"]) == 0
    made = tmp_path / "ltipro-schoolhub"
    assert (made / "ltipro_schoolhub" / "examples.py").is_file()
    source = (made / "ltipro_schoolhub" / "__init__.py").read_text()
    assert 'TITLE = "Schoolhub"' in source and 'FAMILY_CODES = ("schoolhub",)' in source


def test_an_existing_empty_folder_is_used(tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir()
    assert main(["plugins", "new", "acme_lms", "--dir", str(target)]) == 0
    assert (target / "pyproject.toml").is_file()


@pytest.mark.parametrize(
    "name", ["Sakai", "sa-kai", "1lms", "lms name", "", "a" * 41, "lms.x", "ünï"]
)
def test_a_name_that_is_not_a_lowercase_identifier_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    assert main(["plugins", "new", name, "--dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ltipro: error: a plugin name is a lowercase identifier")
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_the_name_of_a_built_in_or_installed_plugin_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    installed = [ep.name for ep in entry_points(group="ltipro")]
    for name in ["generic", *installed]:
        assert main(["plugins", "new", name, "--dir", str(tmp_path / name)]) == 2
        assert f"there is already a plugin named {name!r}" in capsys.readouterr().err
        assert not (tmp_path / name).exists()


def test_an_existing_folder_or_file_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ltipro-acme_lms"
    folder.mkdir()
    (folder / "pyproject.toml").write_text("mine")
    assert main(["plugins", "new", "acme_lms", "--dir", str(folder)]) == 2
    assert "already exists and is not an empty folder" in capsys.readouterr().err
    assert [p.name for p in folder.iterdir()] == ["pyproject.toml"]
    assert (folder / "pyproject.toml").read_text() == "mine"
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    assert main(["plugins", "new", "acme_lms", "--dir", str(a_file)]) == 2
    assert a_file.read_text() == "mine"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--title", 'Acme "LMS"', "--title is 1 to 80"),
        ("--title", "", "--title is 1 to 80"),
        ("--title", "x" * 81, "--title is 1 to 80"),
        ("--family-code", "acme learn", "--family-code is the LMS's product_family_code"),
        ("--family-code", "", "--family-code is the LMS's product_family_code"),
    ],
)
def test_a_title_or_family_code_that_cannot_be_written_safely_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    assert main(["plugins", "new", "acme_lms", option, value, "--dir", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_templates_are_package_data_of_ltipro() -> None:
    package = Path(scaffold.__file__).parent
    root = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    # The wheel ships the whole ltipro package folder, the templates with it.
    assert root["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["ltipro"]
    for template in scaffold.FILES.values():
        assert (package / "template" / template).is_file(), template


def _break(plugin: Path) -> None:
    """Break the generated plugin's contracts, one per conformance test."""
    init = plugin / "ltipro_kit_broken" / "__init__.py"
    source = init.read_text()
    # Claims launches that carry no product family code: the generic plugin's too.
    source = source.replace(
        "        return NAME\n    return None\n",
        "        return NAME\n    return NAME if not code else None\n",
    )
    # Names the parameter as the admin wrote the attribute, spaces and all.
    source = source.replace(
        '            name=key,\n            value=f"<a',
        '            name=attribute,\n            value=f"<a',
    )
    # Trips over a tool_platform claim that is not an object.
    source = source.replace(
        "    return standard_launch_context(message, lms=NAME)",
        '    if message.version == "1.3":\n'
        '        message.claim("tool_platform").get("name")\n'
        "    return standard_launch_context(message, lms=NAME)",
    )
    # A hook name with a typo, marked optional so the plugin still loads.
    source += (
        "\n\n@hookimpl(optionalhook=True)\n"
        "def launch_contxt(message: LaunchMessage) -> LaunchContext:\n"
        "    return launch_context(message)\n"
    )
    init.write_text(source)
    examples = plugin / "ltipro_kit_broken" / "examples.py"
    text = examples.read_text().replace('"email": "jane@', '"emial": "jane@')
    # No student in LTI 1.1.
    text += '\nEXAMPLES = tuple(e for e in EXAMPLES if e.name != "student-11")\n'
    examples.write_text(text)


def test_the_conformance_suite_fails_a_plugin_that_breaks_its_contracts(
    tmp_path: Path,
) -> None:
    plugin = new(tmp_path, "kit_broken")
    _break(plugin)
    result = run_tests(
        plugin,
        tmp_path / "site",
        "tests/test_kit_broken_conformance.py",
        "-k",
        "not through_the_pipeline and not malformed and not disabled",
    )
    failed = set(KIT_FAILURES.findall(result.stdout))
    assert failed == {
        "test_every_hookimpl_names_a_hook_and_sync_hooks_are_plain_functions",
        "test_example_launches_cover_an_instructor_and_a_student_in_every_lti_version",
        "test_every_example_names_its_source_and_expects_fields_the_kit_checks",
        "test_custom_parameter_answers_a_known_and_an_unknown_attribute",
        "test_it_claims_no_example_of_another_plugin_or_of_the_generic_plugin",
        "test_garbage_in_any_field_gets_a_launch_error_or_well_typed_values_never_a_crash",
    }, result.stdout[-6000:]
    assert "launch_contxt" in result.stdout
    assert "no student example launch in LTI 1.1" in result.stdout
    assert "'emial'" in result.stdout
    assert "claims the 'generic' plugin's example" in result.stdout
