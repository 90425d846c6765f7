import pytest

from tests.utils import espeak, make_tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """Folder of an untrained tiny model in ds2 checkpoint format."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory):
    """About 2 s of espeak-ng speech: 'hello world this is a test'."""
    return espeak("hello world this is a test", tmp_path_factory.mktemp("speech") / "hello.wav")
