"""Example plug-ins: Python classes named by ``type = tests.plugins.greeting.GreetingSource``."""
