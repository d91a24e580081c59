"""A reader option misspelt."""

import sparkflow as sf

orders = sf.source("orders", "data/orders.csv", heder=False)


@sf.stage
def passthrough(orders):
    return orders


@sf.pipeline
def sales():
    return passthrough(orders)
