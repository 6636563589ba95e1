"""Result buttons carry signed data: only the owner's presses decode, and junk never crashes."""

from botcore import buttons


def test_a_button_decodes_for_its_owner_only():
    data = buttons.encode("upscale", 1234, owner_telegram_id=42)
    assert len(data.encode()) <= 64
    assert buttons.decode(data, 42) == ("upscale", 1234)
    assert buttons.decode(data, 43) is None


def test_forged_or_garbled_data_is_refused_without_an_error():
    for data in ["r:g:1:ü" * 3, "r:g:1:ümlautsignatur", "r:x:1:abc", "r:g:one:abc", "", "s:ar:16:9"]:
        assert buttons.decode(data, 42) is None
