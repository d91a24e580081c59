"""The DAG of a Plan as Mermaid flowchart text (``sparkflow graph``)."""

from __future__ import annotations

from sparkflow.plan import Plan


def to_mermaid(plan: Plan) -> str:
    lines = ["flowchart TD"]
    for source in plan.sources:
        lines.append(f"    {source.name}[({source.name}: {source.format})]")
    for task in plan.tasks:
        shape = f"{task.id}{{{{{task.id}}}}}" if task.output == "value" else f"{task.id}[{task.id}]"
        lines.append(f"    {shape}")
    for task in plan.tasks:
        for item in task.inputs:
            lines.append(f"    {item.node} -->|{item.param}| {task.id}")
    return "\n".join(lines) + "\n"
