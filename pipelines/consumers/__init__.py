"""The stream's consumers: one batch kernel, one configuration, and each consumer's own work.

* :mod:`pipelines.consumers.batch` - the batch kernel every Kinesis consumer runs on;
* :mod:`pipelines.consumers.config` - every environment variable, named once, and its reader;
* :mod:`pipelines.consumers.metrics` - metric names, defined once, and how they are emitted;
* :mod:`pipelines.consumers.projector`, :mod:`~pipelines.consumers.lake`,
  :mod:`~pipelines.consumers.archive`, :mod:`~pipelines.consumers.alerts` - what only each does.
"""
