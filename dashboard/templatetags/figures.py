"""How a figure reads on a page: a share as a whole percent, a latency in whole seconds."""

from django import template

register = template.Library()


@register.filter
def percent(share):
    """0.423 -> "42%"; no share (nothing finished, no budget) -> "–"."""
    return "–" if share is None else f"{round(share * 100)}%"


@register.filter
def seconds(milliseconds):
    """A latency bucket's upper bound in ms -> "≤ 3 s"; no figure -> "–"."""
    return f"≤ {round(milliseconds / 1000)} s" if milliseconds else "–"
