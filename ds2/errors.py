"""The error types ds2 raises for problems a user can fix.

Every failure caused by the input (a file that is not audio, an empty clip, a corrupt
checkpoint, an unreachable Hub repo) is raised as a subclass of :class:`DS2Error` with a
message meant for a person. Code that calls ds2 needs to catch only ``DS2Error``.
"""


class DS2Error(Exception):
    """Base class of every user-facing ds2 error."""


class AudioError(DS2Error, ValueError):
    """The audio could not be read or is unusable (empty, silent, too short, NaN, not audio)."""


class CheckpointError(DS2Error):
    """A model could not be found, fetched, or loaded (missing, corrupt, mismatched)."""


class DecoderError(DS2Error):
    """A decoding option cannot be honoured (e.g. an LM file that does not exist)."""
