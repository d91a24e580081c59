"""A stage called with a misspelt input name."""

import sparkflow as sf

orders = sf.source("orders", "data/orders.csv")
stores = sf.source("stores", "data/stores.csv")


@sf.stage(partition_by="store")
def enrich(orders, stores):
    return orders


@sf.pipeline
def sales():
    return enrich(orders, stors=stores)
