#!/usr/bin/env python3
"""Writes deploy/grafana/dashboards/diditflow.json, the Grafana dashboard
shipped with diditflow: run it after changing a panel here, and commit both.
The deploy tests parse every query and check every metric it names is
exported by a running starter and worker."""
import json
import os

DS = {"type": "prometheus", "uid": "prometheus"}
panels = []


def panel(title, exprs, unit="short", kind="timeseries", w=12, h=8, description=""):
    targets = [{"refId": chr(ord("A") + i), "expr": e, "legendFormat": legend, "datasource": DS}
               for i, (e, legend) in enumerate(exprs)]
    p = {"type": kind, "title": title, "datasource": DS, "targets": targets,
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
         "gridPos": {"h": h, "w": w, "x": 0, "y": 0}, "description": description}
    if kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}}
    panels.append(p)


def row(title):
    panels.append({"type": "row", "title": title, "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0}, "panels": []})


R = "[$__rate_interval]"

row("Deliveries from Didit")
panel("Deliveries by answer", [(f"sum by (outcome) (rate(diditflow_webhook_deliveries_total{R}))", "{{outcome}}")], "reqps",
      description="What the starter answered Didit: accepted, replay, test, ignored, unauthorized, bad_request, too_large, unavailable (503).")
panel("Signature failures by reason", [(f'sum by (reason) (rate(diditflow_webhook_deliveries_total{{outcome="unauthorized"}}{R}))', "{{reason}}")], "reqps")
panel("Handover to Temporal (SignalWithStart)", [
    (f"histogram_quantile(0.5, sum by (le) (rate(diditflow_temporal_signal_with_start_duration_seconds_bucket{R})))", "p50"),
    (f"histogram_quantile(0.99, sum by (le) (rate(diditflow_temporal_signal_with_start_duration_seconds_bucket{R})))", "p99"),
    (f'sum(rate(diditflow_temporal_signal_with_start_duration_seconds_count{{result="error"}}{R}))', "errors/s"),
], "s")
panel("Answer latency to Didit", [
    (f"histogram_quantile(0.99, sum by (le, outcome) (rate(diditflow_webhook_request_duration_seconds_bucket{R})))", "p99 {{outcome}}"),
], "s", description="Didit waits 5 s for an answer.")

row("Sessions")
panel("Sessions by status (records)", [("max by (status) (diditflow_sessions)", "{{status}}")])
panel("Needing attention, parked and released steps", [
    ("max(diditflow_sessions_needing_attention)", "sessions needing attention"),
    (f"sum(increase(diditflow_steps_parked_total{R}))", "steps parked"),
    (f"sum by (action) (increase(diditflow_steps_released_total{R}))", "released: {{action}}"),
    (f"sum by (kind) (increase(diditflow_flags_raised_total{R}))", "flag raised: {{kind}}"),
])
panel("AML cases open and overdue", [
    ("max(diditflow_aml_cases_open)", "open"),
    ("max(diditflow_aml_cases_overdue)", "overdue (escalated, no decision)"),
])
panel("Events recorded", [(f"sum by (outcome) (rate(diditflow_events_recorded_total{R}))", "{{outcome}}")], "ops")

row("Mail, Didit API, reconciliation")
panel("Mail results", [
    (f"sum by (audience, result) (increase(diditflow_notifications_total{R}))", "{{audience}} {{result}}"),
    (f"sum by (audience) (increase(diditflow_recipients_refused_total{R}))", "{{audience}} recipients refused"),
])
panel("Didit API calls that failed", [
    (f'sum by (call, result) (increase(diditflow_didit_api_calls_total{{result!="ok"}}{R}))', "{{call}} {{result}}"),
    ("max(diditflow_didit_api_enabled)", "API enabled"),
])
panel("Reconcile runs", [(f"sum by (result) (increase(diditflow_reconcile_runs_total{R}))", "{{result}}")])
panel("Reconcile repairs and items examined", [
    (f"sum by (path) (increase(diditflow_reconcile_repaired_total{R}))", "repaired {{path}}"),
    (f"sum by (path) (increase(diditflow_reconcile_examined_total{R}))", "examined {{path}}"),
])

row("Temporal workers (SDK metrics)")
panel("Workflow task schedule-to-start (p95)", [
    (f"histogram_quantile(0.95, sum by (le, task_queue) (rate(temporal_workflow_task_schedule_to_start_latency_seconds_bucket{R})))", "{{task_queue}}"),
], "s", description="How long workflow tasks wait for a worker; rising means too few workers.")
panel("Activity schedule-to-start (p95)", [
    (f"histogram_quantile(0.95, sum by (le, task_queue) (rate(temporal_activity_schedule_to_start_latency_seconds_bucket{R})))", "{{task_queue}}"),
], "s", description="The Didit API queues are paced to Didit's rate limit: a wait there is expected under a backlog.")
panel("Activity and local activity execution (p95)", [
    (f"histogram_quantile(0.95, sum by (le, activity_type) (rate(temporal_activity_execution_latency_seconds_bucket{R})))", "{{activity_type}}"),
    (f"histogram_quantile(0.95, sum by (le, activity_type) (rate(temporal_local_activity_execution_latency_seconds_bucket{R})))", "local {{activity_type}}"),
], "s")
panel("Workflow task execution (p95)", [
    (f"histogram_quantile(0.95, sum by (le, workflow_type) (rate(temporal_workflow_task_execution_latency_seconds_bucket{R})))", "{{workflow_type}}"),
], "s")

# Lay the panels out two to a line, rows across.
x = y = 0
for p in panels:
    g = p["gridPos"]
    if p["type"] == "row":
        if x:
            y += 8
        g.update(x=0, y=y)
        y += 1
        x = 0
        continue
    g.update(x=x, y=y)
    x += g["w"]
    if x >= 24:
        x = 0
        y += g["h"]
for i, p in enumerate(panels, 1):
    p["id"] = i

dashboard = {
    "uid": "diditflow",
    "title": "diditflow",
    "description": "Didit deliveries, sessions, AML cases, mail, the Didit API, reconciliation and the Temporal workers.",
    "tags": ["diditflow", "temporal"],
    "timezone": "utc",
    "schemaVersion": 39,
    "version": 1,
    "editable": True,
    "refresh": "30s",
    "time": {"from": "now-6h", "to": "now"},
    "templating": {"list": []},
    "annotations": {"list": []},
    "links": [{"title": "Runbook", "type": "link", "url": "https://github.com/diditflow/diditflow/blob/main/docs/RUNBOOK.md"}],
    "panels": panels,
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy", "grafana", "dashboards", "diditflow.json")
with open(out, "w") as f:
    json.dump(dashboard, f, indent=2)
    f.write("\n")
