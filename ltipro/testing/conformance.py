"""The conformance suite: what every LMS plugin must do, run by the plugin against itself.

A plugin's tests subclass :class:`ConformanceSuite` and name the plugin::

    from ltipro.testing.conformance import ConformanceSuite


    class TestMoodleConformance(ConformanceSuite):
        plugin = "moodle"

That class collects every test below. The plugin must be installed (its entry point in
the ``ltipro`` group), and pytest-asyncio must be available; the databases come from the
fixtures of ltipro's pytest plugin (``ltipro.testing.pytest_plugin``), which installing
ltipro registers. Tests that launch run on SQLite, and on PostgreSQL too when
``LTIPRO_TEST_DATABASE_URL`` names a server the tests may create a database on.

What is checked:

- **Every example launch through the whole pipeline** (LTI 1.3 login, signed
  ``id_token`` and launch; LTI 1.1 signed form), with the plugin loaded alone and with
  every other installed plugin loaded too: the launch opens, ``/api/v1/me`` names the
  plugin's LMS, and every key of the example's ``expected`` equals the ``/api/v1/me``
  field :data:`EXPECTED_FIELDS` maps it to.
- **Identification**: the plugin's examples are identified as its LMS, no other installed
  plugin claims them, and the plugin claims no example of another plugin (the built-in
  ``generic`` one included).
- **Every hook's contract**: ``lms_details`` names the plugin as its entry point does;
  ``launch_context`` returns a :class:`~ltipro.context.LaunchContext` of the plugin's
  LMS; ``course_identifiers`` returns :class:`~ltipro.context.CourseIdentifiers` or
  ``None``; ``custom_parameter`` returns a :class:`~ltipro.extension.CustomParameter`
  (that arrives in the launch's attributes) or ``None``; the examples cover an
  instructor and a student in every LTI version the LMS sends, each with its ``source``;
  no ``hookimpl`` names a hook that does not exist.
- **Malformed claims**: roles that are not a list, a context or custom claim that is not
  an object, and garbage in any of the fields the plugin's examples carry give a launch
  or a clear 4xx launch error, never a server error, and never a plugin crash
  (``unreadable_claims``).
- **Disabled**: a credential without the plugin enabled refuses its launches with
  ``plugin_disabled``.

Class attributes tune the suite to an LMS: :attr:`ConformanceSuite.lti_versions`,
:attr:`ConformanceSuite.required_expectations` and
:attr:`ConformanceSuite.known_attribute`.
"""

from __future__ import annotations

import copy
import html
import inspect
import json
import re
import shutil
from collections.abc import AsyncIterator, Iterable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import pytest_asyncio

from ltipro.context import CLAIM, LTI13, CourseIdentifiers, LaunchContext, LaunchMessage
from ltipro.extension import CustomParameter, ExampleLaunch, LmsDetails
from ltipro.hookspecs import PROJECT, hook_names
from ltipro.lti.errors import LaunchError
from ltipro.plugins import ENTRY_POINT_GROUP, GENERIC, Plugins
from ltipro.simulator.platform import SimulatedPlatform
from ltipro.testing.harness import ToolHarness, simulated_platform
from ltipro.testing.helpers import (
    EXPECTED_FIELDS,
    SIGNED_BY_PLATFORM,
    expected_mismatches,
    launch,
    me_field,
    platform_message,
)
from ltipro.testing.pytest_plugin import database_backends, empty_postgres_database

#: Hooks the core reads from synchronous code: a plain function, never ``async def``.
SYNC_HOOKS = ("lms_details", "example_launches", "plugin_routes", "plugin_migrations")

#: LTI 1.1 fields the tool checks before any plugin sees the launch.
LTI11_PROTOCOL_FIELDS = ("lti_message_type", "lti_version")

LOADED = ("alone", "all")

_CUSTOM_NAME = re.compile(r"[a-z0-9_]+")
_ERROR_CODE = re.compile(r'data-error-code="([^"]+)"')


# -- helpers a plugin's own tests may use too ---------------------------------------------


