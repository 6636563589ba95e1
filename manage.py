#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanobot_site.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018 - load settings now, to report bad configuration in one line
    except ImproperlyConfigured as exc:
        sys.exit("\n".join(f"nanobot: configuration error: {problem}" for problem in str(exc).splitlines()))
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
