from __future__ import annotations

import pytest

from noisylabels.data import DataSpec, prepare


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def small_data(data_dir):
    """MNIST-1D with 1,000 signals (720 train / 80 val / 200 test), sym-50 % noise."""
    return prepare(DataSpec(data_dir=str(data_dir), mnist1d_samples=1000, noise_rate=0.5, seed=0))


@pytest.fixture(scope="session")
def medium_data(data_dir):
    """MNIST-1D with 3,000 signals, sym-50 % noise: enough to learn in a few epochs."""
    return prepare(DataSpec(data_dir=str(data_dir), mnist1d_samples=3000, noise_rate=0.5, seed=0))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3-compatible server (moto's server mode) on a loopback port, with a bucket.

    Yields the environment a client needs (credentials and ``AWS_ENDPOINT_URL``, which
    pyarrow's S3 filesystem honours) and the bucket name.
    """
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    env = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": url,
    }
    import boto3

    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket="s2e-results")
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield {"env": env, "bucket": "s2e-results", "url": url}
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        proc.wait(timeout=10)
