"""The runtime: runs one node of one run inside a function or container.

Kept light: importing it pulls in neither the compiler nor networkx nor boto3 nor pyspark; each is
imported when first needed.
"""
