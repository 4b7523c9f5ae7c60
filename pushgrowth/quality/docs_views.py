"""Data Docs views that compile GX's Jinja templates once per process.

GX builds a new `SiteBuilder` for every `build_data_docs` call, and with it new views, each with a Jinja
environment of its own: every page built compiled the same templates again, which was about half the cost of
publishing a validation (0.8 s a build in the daily loop). These views are GX's own, given a bytecode cache shared
by the process, so a template is compiled once and only loaded afterwards; the pages are the same.
The site configured in `validation._file_context` names them (`view` of each section and of the index).
"""

from __future__ import annotations

import threading

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket


class MemoryBytecodeCache(BytecodeCache):
    """Compiled templates kept in memory, keyed by template and checked against the source's checksum by Jinja
    (a changed template is compiled again)."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: Bucket) -> None:
        with self._lock:
            code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        code = bucket.bytecode_to_string()
        with self._lock:
            self._code[bucket.key] = code

    def clear(self) -> None:
        with self._lock:
            self._code.clear()


TEMPLATES = MemoryBytecodeCache()
"""The process's compiled Data Docs templates."""


class PageView(DefaultJinjaPageView):
    """GX's page view (suite and validation pages), with the shared compiled templates."""

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.bytecode_cache = TEMPLATES


class IndexPageView(DefaultJinjaIndexPageView):
    """GX's index page view, with the shared compiled templates."""

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.bytecode_cache = TEMPLATES
