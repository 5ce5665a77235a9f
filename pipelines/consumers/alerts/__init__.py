"""Alerts: metric anomalies and fraud, raised once per event and rule, published to SNS.

* :mod:`~pipelines.consumers.alerts.rules` - the rules (pure);
* :mod:`~pipelines.consumers.alerts.planning` - a decoded batch ready for the rules, and
  the rules run over it (pure);
* :mod:`~pipelines.consumers.alerts.alerter` - what the alerter does with a batch;
* the state (baselines, recent transactions) and the alerts table with SNS are adapters:
  :mod:`pipelines.adapters.alert_state`, :mod:`pipelines.adapters.alert_publisher`.
"""
