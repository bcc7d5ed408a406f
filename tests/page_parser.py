"""A standard-library parser of the suite page (index.html, or a browser's DOM dump of it)
for the page's tests."""

import html.parser


class PageParser(html.parser.HTMLParser):
    """Collects the claim rows (their attributes and cell texts), elements by id, images,
    links and scripts of a page."""

    def __init__(self):
        super().__init__()
        self.rows, self.by_id, self.images, self.links, self.scripts = [], {}, [], [], []
        self._cell, self._id_stack, self._in_claim_row = None, [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "claim" in attrs.get("class", ""):
            self.rows.append({"attrs": attrs, "cells": []})
            self._in_claim_row = True
        if tag == "td" and self._in_claim_row:
            self._cell = []
        if "id" in attrs:
            self._id_stack.append([attrs["id"], tag, []])
        {"img": self.images, "a": self.links, "script": self.scripts,
         "link": self.links}.get(tag, []).append(attrs)

    def handle_endtag(self, tag):
        if tag == "tr":
            self._in_claim_row = False
        if tag == "td" and self._cell is not None:
            self.rows[-1]["cells"].append("".join(self._cell))
            self._cell = None
        if self._id_stack and self._id_stack[-1][1] == tag:
            name, _, text = self._id_stack.pop()
            self.by_id[name] = "".join(text)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        for entry in self._id_stack:
            entry[2].append(data)
