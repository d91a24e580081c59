"""``@sf.pipeline(schedule=...)``: EventBridge Scheduler's cron and rate syntax, checked when the pipeline is
declared (an error names the decorator's file:line and the accepted forms), and recorded in the Plan without
changing its digest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import sparkflow as sf
from sparkflow.compiler import plan_pipeline
from sparkflow.errors import CompileError, DefinitionError
from sparkflow.loading import load_pipelines
from sparkflow.plan import Plan, StartSchedule
from sparkflow.schedules import Cron, Rate, parse_schedule

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
NIGHTLY = Path(__file__).resolve().parents[1] / "ship" / "resources" / "nightly" / "pipeline.py"


def test_a_malformed_schedule_names_the_pipeline_line_and_the_accepted_forms() -> None:
    path = RESOURCES / "bad_schedule.py"
    line = path.read_text().splitlines().index('@sf.pipeline(schedule="cron(0 3 * * *)")') + 1
    expected = (
        re.escape(f"{path}:{line}: schedule='cron(0 3 * * *)' is not a schedule: cron(0 3 * * *) has 5 fields; ")
        + r"EventBridge cron has 6: minutes hours day-of-month month day-of-week year; use 'cron\(minutes hours "
        + r"day-of-month month day-of-week year\)' with six fields .* or 'rate\(N minutes\|hours\|days\)'"
    )
    with pytest.raises(DefinitionError, match=expected):
        load_pipelines(str(path))


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("daily", r"it is neither cron\(...\) nor rate\(...\)"),
        ("at(2026-12-01T03:00:00)", r"a one-time at\(...\) schedule is not a recurring schedule"),
        ("cron(0 3 * * * *)", r"must have '\?' in exactly one of day-of-month \(\*\) and day-of-week \(\*\)"),
        ("cron(0 3 ? * ? *)", r"must have '\?' in exactly one of day-of-month"),
        ("cron(60 3 * * ? *)", r"minutes value 60 is outside 0-59"),
        ("cron(0 24 * * ? *)", r"hours value 24 is outside 0-23"),
        ("cron(0 3 ? * MOX *)", r"day-of-week value 'MOX' is not a number 1-7 or SUN-SAT"),
        ("cron(0 3 ? * 8 *)", r"day-of-week value 8 is outside 1-7"),
        ("cron(0 3 * FEBR ? *)", r"month value 'FEBR' is not a number 1-12 or JAN-DEC"),
        ("cron(0 ? * * ? *)", r"'\?' is allowed only in day-of-month and day-of-week, not in hours"),
        ("cron(*/0 3 * * ? *)", r"minutes field '\*/0': the step must be at least 1"),
        ("cron(0 3 32W * ? *)", r"day-of-month value 32 is outside 1-31"),
        ("rate(1 days)", r"rate\(1 days\) must say rate\(1 day\): singular for 1, plural above"),
        ("rate(5 hour)", r"rate\(5 hour\) must say rate\(5 hours\)"),
        ("rate(0 minutes)", r"rate\(0 minutes\) must be at least 1"),
        ("rate(2 weeks)", r"rate unit 'weeks' is not minute\(s\), hour\(s\) or day\(s\)"),
        ("rate(six hours)", r"rate\(six hours\) must be a whole number and a unit"),
    ],
)
def test_each_malformed_expression_says_what_is_wrong(expression: str, problem: str) -> None:
    def pipeline() -> None:
        pass

    where = f"{__file__}:{pipeline.__code__.co_firstlineno}: schedule={expression!r} is not a schedule: "
    with pytest.raises(DefinitionError, match=re.escape(where) + ".*" + problem):
        sf.pipeline(schedule=expression)(pipeline)


@pytest.mark.parametrize(
    ("expression", "parsed"),
    [
        ("cron(0 3 * * ? *)", Cron(("0", "3", "*", "*", "?", "*"))),
        ("cron(15,45 */2 ? jan-jun mon-fri 2026-2030)", Cron(("15,45", "*/2", "?", "JAN-JUN", "MON-FRI", "2026-2030"))),
        ("cron(0 12 L * ? *)", Cron(("0", "12", "L", "*", "?", "*"))),
        ("cron(0 9 ? * 2#1 *)", Cron(("0", "9", "?", "*", "2#1", "*"))),
        ("rate(1 minute)", Rate(1, 1, "minute")),
        ("rate(6 hours)", Rate(360, 6, "hours")),
        ("rate(2 days)", Rate(2880, 2, "days")),
    ],
)
def test_accepted_expressions_parse(expression: str, parsed: Cron | Rate) -> None:
    assert parse_schedule(expression) == parsed


def test_the_schedule_is_in_the_plan_and_its_shipped_json_but_not_in_the_digest() -> None:
    [scheduled] = load_pipelines(str(NIGHTLY))
    plan = plan_pipeline(scheduled, "aws")
    line = next(number for number, text in enumerate(NIGHTLY.read_text().splitlines()) if "schedule=" in text)
    assert plan.start_schedule == StartSchedule("cron(0 3 * * ? *)", scheduled.origin)
    assert scheduled.origin.line == line + 1
    assert Plan.from_json(plan.to_json()).start_schedule == StartSchedule(
        "cron(0 3 * * ? *)", type(scheduled.origin)("tests/ship/resources/nightly/pipeline.py", line + 1)
    )
    unscheduled = plan_pipeline(sf.pipeline(name="nightly", storage=scheduled.storage)(scheduled.fn), "aws")
    assert unscheduled.start_schedule is None and '"start_schedule"' not in unscheduled.to_json()
    # How runs start is not what they execute: a new schedule keeps the deployed functions' Plan valid.
    assert plan.digest == unscheduled.digest


def test_a_scheduled_pipeline_with_a_parameter_without_default_is_refused_naming_the_fix() -> None:
    from tests.compiler.test_compile_errors import at

    path = RESOURCES / "scheduled_required_param.py"
    (pipeline,) = load_pipelines(str(path))
    declared = path.read_text().splitlines().index('n = sf.param("n", type=int)') + 1
    expected = (
        at("scheduled_required_param.py", "@sf.pipeline(schedule=")
        + re.escape(
            f"pipeline 'nightly' has schedule='rate(1 day)' but its parameter 'n' ({path}:{declared}) has no default, "
            "so every scheduled run would fail (a schedule gives no parameter values): give it one, "
            "sf.param('n', default=..., type=int), or drop schedule="
        )
        + "$"
    )
    for target in ("aws", "gcp"):
        with pytest.raises(CompileError, match=expected):
            plan_pipeline(pipeline, target)
