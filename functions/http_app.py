"""The HTTP entry: the FastAPI app, built for the Functions host."""

from __future__ import annotations

from fastapi import FastAPI

from shared.api.app import create_app


def build_http_app() -> FastAPI:
    return create_app()
