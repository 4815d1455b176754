"""The demo: the whole story on embedded simulators, through Nova's API."""
