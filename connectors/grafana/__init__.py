"""Grafana: dashboards as code (``connectors.grafana.dashboards``)."""
