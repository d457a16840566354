"""flumelet agent: a Flume-style agent driven by a Flume .properties file."""
