"""What every target ships, whatever the platform: the user's project and sparkflow, the compiled Plan, the pinned
requirements of the engine the functions run (:mod:`~sparkflow.shipping.requirements`), the function environment, the
check that those functions run every stage as declared (:mod:`~sparkflow.shipping.engine_fit`) and a Spark home that
starts without ``/dev/fd``.

Each target's ``package`` (:mod:`sparkflow.targets.aws.package`, :mod:`sparkflow.targets.gcp.package`) puts these
into its own image, zip or job definition.
"""
