"""A stage whose timeout is not a duration."""

import sparkflow as sf


@sf.stage(timeout="15 minutes")
def words(lines):
    return lines
