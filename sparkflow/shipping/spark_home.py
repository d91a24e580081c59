"""Spark in a function or container: a SPARK_HOME whose launch needs no ``/dev/fd``, and a class-data-sharing
archive of Spark's start-up that the image build trains (both run inside ``docker build``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sparkflow.errors import PackageError

#: sparkflow's ``spark-submit`` and ``spark-class``, which read the launch command from a file, not ``/dev/fd``.
LAUNCHER_BIN = Path(__file__).resolve().parent / "spark-home" / "bin"


def install_spark_home(folder: str | os.PathLike[str], pyspark_dir: str | os.PathLike[str] | None = None) -> Path:
    """Make ``folder`` a SPARK_HOME whose launch needs no ``/dev/fd``; return it.

    Spark's ``bin/spark-class`` reads the launch command through bash process substitution (``< <(...)``), which
    needs ``/dev/fd``: AWS Lambda has none, so PySpark's JVM would never start there. ``folder`` gets
    sparkflow's ``bin/spark-submit`` and ``bin/spark-class`` (the same steps, the command read from a temporary
    file instead) and links ``jars`` and ``python`` to pyspark's own. With ``SPARK_HOME=folder`` PySpark launches
    through it. The image runs this at build time; the tests start Spark through it here.
    """
    if pyspark_dir is None:
        import importlib.util

        spec = importlib.util.find_spec("pyspark")
        if spec is None or not spec.submodule_search_locations:
            raise PackageError("pyspark is not installed: install sparkflow's dependencies first")
        pyspark_dir = next(iter(spec.submodule_search_locations))
    home = Path(folder)
    (home / "bin").mkdir(parents=True, exist_ok=True)
    for script in sorted(LAUNCHER_BIN.iterdir()):
        target = home / "bin" / script.name
        shutil.copyfile(script, target)
        target.chmod(0o755)
    for name in ("jars", "python"):
        link = home / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path(pyspark_dir) / name, target_is_directory=True)
    return home


def train_cds_archive(archive: str | os.PathLike[str]) -> Path:
    """Write a JDK class-data-sharing archive of Spark's start-up and a small stage to ``archive``; return it.

    Starts the runtime's own SparkSession (same classpath and JVM options as a stage) with
    ``-XX:ArchiveClassesAtExit`` in ``SPARK_SUBMIT_OPTS`` (the driver JVM's options; ``JAVA_TOOL_OPTIONS``
    would also hit the short launcher JVM, whose classpath differs), reads CSV, JSON lines and text, groups,
    writes and reads Parquet, then stops Spark and closes the JVM's stdin so that the JVM exits normally: the
    archive is written only then. Run it in a fresh process (the image build does): the options apply when the
    session starts. Stages use it with ``-XX:SharedArchiveFile=archive`` (``SPARK_SUBMIT_OPTS`` in the image).

    Raises:
        PackageError: the JVM did not write the archive.
    """
    import tempfile

    target = Path(archive).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Classes of signed jars cannot be archived: the JVM warns once per class; only errors are worth showing.
    os.environ["SPARK_SUBMIT_OPTS"] = f"-XX:ArchiveClassesAtExit={target} -Xlog:cds*=error"
    from sparkflow.runtime import spark as engine

    session = engine.session(2048)
    with tempfile.TemporaryDirectory(prefix="sparkflow-cds-") as scratch:
        folder = Path(scratch)
        (folder / "rows.csv").write_text(
            "key,value\n" + "".join(f"k{i % 7},{i}\n" for i in range(2000)), encoding="utf-8"
        )
        (folder / "rows.jsonl").write_text("".join(f'{{"key": "k{i % 5}", "value": {i}}}\n' for i in range(500)))
        rows = session.read.csv(str(folder / "rows.csv"), header=True, inferSchema=True)
        more = session.read.json(str(folder / "rows.jsonl"))
        lines = session.read.text(str(folder / "rows.csv"))
        joined = rows.unionByName(more).groupBy("key").count().crossJoin(lines.selectExpr("count(*) AS lines"))
        joined.write.parquet(str(folder / "out"))
        session.read.parquet(str(folder / "out")).orderBy("key").collect()
    process = session.sparkContext._gateway.proc
    session.stop()
    process.stdin.close()  # PySpark's JVM exits when its stdin closes: a normal exit writes the archive
    process.wait(timeout=300)
    if not target.is_file():
        raise PackageError(f"the JVM wrote no class-data-sharing archive at {target}: see its output above")
    return target
