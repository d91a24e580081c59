"""A stage whose memory is not a size."""

import sparkflow as sf


@sf.stage(memory="lots")
def words(lines):
    return lines
