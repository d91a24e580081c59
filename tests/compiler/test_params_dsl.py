"""``sf.param``: what a declaration may say, the mistakes it refuses (naming the line), and what the Plan records."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import sparkflow as sf
from sparkflow.compiler import plan_pipeline
from sparkflow.errors import CompileError, DefinitionError
from sparkflow.loading import load_pipeline
from sparkflow.plan import Plan, PlanInput
from tests.compiler.test_compile_errors import at

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
HERE = re.escape(f"{__file__}:")


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (lambda: sf.param("n", default=[1, 2]), r"parameter 'n': type=list is not supported; a parameter is one of "),
        (
            lambda: sf.param("n", type=dict),
            r"parameter 'n': type=dict is not supported; a parameter is one of int, float, str, bool",
        ),
        (lambda: sf.param("n"), r"parameter 'n' needs type= \(int, float, str, bool\) or a default= to take"),
        (
            lambda: sf.param("n", default="3", type=int),
            r"parameter 'n': default='3' is of type str, but type=int: give a default of type int, or change type=",
        ),
        (lambda: sf.param("n", default=True, type=int), r"parameter 'n': default=True is of type bool, but type=int"),
        (lambda: sf.param("n", default=1, type=bool), r"parameter 'n': default=1 is of type int, but type=bool"),
        (lambda: sf.param("n", default=float("nan")), r"parameter 'n': default=nan must be a finite number"),
        (lambda: sf.param("two words", default=1), r"parameter name 'two words' may contain only letters, digits"),
    ],
)
def test_a_bad_declaration_names_its_line(declare: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=HERE + r"\d+: " + message):
        declare()


def test_types_come_from_the_default_and_an_int_default_of_a_float_is_a_float() -> None:
    assert sf.param("a", default=2).type == "int"
    assert sf.param("b", default=2, type=float).default == 2.0
    assert isinstance(sf.param("b", default=2, type=float).default, float)
    assert sf.param("c", type=str).required
    assert sf.param("d", default=False).type == "bool"


def load(name: str) -> Any:
    return load_pipeline(str(RESOURCES / "bad_params.py"), name)


def test_two_parameters_with_one_name_are_refused() -> None:
    pattern = at("bad_params.py", 'other_n = sf.param("n"') + r"two different parameters are named 'n' \(also at "
    with pytest.raises(CompileError, match=pattern):
        plan_pipeline(load("two_params_one_name"), "aws")


def test_a_parameter_named_like_a_stage_is_refused() -> None:
    pattern = at("bad_params.py", 'sf.param("top"') + r"parameter 'top' has the same name as a source, stage or sink"
    with pytest.raises(CompileError, match=pattern):
        plan_pipeline(load("named_like_a_stage"), "aws")


def test_computing_with_a_parameter_in_the_pipeline_names_the_line() -> None:
    pattern = (
        at("bad_params.py", "n + 1") + r"parameter 'n' has no value while the pipeline is traced .* inside the stage"
    )
    with pytest.raises(DefinitionError, match=pattern):
        plan_pipeline(load("computed_in_the_pipeline"), "aws")


def test_a_literal_argument_is_refused_with_the_way_to_declare_a_parameter() -> None:
    pattern = at("bad_params.py", "top(books, 3)") + (
        r"input 'n' of stage 'top' is neither a source, a stage output nor a parameter \(got int 3\): .* "
        r"sf.param\('n', default=..., type=...\)"
    )
    with pytest.raises(CompileError, match=pattern):
        plan_pipeline(load("a_literal"), "aws")


def test_the_plan_records_each_parameter_and_the_inputs_that_take_it() -> None:
    plan = plan_pipeline(load_pipeline(str(RESOURCES / "params" / "pipeline.py")), "aws")
    assert [(p.name, p.type, p.default, p.required) for p in plan.params] == [
        ("limit", "int", 2, False),
        ("label", "str", None, True),
        ("ratio", "float", 0.5, False),
        ("loud", "bool", False, False),
    ]
    assert plan.param("label").origin.line == 10
    assert plan.task("tagged").inputs == (
        PlanInput("items", "items", "source"),
        *(PlanInput(name, name, "param") for name in ("limit", "label", "ratio", "loud")),
    )
    shipped = Plan.from_json(plan.to_json())
    assert [(p.name, p.default) for p in shipped.params] == [(p.name, p.default) for p in plan.params]
    assert isinstance(shipped.param("ratio").default, float) and shipped.digest == plan.digest


def test_the_digest_covers_the_parameters() -> None:
    import dataclasses

    plan = plan_pipeline(load_pipeline(str(RESOURCES / "params" / "pipeline.py")), "aws")
    changed = dataclasses.replace(plan.params[0], default=3)
    assert dataclasses.replace(plan, params=(changed, *plan.params[1:])).digest != plan.digest


def test_a_split_stage_never_splits_a_parameter() -> None:
    plan = plan_pipeline(load_pipeline(str(RESOURCES.parent.parent / "examples" / "top-words" / "pipeline.py")), "aws")
    counts = plan.task("counts")
    assert counts.fanout is not None and counts.fanout.split == ("words",)
    [words] = counts.fused
    assert [item.kind for item in words.inputs] == ["source", "param"]
    assert counts.upstream == frozenset()  # a parameter is no task to wait for
    assert plan.task("top").upstream == frozenset({"counts"})
