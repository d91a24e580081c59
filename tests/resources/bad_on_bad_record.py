"""A source whose on_bad_record= is not a policy."""

import sparkflow as sf

events = sf.source("events", "data/events.csv", schema="user STRING, amount INT", on_bad_record="ignore")
