"""Alerter figures: one 10,000-event Lambda batch, rules evaluated in-process, state I/O excluded.

Target (issue "Alerter"): >= 20,000 events/s on one core for the rule evaluation.
The state the rules read (every series' baseline, every user's recent transactions)
is prepared in memory as the DynamoDB reads would return it: baselines warmed by an
earlier batch of the same hosts, histories holding the batch's own transactions (which the
evaluation sets aside and adds back one by one, as on a re-delivery).
Also reported: decode + evaluate (the whole pure part of a batch).
"""

from __future__ import annotations

from pipelines.adapters.alert_state import StoredBaseline, TransactionHistory
from pipelines.consumers.alerts.planning import BatchState, evaluate, plan_batch
from pipelines.consumers.alerts.rules import Baseline
from pipelines.consumers.alerts.windows import history_span, tx_event
from pipelines_local.simulator import simulate
from tests.benchmarks.timing import median_cpu, pin_one_core
from tests.kinesis_events import aggregated_record, decoded_batch

N_EVENTS = 10_000
TARGET = 20_000
_CHUNK = 500  # events per KPL aggregate


def main() -> None:
    pin_one_core()
    events = simulate(N_EVENTS, seed=1).events
    chunks = [events[i : i + _CHUNK] for i in range(0, len(events), _CHUNK)]
    records = [aggregated_record(chunk, n) for n, chunk in enumerate(chunks, start=1)]
    plans = plan_batch(decoded_batch(records))

    # Baselines as an earlier batch of the same hosts leaves them: full windows.
    state = BatchState()
    for plan in plans:
        for sample in plan.samples:
            stored = state.baselines.setdefault(sample.series, StoredBaseline(Baseline(), 1))
            if len(stored.baseline.samples) < 20:
                earlier = sample._replace(
                    event_id=f"earlier-{sample.event_id}", occurred_at_ms=sample.occurred_at_ms - 1
                )
                stored.baseline = stored.baseline.merged([earlier])
        for tx in plan.transactions:
            history = state.histories.setdefault(tx.user_id, TransactionHistory([], []))
            history.events.append(tx_event(tx))  # as read back: the batch's own, set aside
    for user, history in list(state.histories.items()):
        span = history_span(e.occurred_at_ms for e in history.events)
        state.histories[user] = history._replace(span=span)

    samples = sum(len(p.samples) for p in plans)
    transactions = sum(len(p.transactions) for p in plans)
    t_eval = median_cpu(5, lambda: evaluate(plans, state))
    t_plan = median_cpu(5, lambda: plan_batch(decoded_batch(records)), gc_paused=True)
    alerts = sum(len(p.alerts) for p in plans)

    rate = N_EVENTS / t_eval
    print(
        f"batch: {N_EVENTS:,} events in {len(records)} aggregated Kinesis records "
        f"({samples:,} metric samples, {transactions:,} transactions, {alerts} alerts)"
    )
    print(
        f"rule evaluation (state in memory): {t_eval * 1000:.1f} ms = {rate:,.0f} events/s "
        f"(target {TARGET:,}: {'met' if rate >= TARGET else 'NOT met'})"
    )
    print(
        f"  per evaluated event (metrics + transactions): "
        f"{(samples + transactions) / t_eval:,.0f} events/s"
    )
    print(f"kernel decode + planning (base64, deaggregate, Avro): {t_plan * 1000:.1f} ms")
    both = t_plan + t_eval
    print(f"decode + evaluate: {N_EVENTS / both:,.0f} events/s")


if __name__ == "__main__":
    main()
