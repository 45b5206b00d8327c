"""Test support code that must not depend on ``tbrewrite`` (so it means the same on any version)."""
