"""Check results as text (grouped by resource), JSON, or JUnit XML for the pipeline's test report.

A waived finding is reported as skipped with its waiver's reason in every format (JUnit: <skipped>),
so that a waiver never reads as a check that passed.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

from mlgit.policy.check import CheckResult, Finding
from mlgit.policy.formats import Format

_LABELS = {"deny": "DENY", "warn": "WARN", "skipped": "SKIP"}


def summary_line(result: CheckResult) -> str:
    return (
        f"{result.count('deny')} denied, {result.count('warn')} warning(s), "
        f"{result.count('skipped')} skipped (waived); "
        f"{len(result.policies)} policies over {', '.join(result.input_names) or 'nothing'} "
        f"(compiled in {result.compile_seconds:.2f} s, evaluated in {result.evaluate_seconds:.2f} s)"
    )


def text(result: CheckResult) -> str:
    lines = []
    grouped: dict[str, dict[str, list[Finding]]] = defaultdict(lambda: defaultdict(list))
    for finding in result.findings:
        grouped[finding.input_name][finding.resource_name].append(finding)
    for name in result.input_names:
        if name not in grouped:
            continue
        lines.append(name)
        for resource, findings in sorted(grouped[name].items()):
            lines.append(f"  {resource}")
            for f in sorted(findings, key=lambda f: (f.status, f.policy.id)):
                lines.append(f"    {_LABELS[f.status]:<6} {f.policy.id}  {f.message}")
                if f.skip_reason is not None:
                    lines.append(f"           skipped: {f.skip_reason}")
                elif f.policy.remediation:
                    lines.append(f"           fix: {f.policy.remediation}")
                if f.note:
                    lines.append(f"           note: {f.note}")
    lines += [f"note: {note}" for note in result.notes]
    lines.append(summary_line(result))
    return "\n".join(lines) + "\n"


def _finding_json(f: Finding) -> dict[str, Any]:
    waiver = f.waiver.model_dump(mode="json") if f.waiver is not None else None
    return {
        "environment": f.input_name,
        "policy": f.policy.id,
        "title": f.policy.title,
        "status": f.status,
        "severity": f.severity,
        "resource": f.resource,
        "message": f.message,
        "remediation": f.policy.remediation,
        "reason": f.skip_reason,
        "waiver": waiver,
        "note": f.note,
    }


def as_json(result: CheckResult, strict: bool) -> str:
    document = {
        "ok": not result.failed(strict),
        "summary": {
            "deny": result.count("deny"),
            "warn": result.count("warn"),
            "skipped": result.count("skipped"),
            "environments": result.input_names,
            "policies": [{"id": p.id, "title": p.title, "severity": p.severity} for p in result.policies],
            "compile_seconds": round(result.compile_seconds, 4),
            "evaluate_seconds": round(result.evaluate_seconds, 4),
        },
        "findings": [_finding_json(f) for f in result.findings],
        "notes": result.notes,
    }
    return json.dumps(document, indent=2) + "\n"


def junit(result: CheckResult, strict: bool) -> str:
    """One testcase per policy and input document: a failure lists every failing message; a testcase whose
    findings were all waived is skipped, its message the waivers' reasons."""
    failing = {"deny", "warn"} if strict else {"deny"}
    by_case: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for finding in result.findings:
        by_case[(finding.input_name, finding.policy.id)].append(finding)
    suites = ET.Element("testsuites", name="mlgit policy check")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for name in result.input_names:
        suite = ET.SubElement(suites, "testsuite", name=f"policy {name}")
        counts = {"tests": len(result.policies), "failures": 0, "skipped": 0}
        for policy in result.policies:
            case = ET.SubElement(
                suite, "testcase", classname=f"mlgit.policy.{name}", name=f"{policy.id} {policy.title}"
            )
            findings = by_case.get((name, policy.id), [])
            failed = [f for f in findings if f.status in failing]
            skipped = [f for f in findings if f.status == "skipped"]
            if failed:
                counts["failures"] += 1
                failure = ET.SubElement(
                    case, "failure", message=f"{len(failed)} violation(s) of {policy.id}", type=failed[0].status
                )
                lines = [f.message for f in failed]
                failure.text = "\n".join([*lines, f"fix: {policy.remediation}"] if policy.remediation else lines)
            elif skipped:
                counts["skipped"] += 1
                reasons = "; ".join(dict.fromkeys(str(f.skip_reason) for f in skipped))
                element = ET.SubElement(case, "skipped", message=f"{len(skipped)} finding(s) {reasons}")
                element.text = "\n".join(f"{f.message} ({f.skip_reason})" for f in skipped)
            # The rest goes to system-out: warnings, and skipped findings when a failure took the testcase.
            others = [f for f in findings if f.status not in failing and (failed or f.status != "skipped")]
            if others:
                ET.SubElement(case, "system-out").text = "\n".join(
                    f"{f.status}: {f.message}" + (f" ({f.skip_reason})" if f.skip_reason else "") for f in others
                )
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        suites.set(key, str(value))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def render(result: CheckResult, fmt: Format, strict: bool) -> str:
    if fmt == "json":
        return as_json(result, strict)
    if fmt == "junit":
        return junit(result, strict)
    return text(result)
