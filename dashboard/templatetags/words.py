"""Codes as words in templates: {{ g.error_code|error_kind }}, an audit entry's sentence and changes."""

from django import template

from .. import words

register = template.Library()

register.filter("error_kind", words.error_kind)
register.filter("action_name", words.action_name)
register.filter("sentence", words.sentence)
register.filter("changes", words.changes)
