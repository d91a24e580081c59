"""A stage name with a character that cannot be a state name or a storage path part."""

import sparkflow as sf


@sf.stage(name="count words!")
def words(lines):
    return lines
