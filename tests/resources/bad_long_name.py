"""A stage name over the 64-character limit."""

import sparkflow as sf


@sf.stage(name="w" * 65)
def words(lines):
    return lines
