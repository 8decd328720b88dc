"""End-to-end flows: the real server in a subprocess, driven by Chromium through Playwright."""