def installed_plugins() -> list[str]:
    """The names of every plugin installed in the ``ltipro`` entry-point group."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


_platform: SimulatedPlatform | None = None


def message_platform() -> SimulatedPlatform:
    """A platform registered as the harness registers its own (one RSA key per process)."""
    global _platform
    if _platform is None:
        _platform = simulated_platform()
    return _platform


def example_message(
    example: ExampleLaunch, claims: Mapping[str, Any] | None = None
) -> LaunchMessage:
    """The message the tool validates for an example launch, as the platform signs it.

    ``claims`` replaces the example's claims (a variant of them). The registration is
    configured as ``generic``, as the harness registers its platform, so a plugin must
    recognise its LMS from the launch itself.
    """
    body = dict(example.claims if claims is None else claims)
    return platform_message(message_platform(), example.version, body, nonce="conformance")


def error_code(page: httpx.Response) -> str | None:
    """The reason code of a refused launch's page, if the page is one."""
    match = _ERROR_CODE.search(page.text)
    return match.group(1) if match else None


def _wrong_types(value: Any) -> list[Any]:
    """Values of other JSON types than ``value``, as a broken LMS might send instead."""
    if isinstance(value, Mapping):
        return [["garbage"], "garbage"]
    if isinstance(value, list):
        return [{"garbage": 1}, "garbage"]
    if isinstance(value, str):
        return [{"garbage": 1}, ["garbage"]]
    return ["garbage", ["garbage"]]


GARBAGE_VALUES: tuple[Any, ...] = ({"garbage": [1]}, ["garbage"], 12345)
GARBAGE_TEXT: tuple[str, ...] = ("", "$Unresolved.variable", " ,;, \u00fc\u20ac\U0001d11e <b>&amp;")


def garbage_variants(
    example: ExampleLaunch, thorough: bool = True
) -> Iterable[tuple[str, dict[str, Any]]]:
    """The example with one field at a time replaced by garbage, each with what changed.

    LTI 1.3: every claim the platform does not sign becomes another JSON type, and every
    value inside an object claim (``custom``, ``context``, the LMS's own claims) becomes
    an object, a list or a number. LTI 1.1: every field but the protocol's becomes empty
    text, an unresolved variable, or punctuation and non-ASCII text. Not ``thorough``:
    one variant per top-level field (the kinds of garbage taking turns), few enough to
    send each through the whole pipeline.
    """
    claims = dict(example.claims)
    if example.version == LTI13:
        for key, value in claims.items():
            if key in SIGNED_BY_PLATFORM:
                continue
            wrong_types = _wrong_types(value)
            for wrong in wrong_types if thorough else wrong_types[:1]:
                yield f"{key} = {wrong!r}", {**claims, key: wrong}
            if isinstance(value, Mapping) and thorough:
                for inner in value:
                    for garbage in GARBAGE_VALUES:
                        changed = {**value, inner: garbage}
                        yield f"{key}.{inner} = {garbage!r}", {**claims, key: changed}
        return
    fields = [k for k in claims if k not in LTI11_PROTOCOL_FIELDS and not k.startswith("oauth_")]
    for index, key in enumerate(fields):
        texts = GARBAGE_TEXT if thorough else (GARBAGE_TEXT[index % len(GARBAGE_TEXT)],)
        for text in texts:
            yield f"{key} = {text!r}", {**claims, key: text}


def _optional_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def context_problems(context: LaunchContext) -> list[str]:
    """What in a launch context is not of its declared type (the session stores it as is)."""
    problems = []
    for name in ("lms", "lti_version", "credential", "domain", "message_type"):
        if not isinstance(getattr(context, name), str):
            problems.append(f"{name} is {getattr(context, name)!r}, not text")
    for name in (
        "user_id",
        "name",
        "given_name",
        "family_name",
        "email",
        "username",
        "timezone",
        "locale",
        "resource_link_id",
        "return_url",
    ):
        if not _optional_text(getattr(context, name)):
            problems.append(f"{name} is {getattr(context, name)!r}, not text or None")
    for name in ("roles", "raw_roles"):
        value = getattr(context, name)
        if not isinstance(value, tuple) or not all(isinstance(r, str) for r in value):
            problems.append(f"{name} is {value!r}, not a tuple of text")
    if not isinstance(context.attributes, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in context.attributes.items()
    ):
        problems.append("attributes are not all text names with text values")
    if context.course is not None:
        problems += course_problems(context.course)
    return problems


