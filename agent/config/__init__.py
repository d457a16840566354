"""Flume properties files -> a validated, typed AgentConfig, with every problem as data.

Entry points: ``agent.config.loader`` (``load_config``, ``load_text``), the issues they report
(``agent.config.issues``), and the vocabulary component types declare their settings with
(``agent.config.schema``). This package module imports nothing, so a component module can use
that vocabulary without pulling in the loader (which resolves component types).
"""
