"""Browser tests of the web page (Playwright + Debian Chromium)."""
