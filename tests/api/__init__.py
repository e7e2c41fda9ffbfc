"""Tests of the Face++ v3 HTTP API."""
