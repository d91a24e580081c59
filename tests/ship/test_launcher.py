"""The /dev/fd-free Spark launch the image uses: a real SparkSession starts through `install_spark_home`'s
SPARK_HOME, in a fresh process (the test session keeps its own SparkSession), and, where unprivileged mount
namespaces are available, inside a sandbox whose /dev has no fd entry, as on AWS Lambda, where Spark's own
launcher fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sparkflow.shipping.spark_home import LAUNCHER_BIN, install_spark_home

pytestmark = pytest.mark.spark

PROBE = """
import os
from pyspark.sql import SparkSession, functions as F
spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
         .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1").getOrCreate())
launcher = spark.sparkContext._jvm.java.lang.System.getenv("SPARKFLOW_SPARK_LAUNCHER")
# A Python worker (RDD map) and a JVM-only query.
total = spark.sparkContext.parallelize(range(5)).map(lambda x: x + 1).sum() + spark.range(5).agg(F.sum("id")).first()[0]
print("RESULT", total, launcher, os.path.exists("/dev/fd"))
spark.stop()
"""

# Runs "$@" in a private mount namespace whose /dev is a fresh tmpfs holding only the devices Java and Python
# need: no /dev/fd, so bash process substitution fails as it does on Lambda.
NO_DEV_FD = """#!/usr/bin/env bash
olddev="$(mktemp -d)"
mount --rbind /dev "$olddev" || exit 90
mount -t tmpfs tmpfs /dev || exit 91
for name in null zero random urandom full; do
  : > "/dev/$name" && mount --bind "$olddev/$name" "/dev/$name" || exit 92
done
[ ! -e /dev/fd ] || exit 93
exec "$@"
"""


def sandbox_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


def run_probe(tmp_path: Path, spark_home: Path | None, *, sandboxed: bool) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "SPARK_HOME"}
    environment["SPARK_LOCAL_IP"] = "127.0.0.1"
    environment["TMPDIR"] = str(tmp_path)
    if spark_home is not None:
        environment["SPARK_HOME"] = str(spark_home)
    command = [sys.executable, "-c", PROBE]
    if sandboxed:
        script = tmp_path / "no-dev-fd.sh"
        script.write_text(NO_DEV_FD, encoding="utf-8")
        script.chmod(0o755)
        command = ["unshare", "-rm", str(script), *command]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300, check=False)


def test_the_launcher_scripts_read_no_process_substitution() -> None:
    for script in LAUNCHER_BIN.iterdir():
        code = [line for line in script.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("#")]
        assert not [line for line in code if "<(" in line or "/dev/fd" in line], script
    assert {p.name for p in LAUNCHER_BIN.iterdir()} == {"spark-class", "spark-submit"}


def test_spark_starts_through_the_image_launch_path(tmp_path: Path) -> None:
    home = install_spark_home(tmp_path / "spark-home")
    assert os.access(home / "bin/spark-class", os.X_OK) and (home / "jars").is_dir()
    sandboxed = sandbox_available()
    result = run_probe(tmp_path, home, sandboxed=sandboxed)
    [line] = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")] or [result.stderr[-3000:]]
    assert line == f"RESULT 25 {home}/bin/spark-class {not sandboxed}", result.stderr[-3000:]


def test_without_the_launcher_spark_cannot_start_where_dev_fd_is_missing(tmp_path: Path) -> None:
    if not sandbox_available():
        pytest.skip("unprivileged mount namespaces (unshare -rm) are not available here")
    result = run_probe(tmp_path, None, sandboxed=True)
    assert result.returncode != 0
    assert "JAVA_GATEWAY_EXITED" in result.stderr and "/dev/fd" in result.stderr, result.stderr[-3000:]


CDS_PROBE = """
from sparkflow.runtime import spark as engine
session = engine.session(1024)
print("VM", session.sparkContext._jvm.java.lang.System.getProperty("java.vm.info"))
print("ROWS", session.range(7).count())
"""


@pytest.mark.long
def test_a_cds_archive_trained_through_the_launcher_is_used_by_the_next_session(tmp_path: Path) -> None:
    home = install_spark_home(tmp_path / "spark-home")
    archive = home / "spark.jsa"
    environment = {key: value for key, value in os.environ.items() if key not in ("SPARK_SUBMIT_OPTS",)}
    environment.update({"SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1", "TMPDIR": str(tmp_path)})
    train = f"from sparkflow.shipping.spark_home import train_cds_archive; train_cds_archive({str(archive)!r})"
    trained = subprocess.run(
        [sys.executable, "-c", train], capture_output=True, text=True, env=environment, timeout=600, check=False
    )
    assert trained.returncode == 0 and archive.is_file(), trained.stderr[-3000:]
    # -Xshare:on: the JVM refuses to start rather than run without a mismatching archive.
    environment["SPARK_SUBMIT_OPTS"] = f"-XX:SharedArchiveFile={archive} -Xshare:on"
    used = subprocess.run(
        [sys.executable, "-c", CDS_PROBE], capture_output=True, text=True, env=environment, timeout=300, check=False
    )
    assert used.returncode == 0, used.stderr[-3000:]
    assert "ROWS 7" in used.stdout and "sharing" in used.stdout, used.stdout