def course_problems(course: Any) -> list[str]:
    """What in a course's identifiers is not of its declared type."""
    if not isinstance(course, CourseIdentifiers):
        return [f"the course is a {type(course).__name__}, not CourseIdentifiers"]
    problems = []
    if not isinstance(course.context_id, str) or not course.context_id:
        problems.append(f"course.context_id is {course.context_id!r}, not non-empty text")
    for name in ("lms_course_id", "title", "label"):
        if not _optional_text(getattr(course, name)):
            problems.append(f"course.{name} is {getattr(course, name)!r}, not text or None")
    if not isinstance(course.history, tuple) or not all(
        isinstance(h, str) and h for h in course.history
    ):
        problems.append(f"course.history is {course.history!r}, not a tuple of text")
    return problems


def _hookimpls(plugin: Any) -> dict[str, tuple[str, Any]]:
    """The plugin's hook implementations: hook name to (attribute name, function)."""
    out = {}
    for attribute in dir(plugin):
        function = getattr(plugin, attribute, None)
        options = getattr(function, f"{PROJECT}_impl", None)
        if isinstance(options, dict):
            out[options.get("specname") or attribute] = (attribute, function)
    return out


# -- the suite ------------------------------------------------------------------------------


class ConformanceSuite:
    """The conformance tests for one LMS plugin; subclass it and set :attr:`plugin`."""

    #: The plugin under test: its entry-point name, which is also its LMS's name.
    plugin: ClassVar[str] = ""
    #: The LTI versions the LMS sends; the examples cover an instructor and a student in
    #: each. An LMS that never sends LTI 1.1 sets ``("1.3",)``.
    lti_versions: ClassVar[tuple[str, ...]] = ("1.3", "1.1")
    #: The ``expected`` keys every example must have (any key of EXPECTED_FIELDS may be
    #: added). ``None`` is a valid expected value, as for a launch outside a course.
    required_expectations: ClassVar[frozenset[str]] = frozenset(
        {"user_id", "email", "role", "roles", "context_id", "lms_course_id", "domain"}
    )
    #: An attribute the LMS can send as a custom parameter: ``custom_parameter`` must
    #: answer it with a parameter whose value arrives in the launch's attributes.
    known_attribute: ClassVar[str] = "email"
    #: An attribute no LMS knows: ``custom_parameter`` may answer with a placeholder or None.
    unknown_attribute: ClassVar[str] = "ltipro conformance: no LMS has this"

    # -- parametrization -----------------------------------------------------------------

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Run launch tests per database backend and plugin set, and per example."""
        if "conformance_backend" in metafunc.fixturenames:
            metafunc.parametrize("conformance_backend", database_backends(), scope="function")
        if "conformance_loaded" in metafunc.fixturenames:
            # Garbage meets every installed plugin's identify_lms only with all loaded.
            loaded = ("all",) if "garbage" in metafunc.function.__name__ else LOADED
            metafunc.parametrize("conformance_loaded", loaded, scope="function")
        if "example" in metafunc.fixturenames:
            examples = self.examples()
            metafunc.parametrize("example", examples, ids=[e.name for e in examples])

    # -- what the plugin offers ----------------------------------------------------------

    @classmethod
    def plugin_object(cls) -> Any:
        """The object the plugin's entry point names (normally its module)."""
        if not cls.plugin:
            raise AssertionError(f"{cls.__name__} must set `plugin` to the plugin's name")
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == cls.plugin:
                return ep.load()
        raise AssertionError(
            f"no plugin named {cls.plugin!r} is installed (no entry point {cls.plugin!r} in "
            f"the {ENTRY_POINT_GROUP!r} group): install the plugin, e.g. `pip install -e .`"
        )

    @classmethod
    def load(cls, alone: bool = True) -> Plugins:
        """The plugin loaded by itself (with the built-in ones) or with every installed one."""
        return Plugins.load([cls.plugin] if alone else installed_plugins())

    @classmethod
    def examples(cls) -> list[ExampleLaunch]:
        """The plugin's example launches (from its ``example_launches`` hook)."""
        answers = dict(cls.load().broadcast_sync("example_launches"))
        return list(answers.get(cls.plugin) or [])

    def first_example(self, version: str, role: str = "instructor") -> ExampleLaunch:
        for example in self.examples():
            if example.version == version and example.role == role:
                return example
        pytest.skip(f"the plugin has no {role} example launch in LTI {version}")

    # -- fixtures ------------------------------------------------------------------------

    @pytest.fixture
    def conformance_database_url(
        self,
        conformance_backend: str,
        ltipro_conformance_template: Path,
        ltipro_conformance_postgres: str | None,
        tmp_path: Path,
    ) -> str:
        """A migrated, empty database on the backend under test."""
        if conformance_backend == "sqlite":
            target = tmp_path / "conformance.db"
            shutil.copyfile(ltipro_conformance_template, target)
            return f"sqlite:///{target}"
        assert ltipro_conformance_postgres is not None
        empty_postgres_database(ltipro_conformance_postgres)
        return ltipro_conformance_postgres

    @pytest_asyncio.fixture
    async def conformance_harness(
        self, conformance_database_url: str, conformance_loaded: str, tmp_path: Path
    ) -> AsyncIterator[ToolHarness]:
        """The tool with the plugin loaded alone, or with every installed plugin, all enabled."""
        names = [self.plugin] if conformance_loaded == "alone" else installed_plugins()
        async with ToolHarness(
            database_url=conformance_database_url,
            instance=tmp_path / "instance",
            plugins=names,
        ) as harness:
            yield harness

    # -- the plugin and its hooks --------------------------------------------------------

    def test_the_plugin_is_installed_and_loads_alone_and_with_every_other_plugin(self) -> None:
        self.plugin_object()
        alone = self.load()
        assert self.plugin in alone.details, f"{self.plugin!r} loads but is not an LMS plugin"
        everything = self.load(alone=False)
        assert self.plugin in everything.details
        assert set(everything.lms_names) >= {self.plugin, GENERIC}

    def test_lms_details_names_the_plugin_as_its_entry_point_does(self) -> None:
        impls = _hookimpls(self.plugin_object())
        assert "lms_details" in impls, "an LMS plugin implements lms_details"
        detail = impls["lms_details"][1]()
        assert isinstance(detail, LmsDetails), f"lms_details returned {type(detail).__name__}"
        assert detail.name == self.plugin, (
            f"lms_details names {detail.name!r}, the entry point {self.plugin!r}"
        )
        assert isinstance(detail.title, str) and detail.title.strip(), "give the LMS a title"
        assert isinstance(detail.product_family_codes, tuple)
        assert all(isinstance(c, str) and c.strip() for c in detail.product_family_codes)
        assert detail.missing_email_help.strip()
        assert self.load().details[self.plugin] == detail

    def test_every_hookimpl_names_a_hook_and_sync_hooks_are_plain_functions(self) -> None:
        known = hook_names()
        impls = _hookimpls(self.plugin_object())
        unknown = sorted(set(impls) - set(known))
        assert not unknown, f"hookimpls that are no ltipro hook: {unknown} (hooks: {known})"
        for hook in SYNC_HOOKS:
            if hook in impls:
                function = impls[hook][1]
                assert not inspect.iscoroutinefunction(function), (
                    f"{hook} is read from synchronous code: make it a plain function"
                )

    def test_example_launches_cover_an_instructor_and_a_student_in_every_lti_version(
        self,
    ) -> None:
        examples = self.examples()
        covered = {(e.version, e.role) for e in examples}
        for version in self.lti_versions:
            for role in ("instructor", "student"):
                assert (version, role) in covered, f"no {role} example launch in LTI {version}"
        extra = {e.version for e in examples} - set(self.lti_versions)
        assert not extra, f"examples in LTI {extra}, which lti_versions says the LMS never sends"
        names = [e.name for e in examples]
        assert len(names) == len(set(names)), f"example names repeat: {names}"

    def test_every_example_names_its_source_and_expects_fields_the_kit_checks(self) -> None:
        for example in self.examples():
            where = f"example {example.name!r}"
            assert isinstance(example, ExampleLaunch), f"{where} is not an ExampleLaunch"
            assert example.lms == self.plugin, f"{where} says it is from {example.lms!r}"
            assert example.source.strip(), f"{where} does not name its source"
            unknown = set(example.expected) - set(EXPECTED_FIELDS)
            assert not unknown, f"{where} expects {unknown}: known keys are {list(EXPECTED_FIELDS)}"
            missing = self.required_expectations - set(example.expected)
            assert not missing, f"{where} lacks the expected fields {sorted(missing)}"
            assert example.expected.get("lti_version", example.version) == example.version
            json.dumps(dict(example.claims))  # the simulator signs them as JSON
            if example.version == LTI13:
                signed = set(SIGNED_BY_PLATFORM) & set(example.claims)
                assert not signed, f"{where} carries {signed}: the platform adds them"
            else:
                assert not [k for k in example.claims if k.startswith("oauth_")], where
                assert all(isinstance(v, str) for v in example.claims.values()), (
                    f"{where}: LTI 1.1 fields are form text, every value a string"
                )

    @pytest.mark.asyncio
    async def test_launch_context_reads_every_example_into_a_context_of_its_lms(
        self, example: ExampleLaunch
    ) -> None:
        message = example_message(example)
        context = await self.load().call_lms(self.plugin, "launch_context", message=message)
        assert isinstance(context, LaunchContext), (
            f"launch_context returned {type(context).__name__}, not a LaunchContext"
        )
        assert context.lms == self.plugin, f"launch_context set lms={context.lms!r}"
        assert context.lti_version == example.version
        assert context.credential == message.credential

    @pytest.mark.asyncio
    async def test_course_identifiers_name_the_course_or_return_none(
        self, example: ExampleLaunch
    ) -> None:
        plugins = self.load()
        without_context = {
            k: v
            for k, v in example.claims.items()
            if k != CLAIM + "context" and not k.startswith("context_")
        }
        for claims in (example.claims, without_context):
            message = example_message(example, claims)
            course = await plugins.call_lms(self.plugin, "course_identifiers", message=message)
            if course is None:
                continue
            assert isinstance(course, CourseIdentifiers), (
                f"course_identifiers returned {type(course).__name__}"
            )
            assert isinstance(course.context_id, str) and course.context_id
            assert course.lms_course_id is None or (
                isinstance(course.lms_course_id, str) and course.lms_course_id
            )
            assert isinstance(course.history, tuple)
            assert all(isinstance(h, str) and h for h in course.history)
            assert course.context_id not in course.history, "a course is not its own copy"

    @pytest.mark.asyncio
    async def test_custom_parameter_answers_a_known_and_an_unknown_attribute(self) -> None:
        plugins = self.load()
        for attribute in (self.known_attribute, self.unknown_attribute):
            answer = await plugins.call_lms(self.plugin, "custom_parameter", attribute=attribute)
            if answer is None and attribute == self.unknown_attribute:
                continue
            assert isinstance(answer, CustomParameter), (
                f"custom_parameter({attribute!r}) returned {type(answer).__name__}"
            )
            # LTI 1.1 LMSs lower-case custom parameter names and turn anything but letters
            # and digits into "_", so any other name arrives under another name.
            assert _CUSTOM_NAME.fullmatch(answer.name), (
                f"custom_parameter({attribute!r}) names {answer.name!r}: use a-z, 0-9 and _"
            )
            assert answer.value.strip(), f"custom_parameter({attribute!r}) has no value"
            assert isinstance(answer.help, str)

    @pytest.mark.asyncio
    async def test_the_known_attributes_custom_parameter_arrives_in_the_launch_attributes(
        self,
    ) -> None:
        plugins = self.load()
        parameter = await plugins.call_lms(
            self.plugin, "custom_parameter", attribute=self.known_attribute
        )
        assert isinstance(parameter, CustomParameter)
        for version in self.lti_versions:
            example = self.first_example(version)
            claims = copy.deepcopy(dict(example.claims))
            if version == LTI13:
                custom = claims.get(CLAIM + "custom")
                claims[CLAIM + "custom"] = {
                    **(custom if isinstance(custom, Mapping) else {}),
                    parameter.name: "conformance-value",
                }
            else:
                claims[f"custom_{parameter.name}"] = "conformance-value"
            message = example_message(example, claims)
            context = await plugins.call_lms(self.plugin, "launch_context", message=message)
            assert context.attributes.get(f"custom_{parameter.name}") == "conformance-value", (
                f"LTI {version}: the custom parameter {parameter.line!r} is not in the "
                "launch context's attributes as custom_" + parameter.name
            )

    # -- identification --------------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_its_examples_are_its_lms_and_no_other_plugin_claims_them(
        self, example: ExampleLaunch
    ) -> None:
        message = example_message(example)
        assert await self.load().identify(message) == self.plugin, (
            f"{example.name!r} is not identified as {self.plugin!r} with the plugin alone"
        )
        everything = self.load(alone=False)
        assert await everything.identify(message) == self.plugin
        for other, _ in everything.pm.list_name_plugin():
            if other == self.plugin:
                continue
            answer = await everything.call_lms(other, "identify_lms", message=message)
            assert answer in (None, self.plugin), (
                f"the {other!r} plugin claims {self.plugin}'s {example.name!r} as {answer!r}"
            )

    @pytest.mark.asyncio
    async def test_it_claims_no_example_of_another_plugin_or_of_the_generic_plugin(
        self,
    ) -> None:
        everything = self.load(alone=False)
        checked = 0
        for other, examples in everything.broadcast_sync("example_launches"):
            if other == self.plugin:
                continue
            for example in examples:
                message = example_message(example)
                answer = await everything.call_lms(self.plugin, "identify_lms", message=message)
                assert answer != self.plugin, (
                    f"{self.plugin!r} claims the {other!r} plugin's example {example.name!r}"
                )
                checked += 1
        assert checked, "the generic plugin's examples at least are checked"

    # -- through the pipeline ------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_every_example_launches_through_the_pipeline_with_its_expected_fields(
        self, conformance_harness: ToolHarness
    ) -> None:
        harness = conformance_harness
        failures = []
        # One tool for every example: a harness costs more than the launches themselves.
        for example in self.examples():
            page = await launch(harness, example.version, example.claims)
            if page.status_code != 200:
                failures.append(
                    f"{example.name}: refused ({page.status_code} {error_code(page)}) "
                    + _hint(page)
                )
                continue
            me = await harness.me(page)
            found = expected_mismatches(example.expected, me)
            if me["lms"] != self.plugin:
                found.insert(0, f"served by the {me['lms']!r} plugin")
            if me["lms_title"] != harness.plugins.title(self.plugin):
                found.append(f"lms_title is {me['lms_title']!r}")
            if me["lti_version"] != example.version:
                found.append(f"lti_version is {me['lti_version']!r}")
            failures += [f"{example.name}: {line}" for line in found]
        assert not failures, "example launches:\n" + "\n".join(failures)

    @pytest.mark.asyncio
    async def test_malformed_standard_claims_give_a_4xx_launch_error(
        self, conformance_harness: ToolHarness
    ) -> None:
        if LTI13 not in self.lti_versions:
            pytest.skip("the LMS sends no LTI 1.3 launches")
        example = self.first_example(LTI13)
        broken: dict[str, list[Any]] = {
            CLAIM + "roles": [{"Instructor": True}, "Instructor", [1, 2]],
            CLAIM + "context": ["course-1", ["course-1"], 42],
            CLAIM + "custom": [["a", "b"], "garbage", 42],
        }
        for claim, values in broken.items():
            for value in values:
                page = await launch(conformance_harness, LTI13, {**example.claims, claim: value})
                code = error_code(page)
                assert 400 <= page.status_code < 500 and code, (
                    f"{claim} = {value!r}: {page.status_code}, not a 4xx launch error"
                )
                assert code != "unreadable_claims", (
                    f"{claim} = {value!r}: the plugin crashed: {_hint(page)}"
                )

    @pytest.mark.asyncio
    async def test_garbage_in_any_field_gets_a_launch_error_or_well_typed_values_never_a_crash(
        self,
    ) -> None:
        everything = self.load(alone=False)
        failures: list[str] = []
        for version in self.lti_versions:
            example = self.first_example(version)
            for what, claims in garbage_variants(example):
                where = f"LTI {version} {what}"
                message = example_message(example, claims)
                try:
                    for name, _ in everything.pm.list_name_plugin():
                        await everything.call_lms(name, "identify_lms", message=message)
                    context = await everything.call_lms(
                        self.plugin, "launch_context", message=message
                    )
                    course = await everything.call_lms(
                        self.plugin, "course_identifiers", message=message
                    )
                except LaunchError:
                    continue
                except Exception as exc:
                    failures.append(f"{where}: {type(exc).__name__}: {exc}")
                    continue
                if not isinstance(context, LaunchContext):
                    failures.append(f"{where}: launch_context returned {context!r}")
                    continue
                problems = context_problems(context)
                if course is not None:
                    problems += course_problems(course)
                failures += [f"{where}: {problem}" for problem in problems]
        assert not failures, "the plugin mishandles garbage:\n" + "\n".join(failures)

    @pytest.mark.asyncio
    async def test_garbage_through_the_pipeline_gives_a_launch_or_a_4xx_never_a_500(
        self, conformance_harness: ToolHarness
    ) -> None:
        failures = []
        for version in self.lti_versions:
            example = self.first_example(version)
            for what, claims in garbage_variants(example, thorough=False):
                page = await launch(conformance_harness, version, claims)
                code = error_code(page)
                if page.status_code == 200 and 'name="ltipro-session"' in page.text:
                    continue
                if 400 <= page.status_code < 500 and code and code != "unreadable_claims":
                    continue
                failures.append(
                    f"LTI {version} {what}: {page.status_code} {code or ''} {_hint(page)}"
                )
        assert not failures, "garbage the tool did not refuse cleanly:\n" + "\n".join(failures)

    @pytest.mark.asyncio
    async def test_a_credential_with_the_plugin_disabled_refuses_its_launches(
        self, conformance_harness: ToolHarness
    ) -> None:
        harness = conformance_harness
        others = [n for n in harness.plugins.lms_names if n != self.plugin]
        await harness.tool.repo.set_enabled_plugins(harness.credential, others)
        title = html.escape(harness.plugins.title(self.plugin))
        examples = self.examples()
        for example in examples:
            page = await launch(harness, example.version, example.claims)
            assert page.status_code == 403, f"{example.name!r}: {page.status_code}"
            assert error_code(page) == "plugin_disabled", example.name
            assert f"Launches from {title} are turned off" in page.text
        logged = await harness.tool.repo.recent_launches(limit=len(examples))
        assert [(row.code, row.lms) for row in logged] == [("plugin_disabled", self.plugin)] * len(
            examples
        )


def _hint(page: httpx.Response) -> str:
    """The administrator's detail of a refused launch's page (a plugin's exception)."""
    match = re.search(r"<summary>[^<]*</summary>\s*<p>(.*?)</p>", page.text, re.S)
    return html.unescape(match.group(1)).strip() if match else page.text[:200]


__all__ = [
    "EXPECTED_FIELDS",
    "ConformanceSuite",
    "example_message",
    "expected_mismatches",
    "installed_plugins",
    "me_field",
]
