"""What every target ships, whatever the platform: the user's project and sparkflow, the compiled Plan, the
runtime's pinned requirements, the function environment and a Spark home that starts without ``/dev/fd``.

Each target's ``package`` (:mod:`sparkflow.targets.aws.package`, :mod:`sparkflow.targets.gcp.package`) puts these
into its own image, zip or job definition.
"""
