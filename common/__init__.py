"""What the agent and the consumer share without importing each other: the clock, the durable
record format, and configuration problems as data. Imports only the standard library."""
