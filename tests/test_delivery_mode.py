"""DELIVERY_MODE is read in one place: what a result is sent as, a photo, its original file or both."""

import pytest

from botcore import delivery_mode
from botcore.delivery_mode import Parts


@pytest.mark.parametrize(
    "mode, photo_is_original, sent",
    [
        ("both", True, Parts(photo=True, original=False)),
        ("both", False, Parts(photo=True, original=True)),
        ("photo", False, Parts(photo=True, original=False)),
        ("document", True, Parts(photo=False, original=True)),
    ],
)
def test_the_mode_and_the_photo_decide_what_is_sent(settings, mode, photo_is_original, sent):
    settings.DELIVERY_MODE = mode

    assert delivery_mode.parts(photo_is_original=photo_is_original) == sent
