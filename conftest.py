import pytest


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    # Uploaded evidence goes to a per-test folder, so tests never see each other's files.
    settings.MEDIA_ROOT = tmp_path / "media"
