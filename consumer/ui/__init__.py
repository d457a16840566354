"""Watching a declarative job run: the web UI (with Prometheus ``/metrics``) and the live
terminal view, both fed by the job's batch reports (:mod:`consumer.jobs.observe`) through
the pure :class:`~consumer.ui.model.JobView`."""

from __future__ import annotations

from typing import Any

from consumer.engine.windows import to_ms
from consumer.jobs.graph import BuiltJob
from consumer.jobs.logsummary import BatchSample
from consumer.jobs.observe import BatchReport
from consumer.jobs.runner import source_text, summarize
from consumer.jobs.spec import JobSpec
from consumer.streaming.listener import StreamingListener
from consumer.ui.model import JobInfo, JobView
from consumer.ui.server import WebUI
from consumer.ui.terminal import TerminalView, wants_live_view

__all__ = ["attach_script_ui", "attach_terminal_view", "attach_web_ui", "job_view",
           "receiver_status", "wants_live_view"]


def job_view(spec: JobSpec, built: BuiltJob, now_ms: int) -> JobView:
    top = spec.ui.top or built.top
    info = JobInfo(name=spec.name, description=summarize(spec), source=source_text(spec),
                   batch_ms=to_ms(spec.batch), window_ms=to_ms(spec.window), top=top,
                   started_ms=now_ms)
    return JobView(info)


def receiver_status(ssc: Any) -> list[dict[str, Any]]:
    """Each receiver's own status (``status()``, when it has one) plus what the engine
    knows of it: records waiting for the next batch, the last error it reported."""
    out = []
    for node in ssc.graph.receiver_inputs():
        receiver = node.receiver
        status = dict(receiver.status()) if hasattr(receiver, "status") else {
            "kind": type(receiver).__name__, "address": "", "peers": []}
        status["name"] = f"{type(receiver).__name__} (input {node._id})"
        status["pending_records"] = node.buffer.pending_count()
        last = status.get("last_error")
        if last is None and node.receiver_context.errors:
            last = (None, node.receiver_context.errors[-1][0])
        status["last_error"] = None if last is None else {"time": last[0], "message": last[1]}
        out.append(status)
    return out


def attach_web_ui(ssc: Any, spec: JobSpec, built: BuiltJob, *, host: str, port: int,
                  ) -> WebUI:
    """Serve ``built``'s progress on ``host:port`` from ``ssc``'s event loop."""
    clock_ms = ssc.graph.clock.now_ms
    ui = WebUI(job_view(spec, built, clock_ms()), lambda: receiver_status(ssc), clock_ms,
               host=host, port=port)
    built.observers.append(ui.observe)
    ssc.addService(ui)
    return ui


class _ReportBatches(StreamingListener):
    """A .py job's completed batches, as the web UI's batch reports (no windows: those are
    the script's own code)."""

    def __init__(self, ui: WebUI) -> None:
        self.ui = ui

    def onBatchCompleted(self, batchCompleted: Any) -> None:
        info = batchCompleted.batchInfo()
        sample = BatchSample(info.batchTime().milliseconds(), info.numRecords(),
                             info.processingDelay().getOrElse(0) / 1000,
                             info.schedulingDelay().getOrElse(0) / 1000)
        self.ui.observe(BatchReport(sample))


def attach_script_ui(ssc: Any, script: str, *, host: str, port: int) -> WebUI:
    """Serve a pyspark.streaming-style script's progress on ``host:port``: batches, rates,
    delays and receivers, fed by a streaming listener."""
    clock_ms = ssc.graph.clock.now_ms
    inputs = [type(node.receiver).__name__ for node in ssc.graph.receiver_inputs()]
    info = JobInfo(name=ssc.sparkContext.appName, description=f"pyspark.streaming script "
                   f"{script}", source=", ".join(inputs) or "no receivers",
                   batch_ms=ssc.graph.batch_ms, window_ms=0, top=0, started_ms=clock_ms())
    ui = WebUI(JobView(info), lambda: receiver_status(ssc), clock_ms, host=host, port=port)
    ssc.addStreamingListener(_ReportBatches(ui))
    ssc.addService(ui)
    return ui


def attach_terminal_view(ssc: Any, spec: JobSpec, built: BuiltJob) -> TerminalView:
    """Show ``built``'s progress as a live table on the terminal, instead of its console
    output."""
    view = TerminalView(job_view(spec, built, ssc.graph.clock.now_ms()))
    built.mute_console()
    built.observers.append(view.observe)
    ssc.addService(view)
    return view
