"""The strict base model and the constrained scalar types shared by the mlgit.yaml sections."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_NAME_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")
# Kubernetes resource.Quantity, e.g. 500m, 2, 1.5, 512Mi, 1G.
QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
# GitLab's environment:auto_stop_in: "never" or durations such as "1 week", "2 hrs 20 min".
DURATION_RE = re.compile(
    r"^(never|(\d+\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w|months?|years?|y)\s*)+)$"
)


# A service URL: scheme and host, an optional path, nothing a shell or YAML could trip on.
_URL_RE = re.compile(r"^(https?)://[^\s/?#]+(/[^\s?#]*)?$")


def _http_url(value: str) -> str:
    if not _URL_RE.match(value):
        raise ValueError(f"{value!r} is not an http(s):// URL (no spaces, query or fragment)")
    return value


def _https_url(value: str) -> str:
    found = _URL_RE.match(value)
    if not found or found[1] != "https":
        raise ValueError(f"{value!r} is not an https:// URL (no spaces, query or fragment)")
    return value


def _dns_label(value: str) -> str:
    if not DNS_LABEL_RE.match(value):
        raise ValueError(
            f"{value!r} is not a DNS label: use at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def _model_name(value: str) -> str:
    _dns_label(value)
    if not value[0].isalpha():
        raise ValueError(f"{value!r} must start with a letter (it names a Kubernetes Service)")
    return value


def _dns_name(value: str) -> str:
    if not DNS_NAME_RE.match(value):
        raise ValueError(f"{value!r} is not a DNS name: use dot-separated lowercase labels of letters, digits and '-'")
    return value


_SUFFIX = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}  # fmt: skip
# Annotation keys: an optional DNS-subdomain prefix and '/', then a name of up to 63 characters.
ANNOTATION_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def quantity_value(value: str) -> float:
    """The number a Kubernetes quantity stands for (500m -> 0.5, 1Gi -> 1073741824)."""
    match = QUANTITY_RE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    return float(value[: len(value) - len(match.group(2) or "")]) * _SUFFIX[match.group(2) or ""]


def _annotation_keys(value: dict[str, str]) -> dict[str, str]:
    bad = [key for key in value if not ANNOTATION_KEY_RE.match(key) or len(key) > 316]
    if bad:
        raise ValueError(
            f"{', '.join(map(repr, bad))}: not valid annotation keys (prefix.example.com/name-of-63-chars)"
        )
    return value


LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z._+-]*$"  # an image tag / release version
# No whitespace or quotes: these land unquoted in generated YAML and shell lines.
REFERENCE_RE = re.compile(r"^[A-Za-z0-9$][A-Za-z0-9$_{}./:@+-]*$")


def _label_key(value: str) -> str:
    if not ANNOTATION_KEY_RE.match(value) or len(value) > 316:
        raise ValueError(f"{value!r} is not a label key (prefix.example.com/name, name up to 63 characters)")
    return value


def _label_value(value: str) -> str:
    if not LABEL_VALUE_RE.match(value):
        raise ValueError(f"{value!r} is not a label value (up to 63 letters, digits, '-', '_', '.')")
    return value


def _one_line(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{value!r} contains a line break or control character")
    return value


def _reference(value: str) -> str:
    if not REFERENCE_RE.match(value):
        raise ValueError(f"{value!r} is not a reference (no spaces or quotes; e.g. registry.example.com/x/y)")
    return value


def _repo_path(value: str) -> str:
    parts = value.replace("\\", "/").split("/")
    if not value or value.startswith("/") or ".." in parts or any(ord(c) < 32 for c in value):
        raise ValueError(f"{value!r} must be a relative path inside the repository (no '..', not absolute)")
    return value


def _quantity(value: str) -> str:
    if not QUANTITY_RE.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 4Gi)")
    return value


def _duration(value: str) -> str:
    if not DURATION_RE.match(value.strip()):
        raise ValueError(f"{value!r} is not a GitLab duration (e.g. '3 days', '1 week', '2 hrs 20 min', 'never')")
    return value


# A Prometheus duration, as range selectors take it: 10m, 1h30m, 90s (units largest first, by convention).
_PROMETHEUS_DURATION_RE = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
_PROMETHEUS_PART_RE = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
_PROMETHEUS_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def prometheus_seconds(value: str) -> float:
    """The length of a Prometheus duration in seconds; ValueError unless it is one, longer than 0 (a window
    of no time measures nothing)."""
    seconds = 0.0
    if _PROMETHEUS_DURATION_RE.match(value):
        seconds = sum(int(n) * _PROMETHEUS_UNIT_SECONDS[unit] for n, unit in _PROMETHEUS_PART_RE.findall(value))
    if seconds <= 0:
        raise ValueError(f"{value!r} is not a Prometheus duration longer than 0 (e.g. 10m, 1h, 1h30m, 90s)")
    return seconds


def _prometheus_duration(value: str) -> str:
    prometheus_seconds(value)
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
AnnotationMap = Annotated[dict[str, str], AfterValidator(_annotation_keys)]
LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]
OneLine = Annotated[str, AfterValidator(_one_line)]
Reference = Annotated[str, AfterValidator(_reference)]
RepoPath = Annotated[str, AfterValidator(_repo_path)]
ModelName = Annotated[str, AfterValidator(_model_name)]
DnsName = Annotated[str, AfterValidator(_dns_name)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
HttpsUrl = Annotated[str, AfterValidator(_https_url)]
Quantity = Annotated[str, AfterValidator(_quantity)]
Duration = Annotated[str, AfterValidator(_duration)]
PrometheusDuration = Annotated[str, AfterValidator(_prometheus_duration)]
PositiveInt = Annotated[int, Field(ge=1)]


class Strict(BaseModel):
    """Base of every section: unknown keys are errors, so a misspelt key never goes unnoticed."""

    model_config = ConfigDict(extra="forbid", validate_default=True)
