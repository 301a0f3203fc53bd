"""The model's Grafana dashboard, built with Grafana's own SDK (grafana-foundation-sdk) rather than
hand-written JSON, so that its schema follows Grafana's. One dashboard serves every environment: a variable
picks the namespace. It ships as a ConfigMap the Grafana sidecar loads (label grafana_dashboard: "1").
"""

from __future__ import annotations

import json

from grafana_foundation_sdk.builders import dashboard, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh

_DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
_WINDOW = "$__rate_interval"


def _panel(title: str, unit: str, queries: dict[str, str], description: str) -> timeseries.Panel:
    """A time series panel of `queries` (legend -> PromQL)."""
    panel = timeseries.Panel().title(title).description(description).unit(unit).datasource(_DATASOURCE)
    for ref, (legend, expr) in zip("ABCDEFGH", queries.items(), strict=False):
        panel = panel.with_target(prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref))
    return panel.height(8).span(12)


def _quantiles(metric: str, sel: str) -> dict[str, str]:
    return {
        f"p{q}": f"histogram_quantile(0.{q}, sum by (le) (rate({metric}_bucket{{{sel}}}[{_WINDOW}])))"
        for q in (50, 90, 99)
    }


def dashboard_json(model: str) -> str:
    """The dashboard of model `model` as Grafana's JSON model."""
    sel = f'namespace="$namespace", model="{model}"'
    builder = (
        dashboard.Dashboard(f"mlgit: {model}")
        .uid(f"mlgit-{model}")
        .tags(["mlgit", model])
        .refresh("30s")
        .time("now-6h", "now")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            dashboard.QueryVariable("namespace")
            .label("Environment")
            .datasource(_DATASOURCE)
            .query(f'label_values(mlgit_model_ready{{model="{model}"}}, namespace)')
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        )
        .with_row(dashboard.Row("Traffic"))
        .with_panel(
            _panel(
                "Requests by status",
                "reqps",
                {"{{status}}": f"sum by (status) (rate(mlgit_inference_requests_total{{{sel}}}[{_WINDOW}]))"},
                "Inference requests per second, by HTTP status.",
            )
        )
        .with_panel(
            _panel(
                "Request latency",
                "s",
                _quantiles("mlgit_inference_request_duration_seconds", sel),
                "Time from request arrival to response.",
            )
        )
        .with_row(dashboard.Row("Batching and queue"))
        .with_panel(
            _panel(
                "Batch size",
                "short",
                _quantiles("mlgit_inference_batch_size", sel),
                "Rows per onnxruntime execution (adaptive batching).",
            )
        )
        .with_panel(
            _panel(
                "Queue",
                "short",
                {"{{pod}}": f"sum by (pod) (mlgit_inference_pending_requests{{{sel}}})"},
                "Requests admitted and not yet answered, per pod; beyond serving.batching.max_queue_size: 503.",
            )
        )
        .with_row(dashboard.Row("Inputs"))
        .with_panel(
            _panel(
                "Input drift (PSI)",
                "short",
                {"{{input}} {{feature}}": f"max by (input, feature) (mlgit_input_drift_score{{{sel}}})"},
                "Population stability index of each input feature against the reference; above 0.2: drifted.",
            )
        )
    )
    return json.dumps(builder.build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
